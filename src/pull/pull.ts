// Pull: a reference in a registry becomes a named image in the store. The interpreter of the
// plan: resolve the manifest (an index down to one platform), fetch config and layers in
// parallel (each verified, see fetch.ts), then write the manifests, then the name. A name is
// written only once everything it reaches is present.
// node:fs's promises, not node:fs/promises: one builtin module fewer to load at start-up
import { promises as fs, readFileSync } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, isFailure, type Failure } from '../failure.js';
import type { ImageMessage } from '../message.js';
import { decodeImageConfig, type ImageConfig } from '../oci/config.js';
import { algorithmOf, type Digest } from '../oci/digest.js';
import { decodeManifestBytes, manifestMediaType, REF_NAME, type Descriptor, type Manifest, type ManifestOrIndex, type Platform } from '../oci/manifest.js';
import { hostPlatform } from '../oci/platform.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { findCredentials } from '../registry/credentials.js';
import { loadRegistriesConfig, pullEndpoints } from '../registry/endpoint.js';
import { getManifest, manifestWhat, type FetchedManifest } from '../registry/manifests.js';
import { inParallel } from '../registry/parallel.js';
import { silent, type Report } from '../registry/progress.js';
import { defaultRetryPolicy, type RetryPolicy } from '../registry/retry.js';
import { Session } from '../registry/session.js';
import { hasBlob, hasBlobSync, putBytes, readBlob, readBlobSync, stageBytes, type Staged } from '../store/blob.js';
import { tagDescriptor } from '../store/image.js';
import { fsyncPath } from '../store/durable.js';
import { readIndexSync } from '../store/index-file.js';
import type { StorePaths } from '../store/layout.js';
import { leaseBlob, leaseBlobs } from '../store/lease.js';
import { chainIds } from '../snapshot/chain-id.js';
import type { BeginUnpack } from '../snapshot/pending.js';
import { fetchBlob, type SnapshotSink } from './fetch.js';
import { choosePlatform, foreignLayerNote, planBlobs } from './plan.js';

/**
 * The seam for pull-time unpacking from a committed blob (src/snapshot's unpackLayer fits it):
 * unpack one committed, verified layer into the snapshot of `chainId`. A pull calls it for each
 * layer it did not unpack while downloading (see `unpackStream`), one at a time, as soon as that
 * layer's blob is in, while the other layers still download.
 */
export type Unpacker = (p: StorePaths, layer: Descriptor, diffId: Digest, chainId: Digest) => TE.TaskEither<Failure, unknown>;

export interface PullOptions {
  readonly platform?: Platform;
  /** layers fetched at once (default 6) */
  readonly concurrency?: number;
  /** registries reached over plain HTTP besides loopback ones */
  readonly insecure?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly report?: Report;
  readonly policy?: RetryPolicy;
  /** unpack layers into snapshots while pulling (tsd-pull --unpack wires src/snapshot's unpackLayer) */
  readonly unpack?: Unpacker;
  /**
   * with `unpack`: unpack each layer from its bytes while they download (src/snapshot's
   * beginUnpack); a layer it cannot take (a resumed download, a blob already present, a snapshot
   * another process is making) goes to `unpack` once its blob is in
   */
  readonly unpackStream?: BeginUnpack;
}

const MAX_CONFIG_SIZE = 32 * 1024 * 1024;

const decodeOrFail = (bytes: Buffer, mediaType: string | undefined, what: string): ManifestOrIndex => {
  const m = decodeManifestBytes(bytes, mediaType);
  if (E.isLeft(m)) throw failure('InvalidManifest', `${what}: ${m.left.message}; refused`, ExitCode.tool);
  return m.right;
};

