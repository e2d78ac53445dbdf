// BuildState: a stage between two steps: its layers (bottom first), the image config being made
// and its history. Values: a step returns a new state. The state's `id` is what a step's cache key
// starts from: the layers and the parts of the config a RUN or COPY can see (Env, User,
// WorkingDir, Shell), so a LABEL or EXPOSE before a RUN does not invalidate it.
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../oci/config.js';
import type { Digest } from '../oci/digest.js';
import { hostPlatform } from '../oci/platform.js';
import { cacheKey, type CachedLayer } from './cache.js';
import { DEFAULT_PATH } from './config-effect.js';

export interface BuildState {
  readonly layers: readonly CachedLayer[];
  readonly config: ContainerConfig;
  readonly history: readonly HistoryEntry[];
  readonly author?: string;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  /** true once this stage set CMD (a later ENTRYPOINT then keeps it) */
  readonly cmdSet: boolean;
}

export const stateId = (s: BuildState): string =>
  cacheKey([s.layers.map((l) => l.diffId), s.config.Env ?? [], s.config.User ?? '', s.config.WorkingDir ?? '', s.config.Shell ?? []]);

/** A stage's start: the base's layers and config, with Docker's default PATH when it has none. */
export const startState = (base: { layers: readonly CachedLayer[]; config: ImageConfig } | undefined): BuildState => {
  const platform = hostPlatform();
  const cfg = base?.config;
  const config: ContainerConfig = { ...(cfg?.config ?? {}) };
  const env = config.Env ?? [];
  const withPath = env.some((e) => e.startsWith('PATH=')) ? env : [DEFAULT_PATH, ...env];
  // ONBUILD triggers run in this stage; they are not inherited further
  const { OnBuild: _onbuild, ...rest } = config;
  return {
    layers: base?.layers ?? [],
    config: { ...rest, Env: withPath },
    history: cfg?.history ?? [],
    ...(cfg?.author !== undefined ? { author: cfg.author } : {}),
    architecture: cfg?.architecture ?? platform.architecture,
    os: cfg?.os ?? platform.os,
    ...(cfg?.variant !== undefined ? { variant: cfg.variant } : cfg === undefined && platform.variant !== undefined ? { variant: platform.variant } : {}),
    cmdSet: false,
  };
};

export const withLayer = (s: BuildState, layer: CachedLayer | undefined, entry: HistoryEntry): BuildState => ({
  ...s,
  layers: layer ? [...s.layers, layer] : s.layers,
  history: [...s.history, layer ? entry : { ...entry, empty_layer: true }],
});

/** The image config a state stands for. */
export const imageConfigOf = (s: BuildState, created: string): ImageConfig => ({
  created,
  ...(s.author !== undefined ? { author: s.author } : {}),
  architecture: s.architecture,
  os: s.os,
  ...(s.variant !== undefined ? { variant: s.variant } : {}),
  config: s.config,
  rootfs: { type: 'layers', diff_ids: s.layers.map((l) => l.diffId as Digest) },
  history: s.history,
});
