// Ignore: .dockerignore with the rules of moby's patternmatcher. Each line is a pattern (comments
// start with `#` at column 0, blank lines skipped, surrounding space trimmed), cleaned like Go's
// filepath.Clean (`./a/` → `a`, a leading `/` dropped); `!` re-includes. The last pattern that
// matches a path, or one of its parent directories, decides. `*` and `?` stop at `/`, `**`
// crosses directories, `[...]` is a class, `\` escapes.

export interface Pattern {
  /** the cleaned pattern, without `!` */
  readonly text: string;
  readonly exclusion: boolean;
  readonly regexp: RegExp;
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

const REGEX_SPECIAL = /[.+()|{}$^]/;

/** Compiles one pattern as patternmatcher does: anchored, `*` = `[^/]*`, `**` = any directories. */
export const compilePattern = (pattern: string): RegExp | undefined => {
  let re = '^';
  const cs = Array.from(pattern);
  for (let i = 0; i < cs.length; i++) {
    const ch = cs[i]!;
    if (ch === '*') {
      if (cs[i + 1] === '*') {
        i++;
        if (cs[i + 1] === '/') i++;
        re += i + 1 >= cs.length ? '[\\s\\S]*' : '([\\s\\S]*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      if (i + 1 >= cs.length) re += '\\\\';
      else re += `\\${cs[++i]}`.replace(/^\\([A-Za-z0-9])$/, '$1');
    } else if (REGEX_SPECIAL.test(ch)) re += `\\${ch}`;
    else re += ch;
  }
  re += '$';
  try {
    return new RegExp(re, 'u');
  } catch {
    return undefined;
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
    const regexp = compilePattern(p);
    if (!regexp) return { ok: false, error: `syntax error in pattern ${JSON.stringify(raw)}` };
    patterns.push({ text: p, exclusion, regexp, dirs: p.split('/') });
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
    let match = p.regexp.test(path);
    if (!match) {
      let prefix = '';
      for (const d of parents) {
        prefix = prefix === '' ? d : `${prefix}/${d}`;
        if (p.regexp.test(prefix)) {
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
  const re = compilePattern(pattern);
  return re !== undefined && re.test(name);
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
