// Ignore: .dockerignore with the rules of moby's patternmatcher. Each line is a pattern (comments
// start with `#` at column 0, blank lines skipped, surrounding space trimmed), cleaned like Go's
// filepath.Clean (`./a/` → `a`, a leading `/` dropped); `!` re-includes. The last pattern that
// matches a path, or one of its parent directories, decides. `*` and `?` stop at `/`, `**`
// crosses directories, `[...]` is a class, `\` escapes.

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
const JS_SYNTAX = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/', '-']);

export type PathMatcher = (path: string) => boolean;

/**
 * Compiles one cleaned pattern exactly as patternmatcher does, including its shortcuts: a pattern
 * without wildcards matches only itself, `foo**` is a prefix test and a pattern that starts with
 * `**` and has no other wildcard is a suffix test (so `**.go` matches `a.go`).
 */
export const compilePattern = (pattern: string): PathMatcher | undefined => {
  let re = '^';
  let type: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  let inClass = false;
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
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (first) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if (GO_ESCAPED.has(ch)) re += `\\${ch}`;
    else if (ch === '\\') {
      if (i + 1 < cs.length) {
        const n = cs[++i]!;
        re += /[A-Za-z0-9]/.test(n) ? n : JS_SYNTAX.has(n) && (inClass || n !== '-') ? `\\${n}` : n;
        type = 'regexp';
      } else re += '\\\\';
    } else if (ch === '[' || ch === ']') {
      // a `]` outside a class is a literal for Go's regexp; JavaScript's wants it escaped
      re += ch === ']' && !inClass ? '\\]' : ch;
      inClass = ch === '[';
      type = 'regexp';
    } else re += ch;
  }
  // runs of `**/` or `*` mean the same as one: collapsing them limits backtracking on deep paths
  re = re.replace(/(?:\(\.\*\/\)\?){2,}/g, '(.*/)?').replace(/(?:\[\^\/\]\*){2,}/g, '[^/]*');
  // filepath.Match's syntax check: a pattern whose regexp does not compile is refused
  let compiled: RegExp;
  try {
    compiled = new RegExp(`${re}$`, 'u');
  } catch {
    return undefined;
  }
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
      return (path) => compiled.test(path);
  }
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
