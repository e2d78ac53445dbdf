// Add: ADD's two extras over COPY. An http(s) URL is fetched into the build's scratch dir (the
// sha256 checked against --checksum when given), and lands as one file with mode 0600 (Docker's
// rule) named after the URL's last path part when the destination is a directory. A local source
// that is a tar archive (plain, gzip, bzip2 or xz; told by its bytes, not its name) is unpacked
// into the destination, keeping the archive's owners unless --chown. Anything else is a COPY.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, createReadStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as E from 'fp-ts/lib/Either.js';
import { isFailure } from '../failure.js';
import { discard, send, type HttpResponse } from '../registry/http.js';
import type { StepEnv } from './builder.js';
import { keptOutput } from './child-output.js';
import { readContextTar, type BuildContext, type ContextEntry } from './context.js';
import { matchSources, planCopy, type CopyPlan, type CopyRequest } from './copy.js';
import type { Tree } from './tree.js';

type Compression = 'gzip' | 'bzip2' | 'xz' | 'none';

const compressionOf = (head: Buffer): Compression =>
  head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : head.subarray(0, 3).toString('latin1') === 'BZh' ? 'bzip2' : head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) ? 'xz' : 'none';

const decompress = (source: Readable, c: Compression): Readable => {
  if (c === 'none') return source;
  if (c === 'gzip') {
    const gunzip = createGunzip();
    source.on('error', (e) => gunzip.destroy(e));
    return source.pipe(gunzip);
  }
  const tool = c === 'bzip2' ? 'bzip2' : 'xz';
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
  // a decompressor that cannot start (missing, or no process to be had) is an error, never an
  // empty stream: that would pass for "not an archive" and copy the file as it is
  child.on('error', (e) => child.stdout.destroy(new Error(`${tool}: ${e.message}`)));
  source.on('error', (e) => child.stdout.destroy(e));
  source.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  return keptOutput(child.stdout);
};

const readHead = async (s: Readable, n: number): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of s) {
    chunks.push(c as Buffer);
    size += (c as Buffer).length;
    if (size >= n) break;
  }
  s.destroy();
  return Buffer.concat(chunks).subarray(0, n);
};

/** True when the bytes of `e` are a tar archive, maybe compressed. */
const archiveKind = async (ctx: BuildContext, e: ContextEntry): Promise<Compression | undefined> => {
  if (e.type !== 'file' || e.size < 6) return undefined;
  const c = compressionOf(await readHead(ctx.open(e), 6));
  // bytes that do not decompress are not an archive (Docker copies them as they are); a
  // decompressor that does not run is an error (the step fails naming the file)
  const head = await readHead(decompress(ctx.open(e), c), 512).catch((err: Error) => {
    if (/^(xz|bzip2): /.test(err.message)) throw err;
    return Buffer.alloc(0);
  });
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar' ? c : undefined;
};

