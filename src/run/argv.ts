// Argv: Docker-style flag parsing, decoded at the boundary. Docker's grammar is not what a
// generic parser gives: options stop at the first positional (the image), after which every word,
// `-c` included, belongs to the container's command; short flags combine (`-it`); values come as
// `-e X`, `-eX`, `--env X` or `--env=X`; flags repeat. A table of flags drives one small parser.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';

export interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  /** takes a value (else a boolean flag) */
  readonly value?: boolean;
  readonly description?: string;
}

export interface ParsedArgs {
  /** flag values by long name; booleans as 'true'/'false'; repeated flags keep every value */
  readonly flags: ReadonlyMap<string, readonly string[]>;
  readonly positionals: readonly string[];
}

const usage = (message: string): Failure => failure('Usage', message, ExitCode.tool);

/**
 * Parses `argv` against `specs`. With `stopAtPositional` (tsd-run IMAGE CMD…), everything from
 * the first positional on is positional; otherwise flags may follow positionals (ps, logs).
 */
export const parseArgv = (argv: readonly string[], specs: readonly FlagSpec[], stopAtPositional: boolean): E.Either<Failure, ParsedArgs> => {
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  const put = (k: string, v: string) => flags.set(k, [...(flags.get(k) ?? []), v]);
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.flatMap((s) => (s.short ? [[s.short, s] as const] : [])));
  let i = 0;
  while (i < argv.length) {
    const a = argv[i] as string;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const spec = byLong.get(name);
      if (!spec) return E.left(usage(`unknown flag: --${name}`));
      if (spec.value) {
        const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) return E.left(usage(`flag needs an argument: --${name}`));
        put(spec.long, v);
      } else {
        const v = eq > 0 ? a.slice(eq + 1) : 'true';
        if (v !== 'true' && v !== 'false') return E.left(usage(`invalid value ${JSON.stringify(v)} for flag --${name}: expected true or false`));
        put(spec.long, v);
      }
      i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      // -it, -eX, -e X, -p8080:80
      for (let j = 1; j < a.length; j++) {
        const c = a[j] as string;
        const spec = byShort.get(c);
        if (!spec) return E.left(usage(`unknown shorthand flag: '${c}' in ${a}`));
        if (spec.value) {
          const rest = a.slice(j + 1).replace(/^=/, '');
          const v = rest !== '' ? rest : argv[++i];
          if (v === undefined) return E.left(usage(`flag needs an argument: '${c}' in -${c}`));
          put(spec.long, v);
          break;
        }
        put(spec.long, 'true');
      }
      i++;
      continue;
    }
    if (stopAtPositional) {
      positionals.push(...argv.slice(i));
      break;
    }
    positionals.push(a);
    i++;
  }
  return E.right({ flags, positionals });
};

export const lastValue = (p: ParsedArgs, long: string): string | undefined => p.flags.get(long)?.at(-1);
export const allValues = (p: ParsedArgs, long: string): readonly string[] => p.flags.get(long) ?? [];
export const isSet = (p: ParsedArgs, long: string): boolean => lastValue(p, long) === 'true';

/** "64m", "1g", "512k", "1048576" → bytes. */
export const parseBytes = (flag: string, s: string): E.Either<Failure, number> => {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(s.trim());
  if (!m) return E.left(usage(`invalid value ${JSON.stringify(s)} for ${flag}: expected a size like 64m or 1g`));
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase() as '' | 'b' | 'k' | 'm' | 'g' | 't'];
  return E.right(Math.floor(Number(m[1]) * unit));
};

export const parseNumber = (flag: string, s: string, integer = false): E.Either<Failure, number> => {
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) return E.left(usage(`invalid value ${JSON.stringify(s)} for ${flag}: expected ${integer ? 'an integer' : 'a number'}`));
  return E.right(n);
};

/** Usage text from a flag table. */
export const helpText = (synopsis: string, specs: readonly FlagSpec[]): string =>
  `${synopsis}\n\nOptions:\n${specs.map((s) => `  ${s.short ? `-${s.short}, ` : '    '}--${s.long}${s.value ? ' value' : ''}`.padEnd(34) + (s.description ?? '')).join('\n')}\n`;
