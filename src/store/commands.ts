// tsd-store's commands, declared with cmd-ts: every verb's arguments decoded at the boundary,
// its result mapped to stdout, stderr and an exit code. cli.ts loads this module for every
// command line but the two that must start fast (--version and a plain ls).
import { command, positional, restPositionals, option, optional, string, subcommands, flag, multioption, array, oneOf } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { jsonFlag, rootOption } from '../cli/options.js';
import { processIo, runShell, write, type CommandResult } from '../cli/shell.js';
import { failure } from '../failure.js';
import { formatMessage, imageMessage } from '../message.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { VERSION } from '../version.js';
import { findEntry, refNameOf, removeEntries, resolveImage, tagDescriptor } from './image.js';
import { humanAge, humanSize, listImages, table } from './listing.js';
import { renderList } from './list-output.js';
import { dfCmd, fsckCmd, gcCmd, pruneCmd } from './maintenance-commands.js';
import { openStore } from './store.js';

const io = processIo();
const ok = (code = 0): CommandResult => E.right(code);

const ls = command({
  name: 'ls',
  description: 'list images (Docker: images)',
  args: { root: rootOption, json: jsonFlag, format: option({ type: optional(string), long: 'format', description: "Go-template-like row format, e.g. '{{.Repository}}:{{.Tag}}'" }) },
  handler: ({ root, json, format }) =>
    pipe(
      openStore(root),
      TE.chain(listImages),
      TE.chain((rows) => async () => {
        await write(io.stdout, renderList(rows, { json, ...(format !== undefined ? { format } : {}) }));
        return ok();
      }),
    )(),
});

const inspect = command({
  name: 'inspect',
  description: 'print the manifest and config of an image as one JSON line',
  args: { root: rootOption, ref: positional({ type: string, displayName: 'REF' }) },
  handler: ({ root, ref }) =>
    pipe(
      openStore(root),
      TE.chain((p) => resolveImage(p, ref)),
      TE.chain((img) => async () => {
        const out = {
          v: 1,
          type: 'inspect',
          ...(img.ref !== undefined ? { ref: img.ref } : {}),
          digest: img.entry.digest,
          mediaType: img.entry.mediaType,
          id: img.configDigest,
          manifestDigest: img.manifestDescriptor.digest,
          manifest: img.manifest,
          config: img.config,
        };
        await write(io.stdout, `${JSON.stringify(out)}\n`);
        return ok();
      }),
    )(),
});

