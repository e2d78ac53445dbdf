// What "builds the same image" means in the podman comparison: the runtime config a user sees
// and the final file tree (paths, types, modes, owners, contents, link targets).
import type { ImageConfig } from '../../src/oci/config.js';
import type { FileNode } from './support.js';

const BUILDAH_LABEL = 'io.buildah.version';
const CONFIG_FIELDS = ['Cmd', 'Entrypoint', 'WorkingDir', 'User', 'Env', 'Labels', 'ExposedPorts', 'Volumes', 'StopSignal', 'Healthcheck', 'OnBuild', 'Shell'] as const;

const norm = (v: unknown): string => {
  if (v === undefined || v === null) return 'none';
  if (Array.isArray(v) && v.length === 0) return 'none';
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0) return 'none';
  if (typeof v === 'string' && v === '') return 'none';
  if (typeof v === 'object' && !Array.isArray(v)) return JSON.stringify(Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => a.localeCompare(b))));
  return JSON.stringify(v);
};

const withoutKey = (o: Readonly<Record<string, string>> | undefined, key: string) => (o ? Object.fromEntries(Object.entries(o).filter(([k]) => k !== key)) : o);

export const configDiff = (ours: ImageConfig, theirs: ImageConfig, skip: readonly string[] = []): string[] => {
  const out: string[] = [];
  for (const f of CONFIG_FIELDS) {
    if (skip.includes(f)) continue;
    const a = norm(ours.config?.[f]);
    // podman stamps its own version as a label: not something the Dockerfile asked for
    const b = norm(f === 'Labels' ? withoutKey(theirs.config?.Labels, BUILDAH_LABEL) : theirs.config?.[f]);
    if (a !== b) out.push(`config.${f}: tsd ${a} vs podman ${b}`);
  }
  return out;
};

const describe = (n: FileNode): string =>
  `${n.type} ${n.mode.toString(8)} ${n.uid}:${n.gid}${n.linkname !== undefined ? ` -> ${n.linkname}` : ''}${n.content !== undefined ? ` ${JSON.stringify(n.content.slice(0, 60))}` : ''}`;

/** Paths the runtimes leave as empty mount points, which neither builder's RUN made. */
const RUNTIME_DIRS = new Set(['dev', 'proc', 'sys', 'run', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname', 'run/.containerenv']);

export const treeDiff = (ours: Map<string, FileNode>, theirs: Map<string, FileNode>, ignoreDirModesOf: readonly string[] = []): string[] => {
  const out: string[] = [];
  const paths = new Set([...ours.keys(), ...theirs.keys()]);
  for (const path of [...paths].sort()) {
    if (RUNTIME_DIRS.has(path)) continue;
    const a = ours.get(path);
    const b = theirs.get(path);
    if (!a || !b) {
      out.push(`${path}: ${a ? describe(a) : 'absent'} (tsd) vs ${b ? describe(b) : 'absent'} (podman)`);
      continue;
    }
    const da = describe(a);
    const db = describe(b);
    if (da !== db && !(a.type === 'directory' && b.type === 'directory' && ignoreDirModesOf.includes(path))) out.push(`${path}: ${da} (tsd) vs ${db} (podman)`);
  }
  return out;
};
