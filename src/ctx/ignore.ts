// Ignore: .dockerignore with the rules of moby's patternmatcher. Each line is a pattern (comments
// start with `#` at column 0, blank lines skipped, surrounding space trimmed), cleaned like Go's
// filepath.Clean (`./a/` → `a`, a leading `/` dropped); `!` re-includes. The last pattern that
// matches a path, or one of its parent directories, decides. `*` and `?` stop at `/`, `**`
// crosses directories, `[...]` is a class, `\` escapes.
import { matchPath, type PathToken } from './path-glob.js';

export interface Pattern {
  /** the cleaned pattern, without `!` */
  readonly text: string;
  readonly exclusion: boolean;
  readonly match: PathMatcher;
  /** the path or one of its parent directories matches */
  readonly matchOrParent: PathMatcher;
  readonly dirs: readonly string[];
  /** each component of the pattern compiled alone ('any' for a `**` component), for mayReinclude */
  readonly dirMatchers: readonly (PathMatcher | 'any')[];
}

/** Go's path.Clean for a slash path. */
export const cleanPath = (p: string): string => {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = (rooted ? '/' : '') + out.join('/');
  return s === '' ? '.' : s;
};

/** The patterns of a .dockerignore file, as moby's ignorefile.ReadAll reads them. */
export const readIgnoreFile = (text: string): string[] => {
  const out: string[] = [];
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((line) => {
    if (line.startsWith('#')) return;
    let p = line.trim();
    if (p === '') return;
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? `!${p}` : p);
  });
  return out;
};

/** Characters escaped for the regexp because filepath.Match gives them no meaning (moby's list). */
const GO_ESCAPED = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);
const JS_SYNTAX = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/']);

export type PathMatcher = (path: string) => boolean;

/** One character inside a JavaScript `u` class: syntax characters and `-` escaped, others not. */
const classChar = (c: string): string => (JS_SYNTAX.has(c) || c === '-' ? `\\${c}` : c);

/**
 * Compiles one cleaned pattern as patternmatcher does, including its shortcuts: a pattern
 * without wildcards matches only itself, `foo**` is a prefix test and a pattern that starts with
 * `**` and has no other wildcard is a suffix test (so `**.go` matches `a.go`).
 */
export const compilePattern = (pattern: string): PathMatcher | undefined => compileMatchers(pattern)?.match;

const parentsOf = (path: string): string[] => {
  const out: string[] = [];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
};

const compileMatchers = (pattern: string): { match: PathMatcher; matchOrParent: PathMatcher } | undefined => {
  const r = translate(pattern);
  if (!r) return undefined;
  const { type, tokens } = r;
  let match: PathMatcher;
  switch (type) {
    case 'exact':
      match = (path) => path === pattern;
      break;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      match = (path) => path.startsWith(prefix);
      break;
    }
    case 'suffix': {
      const suffix = pattern.slice(2);
      match = (path) => path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
      break;
    }
    default: {
      // V8's backtracking regexp is fast but, with three or more unbounded wildcards, can take
      // time polynomial of high degree in the path length: those patterns run on the automaton
      const unbounded = tokens.filter((t) => t.k === 'star' || t.k === 'dirs' || t.k === 'all').length;
      if (unbounded >= 3) return { match: (path) => matchPath(tokens, path), matchOrParent: (path) => matchPath(tokens, path, true) };
      const re = r.regexp;
      match = (path) => re.test(path);
    }
  }
  return { match, matchOrParent: (path) => match(path) || parentsOf(path).some(match) };
};

/**
 * patternmatcher's translation of a pattern: its match type, its tokens, and the regular
 * expression moby would build (compiled only to refuse what Go's filepath.Match refuses, and
 * for tests that check the automaton against it).
 */
