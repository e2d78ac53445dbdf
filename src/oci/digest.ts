// Digest: a content address "algorithm:hex", decoded once at the boundary and trusted inside.
import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';

// node:crypto is loaded on first use, not when a module that checks a digest's form starts
const createHash = (algorithm: string): Hash => process.getBuiltinModule('node:crypto').createHash(algorithm);

export type Digest = string & { readonly __brand: 'Digest' };

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const SHA512 = /^sha512:[a-f0-9]{128}$/;

export const parseDigest = (s: string): E.Either<Failure, Digest> =>
  SHA256.test(s) || SHA512.test(s)
    ? E.right(s as Digest)
    : E.left(failure('InvalidDigest', `invalid digest: ${JSON.stringify(s.slice(0, 140))}`));

export const isDigest = (s: unknown): s is Digest => typeof s === 'string' && (SHA256.test(s) || SHA512.test(s));

export const algorithmOf = (d: Digest): 'sha256' | 'sha512' => (d.startsWith('sha512:') ? 'sha512' : 'sha256');
export const hexOf = (d: Digest): string => d.slice(d.indexOf(':') + 1);
/** The first 12 hex digits, as Docker prints image IDs. */
export const shortId = (d: Digest): string => hexOf(d).slice(0, 12);

export const digestOf = (data: string | Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest =>
  `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;

/**
 * A pass-through stream that hashes and counts what flows through it; read `digest()` and `size`
 * after it has ended. Used wherever bytes are copied, so hashing costs no second read.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash;
  size = 0;
  constructor(readonly algorithm: 'sha256' | 'sha512' = 'sha256') {
    super();
    this.hash = createHash(algorithm);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  private result: Digest | undefined;
  digest(): Digest {
    this.result ??= `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
    return this.result;
  }
}
