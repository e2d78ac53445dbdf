// ImageConfig: the OCI image configuration (config blob): what a container of the image runs.
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';
import type { Digest } from './digest.js';

export interface HealthConfig {
  readonly Test?: readonly string[];
  readonly Interval?: number;
  readonly Timeout?: number;
  readonly StartPeriod?: number;
  readonly StartInterval?: number;
  readonly Retries?: number;
}

export interface ContainerConfig {
  readonly User?: string;
  readonly ExposedPorts?: Readonly<Record<string, object>>;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[] | null;
  readonly Cmd?: readonly string[] | null;
  readonly Volumes?: Readonly<Record<string, object>>;
  readonly WorkingDir?: string;
  readonly Labels?: Readonly<Record<string, string>>;
  readonly StopSignal?: string;
  readonly ArgsEscaped?: boolean;
  /** Docker extensions that OCI configs carry too (Docker and Podman write them). */
  readonly Healthcheck?: HealthConfig;
  readonly OnBuild?: readonly string[] | null;
  readonly Shell?: readonly string[];
}

export interface HistoryEntry {
  readonly created?: string;
  readonly created_by?: string;
  readonly author?: string;
  readonly comment?: string;
  readonly empty_layer?: boolean;
}

export interface ImageConfig {
  readonly created?: string;
  readonly author?: string;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly config?: ContainerConfig;
  readonly rootfs: { readonly type: 'layers'; readonly diff_ids: readonly Digest[] };
  readonly history?: readonly HistoryEntry[];
}

export const decodeImageConfig = (bytes: Uint8Array | string): E.Either<Failure, ImageConfig> => {
  let u: unknown;
  try {
    u = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch {
    return E.left(failure('InvalidConfig', 'invalid image config: not valid JSON'));
  }
  const c = u as Partial<ImageConfig> | null;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return E.left(failure('InvalidConfig', 'invalid image config: not an object'));
  if (typeof c.architecture !== 'string' || typeof c.os !== 'string') {
    return E.left(failure('InvalidConfig', 'invalid image config: architecture and os are required'));
  }
  if (typeof c.rootfs !== 'object' || c.rootfs === null || !Array.isArray(c.rootfs.diff_ids)) {
    return E.left(failure('InvalidConfig', 'invalid image config: rootfs.diff_ids is required'));
  }
  if (!c.rootfs.diff_ids.every((d) => typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d))) {
    return E.left(failure('InvalidConfig', 'invalid image config: a diff_id is not a sha256 digest'));
  }
  return E.right(c as ImageConfig);
};
