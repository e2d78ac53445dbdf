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
  readonly dirs: readonly string[];
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
export const compilePattern = (pattern: string): PathMatcher | undefined => {
  const r = translate(pattern);
  if (!r) return undefined;
  const { type, tokens } = r;
  switch (type) {
    case 'exact':
      return (path) => path === pattern;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      return (path) => path.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = pattern.slice(2);
      return (path) => path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
    }
    default:
      return (path) => matchPath(tokens, path);
  }
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
          re += '(.*/)?';
          type = 'regexp';
          if (tokens[tokens.length - 1]?.k !== 'dirs') tokens.push({ k: 'dirs' });
        }
        if (first) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
        if (tokens[tokens.length - 1]?.k !== 'star') tokens.push({ k: 'star' });
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
    const match = compilePattern(p);
    if (!match) return { ok: false, error: `syntax error in pattern ${JSON.stringify(raw)}` };
    patterns.push({ text: p, exclusion, match, dirs: p.split('/') });
  }
  return { ok: true, patterns };
};

/** True when `path` (slash-separated, relative) is excluded: moby's MatchesOrParentMatches. */
export const isExcluded = (patterns: readonly Pattern[], path: string): boolean => {
  let matched = false;
  const slash = path.lastIndexOf('/');
  const parents = slash < 0 ? [] : path.slice(0, slash).split('/');
  for (const p of patterns) {
    if (p.exclusion !== matched) continue;
    let match = p.match(path);
    if (!match) {
      let prefix = '';
      for (const d of parents) {
        prefix = prefix === '' ? d : `${prefix}/${d}`;
        if (p.match(prefix)) {
          match = true;
          break;
        }
      }
    }
    if (match) matched = !p.exclusion;
  }
  return matched;
};

const componentMatches = (pattern: string, name: string): boolean => {
  const m = compilePattern(pattern);
  return m !== undefined && m(name);
};

/**
 * Whether a walk must enter an excluded directory: true when some `!` pattern could match a path
 * below it (compared component by component; `**` may match anything).
 */
export const mayReinclude = (patterns: readonly Pattern[], dir: string): boolean => {
  const parts = dir.split('/');
  return patterns.some((p) => {
    if (!p.exclusion) return false;
    for (let i = 0; i < p.dirs.length && i < parts.length; i++) {
      if (p.dirs[i]!.includes('**')) return true;
      if (!componentMatches(p.dirs[i]!, parts[i]!)) return false;
    }
    return true;
  });
};