const fetchUrl = async (url: string, dir: string, checksum: string | undefined): Promise<E.Either<string, { path: string; size: number; sha256: string; mtime: number }>> => {
  let res: HttpResponse;
  try {
    res = await send({ method: 'GET', url: new URL(url) });
  } catch (e) {
    return E.left(`fetch ${url}: ${isFailure(e) ? e.message.replace(/^GET \S+: /, '') : (e as Error).message}`);
  }
  if (res.status < 200 || res.status > 299) {
    discard(res);
    return E.left(`fetch ${url}: HTTP ${res.status}`);
  }
  await fs.mkdir(dir, { recursive: true });
  const path = join(dir, `add-${randomBytes(8).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  res.body.on('data', (c: Buffer) => {
    hash.update(c);
    size += c.length;
  });
  await pipeline(res.body, createWriteStream(path));
  const sha256 = `sha256:${hash.digest('hex')}`;
  if (checksum !== undefined && checksum !== sha256) {
    await fs.unlink(path).catch(() => undefined);
    return E.left(`checksum of ${url} does not match: expected ${checksum}, got ${sha256}`);
  }
  const lm = res.headers['last-modified'];
  const mtime = lm ? Math.floor(Date.parse(lm) / 1000) : 0;
  return E.right({ path, size, sha256, mtime: Number.isFinite(mtime) ? mtime : 0 });
};

const merge = (plans: CopyPlan[]): CopyPlan => ({ entries: plans.flatMap((p) => p.entries), fingerprint: JSON.stringify(plans.map((p) => p.fingerprint)) });

export const addSources = async (
  env: StepEnv,
  tree: Tree,
  req: CopyRequest,
  checksum: string | undefined,
): Promise<E.Either<string, { plan: CopyPlan; cleanup: () => Promise<void> }>> => {
  const temps: string[] = [];
  const contexts: BuildContext[] = [];
  const cleanup = async () => {
    for (const t of temps) await fs.unlink(t).catch(() => undefined);
    for (const c of contexts) await c.dispose();
  };
  const plans: CopyPlan[] = [];
  const many = req.sources.length > 1;
  const dest = many && !req.dest.endsWith('/') ? `${req.dest}/` : req.dest;
  const done = (e: E.Either<string, CopyPlan>): string | undefined => {
    if (E.isLeft(e)) return e.left;
    plans.push(e.right);
    return undefined;
  };
  if (checksum !== undefined && !req.sources.every((s) => /^https?:\/\//.test(s))) {
    return E.left('--checksum is only supported with http(s) sources');
  }
  if (checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(checksum)) return E.left(`--checksum=${checksum}: expected sha256:HEX`);
  for (const source of req.sources) {
    if (/^https?:\/\//.test(source)) {
      const got = await fetchUrl(source, env.scratch, checksum);
      if (E.isLeft(got)) {
        await cleanup();
        return got;
      }
      temps.push(got.right.path);
      const name = decodeURIComponent(new URL(source).pathname.split('/').filter(Boolean).pop() ?? 'download');
      const entries = new Map<string, ContextEntry>([[name, { path: name, type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: got.right.mtime, size: got.right.size, sha256: got.right.sha256, offset: 0 }]]);
      const one: BuildContext = { entries, children: new Map([['', [name]]]), open: () => createReadStream(got.right.path), dispose: async () => undefined };
      const bad = done(planCopy(one, tree, { ...req, dest, sources: [name] }));
      if (bad) {
        await cleanup();
        return E.left(bad);
      }
      continue;
    }
    if (source.startsWith('<<')) {
      const bad = done(planCopy(env.ctx, tree, { ...req, dest, sources: [source] }));
      if (bad) return E.left(bad);
      continue;
    }
    const matched = matchSources(env.ctx, source);
    if (E.isLeft(matched)) {
      await cleanup();
      return matched;
    }
    for (const e of matched.right) {
      let kind: Compression | undefined;
      try {
        kind = await archiveKind(env.ctx, e);
      } catch (err) {
        await cleanup();
        return E.left(`${e.path}: cannot read the archive: ${(err as Error).message}`);
      }
      if (kind === undefined) {
        const bad = done(planCopy(env.ctx, tree, { ...req, dest: matched.right.length > 1 && !dest.endsWith('/') ? `${dest}/` : dest, sources: [e.path] }));
        if (bad) {
          await cleanup();
          return E.left(bad);
        }
        continue;
      }
      const unpacked = await readContextTar(decompress(env.ctx.open(e), kind), env.scratch);
      if (E.isLeft(unpacked)) {
        await cleanup();
        return E.left(`unpack ${e.path}: ${unpacked.left.message}`);
      }
      contexts.push(unpacked.right);
      const plan = planCopy(unpacked.right, tree, { ...req, dest: dest.endsWith('/') ? dest : `${dest}/`, sources: ['.'], keepOwners: req.owner === undefined });
      if (E.isLeft(plan)) {
        await cleanup();
        return plan;
      }
      plans.push({ entries: plan.right.entries, fingerprint: JSON.stringify([e.sha256, plan.right.fingerprint]) });
    }
  }
  return E.right({ plan: merge(plans), cleanup });
};