/** The manifest by tag or digest from the first endpoint (mirrors first) that has it. */
const resolve = async (ref: Reference, options: PullOptions, report: Report): Promise<{ session: Session; top: FetchedManifest }> => {
  const env = options.env ?? process.env;
  const config = loadRegistriesConfig(env, options.insecure ?? []);
  if (E.isLeft(config)) throw config.left;
  const credentials = findCredentials(env, ref.domain);
  const policy = options.policy ?? defaultRetryPolicy(env);
  const reference = ref.digest ?? ref.tag ?? 'latest';
  let lastFailure: Failure | undefined;
  for (const endpoint of pullEndpoints(ref.domain, config.right)) {
    const session = new Session(endpoint, {
      ...(credentials ? { credentials } : {}),
      scopes: [`repository:${ref.path}:pull`],
      policy,
      onRetry: (e) => report({ event: 'retry', ...e }),
    });
    try {
      return { session, top: await getManifest(session, ref.path, reference) };
    } catch (e) {
      if (!isFailure(e) || !endpoint.mirror) throw e;
      lastFailure = e;
    }
  }
  throw lastFailure ?? failure('NotFound', `${manifestWhat(ref.domain, ref.path, reference)}: not found`, ExitCode.notFound);
};

/** Stores manifest bytes unless present (leased first, see lease.ts); true when it wrote them. */
const keepBytes = async (p: StorePaths, bytes: Buffer, digest: Digest, what: string): Promise<boolean> => {
  leaseBlob(p, digest);
  if (hasBlobSync(p, digest) || (await hasBlob(p, digest))) return false;
  const r = await putBytes(p, bytes, { digest, size: bytes.length }, what)();
  if (E.isLeft(r)) throw r.left;
  return true;
};

/**
 * The warm re-pull: when every blob is in the store already (each leased before it is looked
 * for, as fetchBlob does), the config's bytes, read and verified synchronously. Undefined when
 * anything is missing or odd: then the pull takes its ordinary path, which fetches, waits for a
 * running gc, or names the fault. Saves some ten thread-pool round trips per re-pull.
 */
const presentConfig = (p: StorePaths, config: Descriptor, layers: readonly Descriptor[], manifests: readonly Digest[]): Buffer | undefined => {
  // one append to the lease file for all of them; the manifests' too, which keepBytes looks for next
  leaseBlobs(p, [...manifests, config.digest, ...layers.map((d) => d.digest)]);
  for (const d of [config, ...layers]) if (!hasBlobSync(p, d.digest)) return undefined;
  return readBlobSync(p, config.digest, MAX_CONFIG_SIZE);
};

/** Drops the temp files of staged manifests (the pull failed before naming them). */
const discard = async (staging: Promise<PromiseSettledResult<Staged>[]>): Promise<void> => {
  for (const s of await staging) if (s.status === 'fulfilled') await s.value.discard();
};

const decodeConfigFile = async (path: string, size: number, what: string): Promise<ImageConfig> => {
  // a config of common size is read in one synchronous call (fs.readFile's are four round trips)
  const c = decodeImageConfig(size <= 1024 * 1024 ? readFileSync(path) : await fs.readFile(path));
  if (E.isLeft(c)) throw failure('InvalidConfig', `${what}: ${c.left.message}; refused`, ExitCode.tool);
  return c.right;
};

/** Fetches the config (unless present) and decodes it; `wrote` is true when this pull stored it. */
const fetchConfig = async (p: StorePaths, session: Session, repo: string, d: Descriptor, report: Report, what: string): Promise<{ config: ImageConfig; wrote: boolean }> => {
  let fetched: ImageConfig | undefined;
  const how = await fetchBlob(p, session, repo, d, report, {
    check: async (path) => {
      fetched = await decodeConfigFile(path, d.size, what);
    },
  });
  // fetched: the check decoded it on its way in
  if (how !== 'present') return { config: fetched as ImageConfig, wrote: true };
  const bytes = await readBlob(p, d.digest, MAX_CONFIG_SIZE)();
  if (E.isLeft(bytes)) throw bytes.left;
  const c = decodeImageConfig(bytes.right);
  if (E.isLeft(c)) throw failure('InvalidConfig', `${what}: ${c.left.message}`, ExitCode.tool);
  return { config: c.right, wrote: false };
};

/**
 * Unpacks layers one at a time, in the order their blobs arrive, while the pull goes on.
 * `settled` resolves (never rejects) once every started unpack is done, with the first failure.
 */