const history = command({
  name: 'history',
  description: 'show the steps that made an image, newest first',
  args: { root: rootOption, json: jsonFlag, ref: positional({ type: string, displayName: 'REF' }) },
  handler: ({ root, json, ref }) =>
    pipe(
      openStore(root),
      TE.chain((p) => resolveImage(p, ref)),
      TE.chain((img) => async () => {
        const layers = [...img.manifest.layers];
        const rows = (img.config.history ?? []).map((h) => ({
          created: h.created ?? '',
          createdBy: h.created_by ?? '',
          size: h.empty_layer ? 0 : (layers.shift()?.size ?? 0),
          comment: h.comment ?? '',
        }));
        rows.reverse();
        if (json) for (const r of rows) await write(io.stdout, `${JSON.stringify({ v: 1, type: 'history', ...r })}\n`);
        else await write(io.stdout, table(['CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], rows.map((r) => [humanAge(r.created), r.createdBy.slice(0, 60), humanSize(r.size), r.comment])));
        return ok();
      }),
    )(),
});

const tag = command({
  name: 'tag',
  description: 'give an image another name (prints the image JSON)',
  args: { root: rootOption, source: positional({ type: string, displayName: 'SRC' }), target: positional({ type: string, displayName: 'DST' }) },
  handler: ({ root, source, target }) =>
    pipe(
      TE.Do,
      TE.apS('dest', TE.fromEither(parseReference(target))),
      TE.apS('p', openStore(root)),
      TE.bind('found', ({ p }) => findEntry(p, source)),
      TE.chain(({ p, dest, found }) => {
        const ref = formatReference(dest.digest ? { ...dest, digest: undefined } : dest);
        return pipe(
          tagDescriptor(p, found.entry, ref),
          TE.chain((d) => async () => {
            await write(io.stdout, formatMessage(imageMessage({ ref, digest: d.digest, mediaType: d.mediaType, size: d.size })));
            return ok();
          }),
        );
      }),
    )(),
});

const rm = command({
  name: 'rm',
  description: 'remove image names (blobs are reclaimed by gc)',
  args: { root: rootOption, refs: restPositionals({ type: string, displayName: 'REF' }), force: flag({ long: 'force', short: 'f', description: 'remove every name of an image given by ID' }) },
  handler: ({ root, refs, force }) =>
    pipe(
      openStore(root),
      TE.chain((p) =>
        TE.sequenceSeqArray(
          refs.map((input) =>
            pipe(
              findEntry(p, input),
              TE.chain(({ entry, ref }) =>
                removeEntries(p, (d) => (ref !== undefined && !force ? d.digest === entry.digest && refNameOf(d) === refNameOf(entry) : d.digest === entry.digest)),
              ),
              TE.chain((removed) => async () => {
                for (const d of removed) await write(io.stderr, `Untagged: ${refNameOf(d) ?? d.digest}\n`);
                return E.right(removed.length);
              }),
            ),
          ),
        ),
      ),
      TE.map(() => 0),
    )(),
});

const saveCmd = command({
  name: 'save',
  description: 'write images as a tar on stdout (docker-archive that docker/podman load read, or --format oci)',
  args: {
    root: rootOption,
    format: option({ type: oneOf(['docker', 'oci'] as const), long: 'format', defaultValue: () => 'docker' as const, description: 'docker (default; also a valid OCI layout) or oci' }),
    output: option({ type: optional(string), long: 'output', short: 'o', description: 'write to a file instead of stdout' }),
    refs: restPositionals({ type: string, displayName: 'REF' }),
  },
  handler: async ({ root, format, output, refs }) => {
    if (refs.length === 0) return E.left(failure('Usage', 'save: name at least one image'));
    if (output === undefined && io.isTTY.stdout) return E.left(failure('Usage', 'save: refusing to write a tar to a terminal; redirect stdout or use -o FILE'));
    const { save } = await import('./save.js');
    const { createWriteStream, promises: fs } = await import('node:fs');
    const named = output !== undefined && output !== '-' ? output : undefined;
    // -o through a symlink writes where it points; -o onto a device or fifo (/dev/null, a pipe)
    // writes into it: renaming over it would replace the device with a plain file
    const toFile = named !== undefined ? await fs.realpath(named).catch(() => named) : undefined;
    const special = toFile !== undefined && (await fs.stat(toFile).then((st) => !st.isFile(), () => false));
    // a file is written under a temp name and renamed when whole: a failed save leaves no half tar
    const tmp = toFile !== undefined && !special ? `${toFile}.tmp-${process.pid}` : undefined;
    const sink = () =>
      tmp !== undefined
        ? createWriteStream(tmp, { flags: 'wx', highWaterMark: 16 * 1024 * 1024 })
        : special && toFile !== undefined
          ? createWriteStream(toFile, { flags: 'w' })
          : io.stdout;
    const result = await pipe(
      openStore(root),
      TE.chain((p) => save(p, refs, sink(), format)),
      TE.map(() => 0),
    )();
    if (tmp !== undefined && toFile !== undefined) {
      if (E.isRight(result)) await fs.rename(tmp, toFile);
      else await fs.unlink(tmp).catch(() => undefined);
    }
    return result;
  },
});

const loadCmd = command({
  name: 'load',
  description: 'read a docker-archive or OCI archive (plain or gzip) from stdin; prints image JSON lines',
  args: { root: rootOption, input: option({ type: optional(string), long: 'input', short: 'i', description: 'read from a file instead of stdin' }) },
  handler: async ({ root, input }) => {
    if (input === undefined && io.isTTY.stdin) return E.left(failure('Usage', 'load: stdin is a terminal; pipe an archive in or use -i FILE'));
    const { load } = await import('./load.js');
    const { createReadStream } = await import('node:fs');
    return pipe(
      openStore(root),
      TE.chain((p) => load(p, input !== undefined && input !== '-' ? createReadStream(input, { highWaterMark: 4 * 1024 * 1024 }) : io.stdin)),
      TE.chain((images) => async () => {
        for (const m of images) await write(io.stdout, formatMessage(m));
        return ok();
      }),
    )();
  },
});

const importCmd = command({
  name: 'import',
  description: 'make a one-layer image of a root file system tar on stdin (like docker import); prints image JSON',
  args: {
    root: rootOption,
    changes: multioption({ type: array(string), long: 'change', short: 'c', description: "a Dockerfile instruction, e.g. 'CMD [\"sh\"]' (repeatable)" }),
    message: option({ type: optional(string), long: 'message', short: 'm', description: 'the history comment' }),
    ref: positional({ type: optional(string), displayName: 'REF' }),
  },
  handler: async ({ root, changes, message, ref }) => {
    if (io.isTTY.stdin) return E.left(failure('Usage', 'import: stdin is a terminal; pipe a root file system tar in'));
    const { importRootfs } = await import('./import.js');
    return pipe(
      openStore(root),
      TE.chain((p) => importRootfs(p, io.stdin, { ...(ref !== undefined && ref !== '-' ? { ref } : {}), changes, ...(message !== undefined ? { message } : {}) })),
      TE.chain((m) => async () => {
        await write(io.stdout, formatMessage(m));
        return ok();
      }),
    )();
  },
});

const app = subcommands({
  name: 'tsd-store',
  version: VERSION,
  description: 'inspect and maintain the shared tsd store',
  cmds: { ls, images: ls, inspect, history, tag, rm, gc: gcCmd, prune: pruneCmd, fsck: fsckCmd, df: dfCmd, save: saveCmd, load: loadCmd, import: importCmd },
});

/** Runs tsd-store with `argv` (the arguments after the binary's name). */
export const main = (argv: string[]): Promise<void> => runShell('tsd-store', app, argv);
