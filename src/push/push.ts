// Push: an image in the store goes to a registry. Each blob is HEADed and skipped where the
// repository has it, mounted from the image's own repository when that is another repository of
// the same registry, else uploaded whole (one PUT) or in chunks (PATCHes) for big blobs; the
// manifests go last, children before their index, and the tag with the top one.
import { createReadStream } from 'node:fs';
import * as E from 'fp-ts/lib/Either.js';
import * as TE from 'fp-ts/lib/TaskEither.js';
import { ExitCode, failure, fromError, isFailure, type Failure } from '../failure.js';
import { imageMessage, type ImageMessage } from '../message.js';
import type { Descriptor, Manifest, Platform } from '../oci/manifest.js';
import { hostPlatform, platformMatches } from '../oci/platform.js';
import { formatReference, parseReference, withDigest, withTag, type Reference } from '../oci/reference.js';
import { finishUpload, headBlob, patchChunk, putBlob, startUpload, blobWhat } from '../registry/blobs.js';
import { findCredentials } from '../registry/credentials.js';
import { loadRegistriesConfig, pushEndpoint } from '../registry/endpoint.js';
import { putManifest } from '../registry/manifests.js';
import { inParallel } from '../registry/parallel.js';
import { silent, type Report } from '../registry/progress.js';
import { defaultRetryPolicy, retryDelay, sleep, type RetryPolicy } from '../registry/retry.js';
import { Session, statusOf } from '../registry/session.js';
import { hasBlob, openBlob, readBlob } from '../store/blob.js';
import { findEntry, loadConfig, loadManifest } from '../store/image.js';
import type { StorePaths } from '../store/layout.js';
import { chunksOf, planPush, type PushPlan } from './plan.js';

export interface PushOptions {
  /** where to push; default the name the image has in the store */
  readonly destination?: string;
  /** for a multi-platform image whose other platforms are not all in the store */
  readonly platform?: Platform;
  readonly concurrency?: number;
  /** blobs larger than this go up in PATCH chunks of this size (default 64 MiB) */
  readonly chunkSize?: number;
  readonly insecure?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly report?: Report;
  readonly policy?: RetryPolicy;
}

const DEFAULT_CHUNK = 64 * 1024 * 1024;

const orThrow = async <A>(t: TE.TaskEither<Failure, A>): Promise<A> => {
  const r = await t();
  if (E.isLeft(r)) throw r.left;
  return r.right;
};

/** The documents to push: an index with all its children in the store, or one platform's manifest. */
const collect = async (p: StorePaths, entry: Descriptor, platform: Platform): Promise<{ top: Descriptor; manifests: { descriptor: Descriptor; manifest: Manifest }[] }> => {
  const doc = await orThrow(loadManifest(p, entry));
  if (doc.kind === 'manifest') return { top: entry, manifests: [{ descriptor: entry, manifest: doc.manifest }] };
  const children = doc.index.manifests;
  const present = await Promise.all(children.map((c) => hasBlob(p, c.digest)));
  if (present.every(Boolean)) {
    const manifests = [];
    for (const c of children) {
      const m = await orThrow(loadManifest(p, c));
      if (m.kind !== 'manifest') throw failure('Unsupported', `image ${entry.digest}: an index inside an index cannot be pushed`, ExitCode.user);
      manifests.push({ descriptor: c, manifest: m.manifest });
    }
    return { top: entry, manifests };
  }
  // only some platforms were pulled: push the one asked for, as a plain image
  const fit = children.find((c, i) => present[i] && c.platform !== undefined && platformMatches(platform, c.platform));
  if (!fit) throw failure('IncompleteImage', `image ${entry.digest}: the store holds only some platforms of this index and not one for the platform asked for; pull it with --platform, or push with --platform`, ExitCode.user);
  const m = await orThrow(loadManifest(p, fit));
  if (m.kind !== 'manifest') throw failure('Unsupported', `image ${entry.digest}: an index inside an index cannot be pushed`, ExitCode.user);
  const { platform: _p, ...descriptor } = fit;
  return { top: descriptor, manifests: [{ descriptor, manifest: m.manifest }] };
};

const uploadOnce = async (p: StorePaths, s: Session, repo: string, d: Descriptor, mountFrom: string | undefined, chunkSize: number, report: Report): Promise<void> => {
  const has = await headBlob(s, repo, d.digest);
  if (has !== undefined) {
    report({ event: 'skip', digest: d.digest, total: d.size, reason: 'exists' });
    return;
  }
  const started = await startUpload(s, repo, d.digest, mountFrom);
  if (started === 'mounted') {
    report({ event: 'skip', digest: d.digest, total: d.size, reason: 'mounted' });
    return;
  }
  report({ event: 'start', digest: d.digest, total: d.size, offset: 0 });
  try {
    await send(p, s, repo, d, started, chunkSize, report);
  } catch (e) {
    // the registry lost the upload session (404) or its offset (416), e.g. after a reset
    // mid-PATCH: the upload starts over
    const status = isFailure(e) ? statusOf(e) : undefined;
    throw status === 404 || status === 416 ? { ...(e as Failure), retryable: true } : e;
  }
  report({ event: 'done', digest: d.digest, total: d.size });
};