const unpackQueue = (p: StorePaths, unpack: Unpacker, manifest: Manifest, config: ImageConfig, what: string, report: Report) => {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw failure('InvalidConfig', `${what}: ${diffIds.length} diff IDs for ${manifest.layers.length} layers; cannot unpack`, ExitCode.tool);
  }
  const ids = chainIds(diffIds);
  let chain: Promise<void> = Promise.resolve();
  let first: Failure | undefined;
  return {
    /** the sink that unpacks the first position of `layer` while it downloads */
    sink: (stream: BeginUnpack | undefined, layer: Descriptor): SnapshotSink | undefined => {
      const i = manifest.layers.findIndex((l) => l.digest === layer.digest);
      return stream && i >= 0 ? () => stream(p, layer, diffIds[i] as Digest, ids[i] as Digest) : undefined;
    },
    /** the blob of `digest` is in; `streamed` is true when its first position was unpacked on the way */
    ready: (digest: Digest, streamed: boolean) => {
      let skip = streamed;
      manifest.layers.forEach((l, i) => {
        if (l.digest !== digest) return;
        if (skip) {
          skip = false;
          report({ event: 'unpacked', digest: l.digest, chainId: ids[i] as Digest, streamed: true });
          return;
        }
        chain = chain.then(async () => {
          if (first) return;
          const r = await unpack(p, l, diffIds[i] as Digest, ids[i] as Digest)();
          if (E.isLeft(r)) first ??= r.left;
          else report({ event: 'unpacked', digest: l.digest, chainId: ids[i] as Digest });
        });
      });
    },
    settled: async (): Promise<Failure | undefined> => {
      await chain;
      return first;
    },
  };
};

