// tsd-store: inspect and maintain the shared store.
import { command, positional, restPositionals, option, optional, string, subcommands, flag } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { pipe } from 'fp-ts/lib/function.js';
import { jsonFlag, rootOption } from '../cli/options.js';
import { processIo, runShell, write, type CommandResult } from '../cli/shell.js';
import { formatMessage, imageMessage } from '../message.js';
import { formatReference, parseReference } from '../oci/reference.js';
import { VERSION } from '../version.js';
import { findEntry, refNameOf, removeEntries, resolveImage, tagDescriptor } from './image.js';
import { applyFormat, humanAge, humanSize, listImages, table } from './listing.js';
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
        if (json) for (const r of rows) await write(io.stdout, formatMessage(r.message));
        else if (format !== undefined) {
          for (const r of rows) {
            await write(io.stdout, applyFormat(format, { Repository: r.repository, Tag: r.tag, ID: r.id, Digest: r.message.digest, CreatedAt: r.created, CreatedSince: humanAge(r.created), Size: humanSize(r.size) }));
          }
        } else {
          await write(io.stdout, table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows.map((r) => [r.repository, r.tag, r.id, humanAge(r.created), humanSize(r.size)])));
        }
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

const app = subcommands({
  name: 'tsd-store',
  version: VERSION,
  description: 'inspect and maintain the shared tsd store',
  cmds: { ls, images: ls, inspect, history, tag, rm },
});

void runShell('tsd-store', app, process.argv.slice(2));