const send = async (p: StorePaths, s: Session, repo: string, d: Descriptor, started: URL, chunkSize: number, report: Report): Promise<void> => {
  if (d.size <= chunkSize) {
    await putBlob(s, repo, d.digest, started, d.size, () => openBlob(p, d.digest));
  } else {
    let location = started;
    for (const { start, length } of chunksOf(d.size, chunkSize)) {
      location = await patchChunk(s, repo, d.digest, location, start, length, () => createReadStream(p.blob(d.digest), { start, end: start + length - 1 }));
      report({ event: 'bytes', digest: d.digest, done: start + length, total: d.size });
    }
    await finishUpload(s, repo, d.digest, location);
  }
};

/** Uploads one blob; a retryable fault starts its upload over (a fresh POST), up to the policy's attempts. */
const uploadBlob = async (p: StorePaths, s: Session, repo: string, d: Descriptor, mountFrom: string | undefined, chunkSize: number, report: Report): Promise<void> => {
  if (!(await hasBlob(p, d.digest))) throw failure('BlobNotFound', `blob ${d.digest}: not in the store; cannot push it`, ExitCode.notFound);
  for (let n = 1; ; n++) {
    try {
      return await uploadOnce(p, s, repo, d, mountFrom, chunkSize, report);
    } catch (e) {
      if (!isFailure(e) || !e.retryable || n >= s.policy.attempts) throw e;
      const delayMs = retryDelay(s.policy, n, undefined, Math.random());
      s.retried({ what: `upload ${blobWhat(s, repo, d.digest)}`, attempt: n, delayMs, reason: e.message });
      await sleep(delayMs);
    }
  }
};

const destinationOf = (source: string | undefined, options: PushOptions): Reference => {
  const name = options.destination ?? source;
  if (name === undefined) throw failure('Usage', 'the image has no name in the store: say where to push it (tsd-push REF DEST)');
  const r = parseReference(name);
  if (E.isLeft(r)) throw r.left;
  return r.right;
};

const run = async (p: StorePaths, source: string, options: PushOptions): Promise<ImageMessage> => {
  const report = options.report ?? silent;
  const env = options.env ?? process.env;
  const { entry, ref: sourceName } = await orThrow(findEntry(p, source));
  const dest = destinationOf(sourceName, options);
  const { top, manifests } = await collect(p, entry, options.platform ?? hostPlatform());
  const plan: PushPlan = planPush(top, manifests);
  const config = loadRegistriesConfig(env, options.insecure ?? []);
  if (E.isLeft(config)) throw config.left;
  // mount from the repository the image came from, when it is another one of the same registry
  const origin = sourceName !== undefined ? parseReference(sourceName) : undefined;
  const mountFrom = origin && E.isRight(origin) && origin.right.domain === dest.domain && origin.right.path !== dest.path ? origin.right.path : undefined;
  const credentials = findCredentials(env, dest.domain);
  const session = new Session(pushEndpoint(dest.domain, config.right), {
    ...(credentials ? { credentials } : {}),
    scopes: [`repository:${dest.path}:pull,push`, ...(mountFrom ? [`repository:${mountFrom}:pull`] : [])],
    policy: options.policy ?? defaultRetryPolicy(env),
    onRetry: (e) => report({ event: 'retry', ...e }),
  });
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  await inParallel(plan.blobs, options.concurrency ?? 6, (d) => uploadBlob(p, session, dest.path, d, mountFrom, chunkSize, report));

  const bytesOf = (d: Descriptor) => orThrow(readBlob(p, d.digest, 4 * 1024 * 1024));
  for (const m of plan.manifests) {
    if (m.descriptor.digest === plan.top.digest) continue;
    await putManifest(session, dest.path, m.descriptor.digest, await bytesOf(m.descriptor), m.descriptor.mediaType);
  }
  const topBytes = await bytesOf(plan.top);
  if (dest.digest !== undefined && dest.digest !== plan.top.digest) {
    throw failure('DigestMismatch', `${formatReference(dest)}: the image's digest is ${plan.top.digest}, not the one named`, ExitCode.user);
  }
  const announced = await putManifest(session, dest.path, dest.tag ?? plan.top.digest, topBytes, plan.top.mediaType);
  if (announced !== undefined && announced !== plan.top.digest) {
    throw failure('DigestMismatch', `push ${formatReference(dest)}: the registry stored digest ${announced}, not ${plan.top.digest}`, ExitCode.tool);
  }
  report({ event: 'manifest', ref: formatReference(dest), digest: plan.top.digest });
  const only = plan.manifests.length === 1 ? plan.manifests[0] : undefined;
  const single = only ? manifests.find((m) => m.descriptor.digest === only.descriptor.digest) : undefined;
  const cfg = single ? await orThrow(loadConfig(p, single.manifest.config.digest)) : undefined;
  const name = dest.tag !== undefined ? withTag(dest, dest.tag) : withDigest(dest, plan.top.digest);
  return imageMessage({
    ref: formatReference(name),
    digest: plan.top.digest,
    mediaType: plan.top.mediaType,
    size: topBytes.length,
    ...(single ? { config: single.manifest.config.digest } : {}),
    ...(cfg ? { platform: { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) } } : {}),
  });
};

/** Pushes the image `source` (a name, ID or digest in the store) and returns the message tsd-push prints. */
export const push = (p: StorePaths, source: string, options: PushOptions = {}): TE.TaskEither<Failure, ImageMessage> =>
  TE.tryCatch(() => run(p, source, options), fromError(`push ${source}`));
