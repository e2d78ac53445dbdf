// PlainArgs: the command lines tsd-pull answers without its full argument parser (see cli.ts).
export interface PlainPull {
  readonly refs: readonly string[];
  readonly root?: string;
  readonly progress?: string;
  readonly quiet: boolean;
}

/** The options of a plain pull, or undefined when the command line needs the full parser. Pure. */
export const plainPull = (argv: readonly string[]): PlainPull | undefined => {
  const refs: string[] = [];
  let root: string | undefined;
  let progress: string | undefined;
  let quiet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-q' || a === '--quiet') quiet = true;
    else if ((a === '--root' || a === '--progress') && i + 1 < argv.length && !(argv[i + 1] as string).startsWith('-')) {
      if (a === '--root') root = argv[++i];
      else progress = argv[++i];
    } else if (a.startsWith('--root=')) root = a.slice('--root='.length);
    else if (a.startsWith('--progress=')) progress = a.slice('--progress='.length);
    else if (a.startsWith('-')) return undefined;
    else refs.push(a);
  }
  if (refs.length === 0) return undefined;
  return { refs, quiet, ...(root !== undefined ? { root } : {}), ...(progress !== undefined ? { progress } : {}) };
};