const run = async (p: StorePaths, input: string, options: PullOptions): Promise<ImageMessage> => {
  const parsed = parseReference(input);
  if (E.isLeft(parsed)) throw parsed.left;
  const ref = parsed.right;
  const name = formatReference(ref);
  const report = options.report ?? silent;
  const { session, top } = await resolve(ref, options, report);
  const repo = ref.path;
  const topWhat = manifestWhat(ref.domain, repo, ref.digest ?? ref.tag ?? 'latest');
  const topDoc = decodeOrFail(top.bytes, top.mediaType, topWhat);
  const topType = manifestMediaType(topDoc);

  let manifestBytes = top;
  let manifest: Manifest;
  if (topDoc.kind === 'index') {
    const choice = choosePlatform(topDoc.index, options.platform ?? hostPlatform(), topWhat);
    if (E.isLeft(choice)) throw choice.left;
    manifestBytes = await getManifest(session, repo, choice.right.digest);
    if (manifestBytes.bytes.length !== choice.right.size) {
      throw failure('SizeMismatch', `${topWhat}: the index says manifest ${choice.right.digest} has ${choice.right.size} bytes, the registry sent ${manifestBytes.bytes.length}; refused`, ExitCode.tool);
    }
    const child = decodeOrFail(manifestBytes.bytes, choice.right.mediaType, manifestWhat(ref.domain, repo, choice.right.digest));
    if (child.kind !== 'manifest') throw failure('InvalidManifest', `${topWhat}: an index inside an index is not supported`, ExitCode.tool);
    manifest = child.manifest;
  } else manifest = topDoc.manifest;

  const plan = planBlobs(manifest, topWhat);
  if (E.isLeft(plan)) throw plan.left;
  report({ event: 'resolved', ref: name, digest: top.digest, blobs: plan.right.layers.length + 1 });

  // The config and the layers are fetched at once (the first layer byte comes one config fetch
  // sooner), but no layer is committed before the config has decoded: a bad config stops the
  // pull with no layer of it kept (fetchBlob's `gate`). With --unpack the layers wait for the
  // config, whose diff IDs each streamed unpack needs.
  const configWhat = `config ${manifest.config.digest} of ${ref.domain}/${repo}`;
  if (manifest.config.size > MAX_CONFIG_SIZE) throw failure('ConfigTooLarge', `${configWhat}: ${manifest.config.size} bytes, more than ${MAX_CONFIG_SIZE}; refused`, ExitCode.tool);
  let config: ImageConfig;
  // whether this pull gave any blob its name (then its directory entry still needs an fsync)
  let wrote = false;
  // the manifests staged for a pull that fetches (see stageBytes)
  let staging: Promise<PromiseSettledResult<Staged>[]> | undefined;
  const present = options.unpack ? undefined : presentConfig(p, manifest.config, plan.right.layers, topDoc.kind === 'index' ? [manifestBytes.digest, top.digest] : [top.digest]);
  if (present !== undefined) {
    for (const d of [manifest.config, ...plan.right.layers]) report({ event: 'skip', digest: d.digest, total: d.size, reason: 'present' });
    const c = decodeImageConfig(present);
    if (E.isLeft(c)) throw failure('InvalidConfig', `${configWhat}: ${c.left.message}`, ExitCode.tool);
    config = c.right;
  } else {
    // the manifests' bytes are written and fsynced while the blobs download; they are named only
    // after them (below), so their fsync costs no time of its own and no name reaches a missing blob
    staging = Promise.allSettled([
      stageBytes(p, manifestBytes.bytes, manifestBytes.digest, 'manifest'),
      ...(topDoc.kind === 'index' ? [stageBytes(p, top.bytes, top.digest, 'index')] : []),
    ]);
    try {
      const configReady = fetchConfig(p, session, repo, manifest.config, report, configWhat);
      configReady.catch(() => undefined); // awaited below, after the layers
      const unpacking = options.unpack ? unpackQueue(p, options.unpack, manifest, (await configReady).config, configWhat, report) : undefined;
      try {
        await inParallel(plan.right.layers, options.concurrency ?? 6, async (l: Descriptor) => {
          const how = await fetchBlob(p, session, repo, l, report, unpacking ? { sink: unpacking.sink(options.unpackStream, l) } : { gate: configReady }).catch((e) => {
            throw isFailure(e) && e._tag === 'NotFound' ? { ...e, message: `${e.message}${foreignLayerNote(l)}` } : e;
          });
          if (how !== 'present') wrote = true;
          unpacking?.ready(l.digest, how === 'unpacked');
        });
      } catch (e) {
        await configReady; // a bad config is the failure to report (the layers stopped because of it)
        throw e;
      } finally {
        await unpacking?.settled();
      }
      const fetched = await configReady;
      config = fetched.config;
      if (fetched.wrote) wrote = true;
      const unpacked = await unpacking?.settled();
      if (unpacked) throw unpacked;
    } catch (e) {
      await discard(staging);
      throw e;
    }
  }

  // manifests last, then the name: nothing named can reach a missing blob
  if (staging !== undefined) {
    const staged = await staging;
    const failed = staged.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await discard(staging);
      throw failed.reason;
    }
    try {
      for (const s of staged) if (s.status === 'fulfilled' && (await s.value.commit())) wrote = true;
    } catch (e) {
      await discard(staging);
      throw e;
    }
  } else {
    if (await keepBytes(p, manifestBytes.bytes, manifestBytes.digest, 'manifest')) wrote = true;
    if (topDoc.kind === 'index' && (await keepBytes(p, top.bytes, top.digest, 'index'))) wrote = true;
  }
  const declared = topDoc.kind === 'index' ? topDoc.index.mediaType : topDoc.manifest.mediaType;
  const entry: Descriptor = { mediaType: declared ?? top.mediaType ?? topType, digest: top.digest, size: top.bytes.length };
  const index = readIndexSync(p);
  const already = E.isRight(index) && index.right.manifests.some((d) => d.digest === entry.digest && d.annotations?.[REF_NAME] === name);
  // the blobs' directory entries (renamed by this pull or by another, see fetch.ts) are made
  // durable before anything names them. When this pull renamed nothing and the name names this
  // digest already, whoever wrote that name made them durable first: no fsync (a warm re-pull).
  if (wrote || !already) {
    for (const alg of new Set([manifest.config, ...manifest.layers].map((d) => algorithmOf(d.digest)))) await fsyncPath(p.blobDir(alg));
  }
  if (!already) {
    const tagged = await tagDescriptor(p, entry, name)();
    if (E.isLeft(tagged)) throw tagged.left;
  }
  // built here rather than with message.ts's imageMessage, whose module loads readline (start-up)
  return {
    v: 1,
    type: 'image',
    ref: name,
    digest: top.digest,
    mediaType: entry.mediaType,
    size: entry.size,
    config: manifest.config.digest,
    platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
  };
};

/** Pulls `reference` into the store at `p` and returns the image message tsd-pull prints. */
export const pull = (p: StorePaths, reference: string, options: PullOptions = {}): TE.TaskEither<Failure, ImageMessage> =>
  TE.tryCatch(() => run(p, reference, options), fromError(`pull ${reference}`));
