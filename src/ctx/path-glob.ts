// PathGlob: a .dockerignore pattern (after patternmatcher's translation) as tokens matched by an
// automaton: time is path length × pattern size, so no pattern can make a walk hang the way a
// backtracking regular expression can (Go's regexp, which moby uses, is linear too).

export type PathToken =
  | { readonly k: 'lit'; readonly c: string }
  /** `?`: one character, not `/` */
  | { readonly k: 'one' }
  /** `*`: any run of characters without `/` */
  | { readonly k: 'star' }
  /** `**` before more pattern: nothing, or anything ending in `/` */
  | { readonly k: 'dirs' }
  /** a trailing `**`: anything */
  | { readonly k: 'all' }
  | { readonly k: 'class'; readonly negate: boolean; readonly ranges: readonly (readonly [string, string])[] };

const accepts = (t: PathToken, c: string): boolean => {
  switch (t.k) {
    case 'lit':
      return t.c === c;
    case 'one':
    case 'star':
      return c !== '/';
    case 'dirs':
    case 'all':
      return true;
    case 'class':
      return t.ranges.some(([lo, hi]) => c >= lo && c <= hi) !== t.negate;
  }
};

/**
 * Whether the tokens match all of `path` or, with `parents`, one of its parent directories
 * (a prefix ending just before a `/`): one pass either way.
 */
export const matchPath = (tokens: readonly PathToken[], path: string, parents = false): boolean => {
  const m = tokens.length;
  // at[j]: before token j; inDirs[j]: inside a `dirs` token j having read at least one character
  let at = new Uint8Array(m + 1);
  let inDirs = new Uint8Array(m + 1);
  let nextAt = new Uint8Array(m + 1);
  let nextIn = new Uint8Array(m + 1);
  const close = (set: Uint8Array) => {
    for (let j = 0; j < m; j++) {
      const k = tokens[j]!.k;
      if (set[j] && (k === 'star' || k === 'dirs' || k === 'all')) set[j + 1] = 1;
    }
  };
  at[0] = 1;
  close(at);
  for (const c of path) {
    if (parents && c === '/' && at[m]) return true;
    nextAt.fill(0);
    nextIn.fill(0);
    let alive = false;
    for (let j = 0; j < m; j++) {
      const t = tokens[j]!;
      if (t.k === 'dirs') {
        if (at[j] || inDirs[j]) {
          nextIn[j] = 1;
          alive = true;
          if (c === '/') nextAt[j + 1] = 1;
        }
        continue;
      }
      if (!at[j] || !accepts(t, c)) continue;
      alive = true;
      if (t.k === 'star' || t.k === 'all') nextAt[j] = 1;
      else nextAt[j + 1] = 1;
    }
    if (!alive && !nextAt[m]) return false;
    close(nextAt);
    [at, nextAt] = [nextAt, at];
    [inDirs, nextIn] = [nextIn, inDirs];
  }
  return at[m] === 1;
};
