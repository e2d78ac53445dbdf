// The JSON lines every tsd tool prints on stdout and reads on stdin: a documented, versioned
// contract (README.md, "The JSON contract"). One object per line; each carries its version `v`
// and its `type`. A consumer takes the message types it knows and ignores the others, so adding
// a type or a field is not a breaking change; removing or retyping one bumps `v`.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from './failure.js';
import { isDigest, type Digest } from './oci/digest.js';
import type { Platform } from './oci/manifest.js';

export const MESSAGE_VERSION = 1;

/** An image in the store (or just pushed to a registry): printed by pull, build, load, import, push, tag. */
export interface ImageMessage {
  readonly v: 1;
  readonly type: 'image';
  /** the normalized reference, e.g. "docker.io/library/busybox:latest"; absent for an untagged image */
  readonly ref?: string;
  /** digest of the manifest (or of the index, for a multi-platform image) */
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  /** digest of the config blob: Docker's "image ID" */
  readonly config?: Digest;
  readonly platform?: Platform;
}

/** A container: printed by `tsd-run -d`, `tsd-run ps --json`, `tsd-run inspect`. */
export interface ContainerMessage {
  readonly v: 1;
  readonly type: 'container';
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly state: 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'unknown';
  readonly exitCode?: number;
  readonly pid?: number;
  /** `tsd-run -d -p …`: the published ports as `docker ps` shows them (`0.0.0.0:32768->80/tcp`) */
  readonly ports?: readonly string[];
}

/** A progress or log event on stderr with `--progress=json`. */
export interface ProgressMessage {
  readonly v: 1;
  readonly type: 'progress';
  readonly tool: string;
  readonly event: string;
  readonly [key: string]: unknown;
}

export type Message = ImageMessage | ContainerMessage | ProgressMessage;

export const imageMessage = (fields: Omit<ImageMessage, 'v' | 'type'>): ImageMessage => ({ v: 1, type: 'image', ...fields });

export const formatMessage = (m: Message): string => `${JSON.stringify(m)}\n`;

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === 'object' && u !== null && !Array.isArray(u);

/** Decodes one line; an object of a type this version does not know is returned as undefined. */
export const decodeMessage = (line: string): E.Either<Failure, Message | undefined> => {
  let u: unknown;
  try {
    u = JSON.parse(line);
  } catch {
    return E.left(failure('InvalidMessage', `stdin: not a JSON line: ${JSON.stringify(line.slice(0, 80))}`));
  }
  if (!isObject(u) || typeof u.type !== 'string') return E.left(failure('InvalidMessage', 'stdin: a JSON line without "type"'));
  if (u.v !== undefined && u.v !== MESSAGE_VERSION) {
    return E.left(failure('InvalidMessage', `stdin: message version ${JSON.stringify(u.v)} is not supported (this tsd speaks v${MESSAGE_VERSION})`));
  }
  if (u.type === 'image') {
    if (!isDigest(u.digest)) return E.left(failure('InvalidMessage', 'stdin: image message without a valid "digest"'));
    return E.right({ ...u, v: 1 } as unknown as ImageMessage);
  }
  if (u.type === 'container' || u.type === 'progress') return E.right({ ...u, v: 1 } as unknown as Message);
  return E.right(undefined);
};

/** Reads JSON lines from a stream and yields the messages this version knows. */
export async function* readMessages(input: Readable): AsyncGenerator<E.Either<Failure, Message>> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const m = decodeMessage(line);
    if (E.isLeft(m)) yield m;
    else if (m.right !== undefined) yield E.right(m.right);
  }
}

/** The first image message on a stream (for `tsd-build | tsd-run`, `tsd-pull x | tsd-push`). */
export const firstImage = async (input: Readable): Promise<E.Either<Failure, ImageMessage>> => {
  for await (const m of readMessages(input)) {
    if (E.isLeft(m)) return m;
    if (m.right.type === 'image') return E.right(m.right);
  }
  return E.left(failure('NoImage', 'stdin: no image message (expected a JSON line like {"type":"image",...})'));
};