export const translate = (pattern: string): { type: 'exact' | 'prefix' | 'suffix' | 'regexp'; tokens: PathToken[]; regexp: RegExp } | undefined => {
  let re = '^';
  let type: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  const tokens: PathToken[] = [];
  const lit = (c: string) => tokens.push({ k: 'lit', c });
  const cs = Array.from(pattern);
  for (let i = 0; i < cs.length; i++) {
    const ch = cs[i]!;
    const first = i === 0;
    if (ch === '*') {
      if (cs[i + 1] === '*') {
        i++;
        if (cs[i + 1] === '/') i++;
        if (i + 1 >= cs.length) {
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
          tokens.push({ k: 'all' });
        } else {
          // `**/**/` means the same as `**/`: one group, not a run of them to backtrack through
          if (tokens[tokens.length - 1]?.k !== 'dirs') {
            re += '(.*/)?';
            tokens.push({ k: 'dirs' });
          }
          type = 'regexp';
        }
        if (first) type = 'suffix';
      } else {
        if (tokens[tokens.length - 1]?.k !== 'star') {
          re += '[^/]*';
          tokens.push({ k: 'star' });
        }
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
      tokens.push({ k: 'one' });
    } else if (GO_ESCAPED.has(ch)) {
      re += `\\${ch}`;
      lit(ch);
    } else if (ch === '\\') {
      if (i + 1 < cs.length) {
        const n = cs[++i]!;
        re += /[A-Za-z0-9]/.test(n) ? n : JS_SYNTAX.has(n) ? `\\${n}` : n;
        type = 'regexp';
        lit(n);
      } else {
        re += '\\\\';
        lit('\\');
      }
    } else if (ch === '[') {
      // a class: `^` negates, `a-z` ranges, `\x` escapes; `]` first is a member
      let j = i + 1;
      const negate = cs[j] === '^';
      if (negate) j++;
      const ranges: [string, string][] = [];
      let body = negate ? '^' : '';
      const member = (): string | undefined => {
        if (cs[j] === '\\' && j + 1 < cs.length) j++;
        return cs[j];
      };
      for (let firstMember = true; j < cs.length && (cs[j] !== ']' || firstMember); j++, firstMember = false) {
        const lo = member();
        if (lo === undefined) break;
        if (cs[j + 1] === '-' && j + 2 < cs.length && cs[j + 2] !== ']') {
          j += 2;
          const hi = member()!;
          if (hi < lo) return undefined; // a range that runs backwards
          ranges.push([lo, hi]);
          body += `${classChar(lo)}-${classChar(hi)}`;
        } else {
          ranges.push([lo, lo]);
          body += classChar(lo);
        }
      }
      if (j >= cs.length) return undefined; // no closing ]
      re += `[${body}]`;
      tokens.push({ k: 'class', negate, ranges });
      type = 'regexp';
      i = j;
    } else if (ch === ']') {
      re += '\\]';
      type = 'regexp';
      lit(ch);
    } else {
      re += ch;
      lit(ch);
    }
  }
  let regexp: RegExp;
  try {
    regexp = new RegExp(`${re}$`, 'u');
  } catch {
    return undefined;
  }
  return { type, tokens, regexp };
};

export type IgnoreResult = { readonly ok: true; readonly patterns: Pattern[] } | { readonly ok: false; readonly error: string };

export const compileIgnore = (lines: readonly string[]): IgnoreResult => {
  const patterns: Pattern[] = [];
  for (const raw of lines) {
    let p = raw.trim();
    if (p === '') continue;
    const exclusion = p.startsWith('!');
    if (exclusion) {
      if (p.length === 1) return { ok: false, error: 'illegal exclusion pattern: "!"' };
      p = p.slice(1);
    }
    p = cleanPath(p);
    const m = compileMatchers(p);
    if (!m) return { ok: false, error: `syntax error in pattern ${JSON.stringify(raw)}` };
    const dirs = p.split('/');
    const dirMatchers = dirs.map((d): PathMatcher | 'any' => (d.includes('**') ? 'any' : (compilePattern(d) ?? (() => true))));
    patterns.push({ text: p, exclusion, ...m, dirs, dirMatchers });
  }
  return { ok: true, patterns };
};

/** True when `path` (slash-separated, relative) is excluded: moby's MatchesOrParentMatches. */
export const isExcluded = (patterns: readonly Pattern[], path: string): boolean => {
  let matched = false;
  for (const p of patterns) {
    if (p.exclusion !== matched) continue;
    if (p.matchOrParent(path)) matched = !p.exclusion;
  }
  return matched;
};

/**
 * Whether a walk must enter an excluded directory: true when some `!` pattern could match a path
 * below it (compared component by component; `**` may match anything).
 */
export const mayReinclude = (patterns: readonly Pattern[], dir: string): boolean => {
  const parts = dir.split('/');
  return patterns.some((p) => {
    if (!p.exclusion) return false;
    for (let i = 0; i < p.dirMatchers.length && i < parts.length; i++) {
      const m = p.dirMatchers[i]!;
      if (m === 'any') return true;
      if (!m(parts[i]!)) return false;
    }
    return true;
  });
};
