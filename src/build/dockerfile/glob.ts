// Glob: the shell patterns of `${VAR#pat}`, `${VAR%pat}` and `${VAR/pat/repl}` (`*`, `?`,
// `[...]`, `[!...]`, the escape character), matched by simulating the pattern as an automaton:
// time is length × pattern size, whatever the input — no regular expression is built from the
// Dockerfile's text, so no pattern can make substitution hang.

type Token =
  | { readonly k: 'lit'; readonly c: string }
  | { readonly k: 'any' }
  | { readonly k: 'star' }
  | { readonly k: 'class'; readonly negate: boolean; readonly items: readonly (readonly [string, string])[] };

export type Glob = readonly Token[];

export const compileGlob = (pattern: string, escape: string): Glob => {
  const cs = Array.from(pattern);
  const out: Token[] = [];
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i]!;
    if (c === escape && i + 1 < cs.length) out.push({ k: 'lit', c: cs[++i]! });
    else if (c === '*') {
      if (out[out.length - 1]?.k !== 'star') out.push({ k: 'star' });
    } else if (c === '?') out.push({ k: 'any' });
    else if (c === '[') {
      let j = i + 1;
      const negate = cs[j] === '!' || cs[j] === '^';
      if (negate) j++;
      const items: [string, string][] = [];
      let first = true;
      for (; j < cs.length && (cs[j] !== ']' || first); j++) {
        first = false;
        const lo = cs[j]!;
        if (cs[j + 1] === '-' && j + 2 < cs.length && cs[j + 2] !== ']') {
          items.push([lo, cs[j + 2]!]);
          j += 2;
        } else items.push([lo, lo]);
      }
      if (j >= cs.length) out.push({ k: 'lit', c: '[' }); // no closing ]: a literal [
      else {
        out.push({ k: 'class', negate, items });
        i = j;
      }
    } else out.push({ k: 'lit', c });
  }
  return out;
};

const accepts = (t: Token, c: string): boolean => {
  switch (t.k) {
    case 'lit':
      return t.c === c;
    case 'any':
      return true;
    case 'star':
      return true;
    case 'class':
      return t.items.some(([lo, hi]) => c >= lo && c <= hi) !== t.negate;
  }
};

/** For each i, whether the glob matches the first i characters of `chars` (true at the end index for a full match). */
export const prefixMatches = (g: Glob, chars: readonly string[]): boolean[] => {
  const m = g.length;
  const closure = (set: boolean[]) => {
    for (let j = 0; j < m; j++) if (set[j] && g[j]!.k === 'star') set[j + 1] = true;
    return set;
  };
  let cur = closure(Array.from({ length: m + 1 }, (_, j) => j === 0));
  const res = [cur[m]!];
  for (const c of chars) {
    const next = new Array<boolean>(m + 1).fill(false);
    let alive = false;
    for (let j = 0; j < m; j++) {
      if (!cur[j]) continue;
      const t = g[j]!;
      if (t.k === 'star') next[j] = alive = true;
      else if (accepts(t, c)) next[j + 1] = alive = true;
    }
    cur = closure(next);
    res.push(cur[m]!);
    if (!alive) {
      while (res.length <= chars.length) res.push(false);
      break;
    }
  }
  return res;
};

/** `${v#g}` (shortest) and `${v##g}` (longest): the value without the matching prefix. */
export const removePrefix = (v: string, g: Glob, longest: boolean): string => {
  const chars = Array.from(v);
  const r = prefixMatches(g, chars);
  const i = longest ? r.lastIndexOf(true) : r.indexOf(true);
  return i < 0 ? v : chars.slice(i).join('');
};

/** `${v%g}` (shortest) and `${v%%g}` (longest): the value without the matching suffix. */
export const removeSuffix = (v: string, g: Glob, longest: boolean): string => {
  const chars = Array.from(v);
  const r = prefixMatches([...g].reverse(), [...chars].reverse());
  const i = longest ? r.lastIndexOf(true) : r.indexOf(true);
  return i < 0 ? v : chars.slice(0, chars.length - i).join('');
};

/** `${v/g/repl}` and `${v//g/repl}`: the longest match at the first place one starts (every place with `all`). */
export const replaceMatches = (v: string, g: Glob, repl: string, all: boolean): string => {
  const chars = Array.from(v);
  let out = '';
  let p = 0;
  let replaced = false;
  while (p <= chars.length) {
    const len = (all || !replaced) && g.length > 0 ? prefixMatches(g, chars.slice(p)).lastIndexOf(true) : -1;
    if (len > 0) {
      out += repl;
      p += len;
      replaced = true;
      continue;
    }
    if (p < chars.length) out += chars[p];
    p++;
  }
  return out;
};
