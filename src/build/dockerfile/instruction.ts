// Instruction: one logical line becomes a typed Instruction, with BuildKit's rules per keyword
// (exec or shell form, key=value pairs, flags allowed and their values). No substitution here.
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../../failure.js';
import type { Command, Flag, Heredoc, Instruction, KeyValue, LineRange, Mount } from './ast.js';
import { dockerfileError, type DockerfileTag } from './error.js';
import type { LogicalLine } from './lines.js';
import { GO_SPACE, heredocHeads, parseJsonArray, quotedWords, splitCommand, whitespaceWords } from './words.js';
import { parseMount } from './mount.js';
import { withSuggestion } from './suggest.js';

type FlagKind = 'string' | 'bool' | 'list';
const FLAGS: Record<string, Record<string, FlagKind>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'list', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'list' },
  ADD: { chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', exclude: 'list' },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};
const KEYWORDS = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);

/** Which heredocs a logical line opens: RUN, COPY and ADD in shell form, also behind ONBUILD. */
export const heredocsOfLine = (line: string) => {
  let { keyword, rest } = splitCommand(line);
  if (keyword.toUpperCase() === 'ONBUILD') ({ keyword, rest } = splitCommand(rest));
  if (!HEREDOC_KEYWORDS.has(keyword.toUpperCase()) || parseJsonArray(rest).ok) return [];
  return heredocHeads(line);
};

interface Ctx {
  readonly file: string;
  readonly line: number;
  readonly escape: string;
}
const fail = (c: Ctx, tag: DockerfileTag, message: string): E.Either<Failure, never> => E.left(dockerfileError(tag, c.file, c.line, message));

/** Parses flag words against the flags the keyword accepts (BuildKit's BFlags rules). */
const decodeFlags = (c: Ctx, keyword: string, words: readonly string[]): E.Either<Failure, Flag[]> => {
  const allowed = FLAGS[keyword] ?? {};
  const out: Flag[] = [];
  const seen = new Set<string>();
  for (const w of words) {
    const body = w.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const kind = allowed[name];
    if (kind === undefined) return fail(c, 'InvalidFlag', `${keyword}: unknown flag: ${name}`);
    if (kind !== 'list' && seen.has(name)) return fail(c, 'InvalidFlag', `${keyword}: duplicate flag specified: ${name}`);
    seen.add(name);
    if (kind === 'bool' && value !== undefined && !/^(true|false)$/i.test(value)) return fail(c, 'InvalidFlag', `${keyword}: expecting boolean value for flag ${name}, not: ${value}`);
    if (kind !== 'bool' && value === undefined) return fail(c, 'InvalidFlag', `${keyword}: missing a value on flag: ${name}`);
    out.push(value === undefined ? { name } : { name, value });
  }
  return E.right(out);
};

const flagValue = (flags: readonly Flag[], name: string): string | undefined => flags.find((f) => f.name === name)?.value;
const flagBool = (flags: readonly Flag[], name: string): boolean => {
  const f = flags.find((x) => x.name === name);
  return f !== undefined && (f.value === undefined || f.value.toLowerCase() === 'true');
};
const flagList = (flags: readonly Flag[], name: string): string[] => flags.filter((f) => f.name === name).map((f) => f.value ?? '');

const command = (rest: string): E.Either<'notStrings', Command> => {
  const j = parseJsonArray(rest);
  if (j.ok) return E.right({ form: 'exec', args: j.args });
  if (j.notStrings) return E.left('notStrings');
  return E.right({ form: 'shell', text: rest });
};
const NOT_STRINGS = 'when using JSON array syntax, arrays must be comprised of strings only';

const pairs = (c: Ctx, keyword: string, rest: string): E.Either<Failure, KeyValue[]> => {
  const words = quotedWords(rest, c.escape);
  if (words.length === 0) return fail(c, 'DockerfileSyntax', `${keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    // the old form: KEY name value (the rest of the line is the value)
    const m = /[\t\v\f\r ]+/.exec(rest);
    if (!m) return fail(c, 'DockerfileSyntax', `${keyword} must have two arguments`);
    return E.right([{ key: rest.slice(0, m.index), value: rest.slice(m.index + m[0].length) }]);
  }
  const out: KeyValue[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) return fail(c, 'DockerfileSyntax', `Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    if (eq === 0) return fail(c, 'DockerfileSyntax', `${keyword} names can not be blank`);
    out.push({ key: w.slice(0, eq), value: w.slice(eq + 1) });
  }
  return E.right(out);
};

const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/** Builds the typed instruction of one logical line (nested once for ONBUILD). */
export const parseInstruction = (l: LogicalLine, file: string, escape: string, text = l.text, nested = false): E.Either<Failure, Instruction> => {
  const c: Ctx = { file, line: l.start, escape };
  const { keyword: written, flags: flagWords, rest } = splitCommand(text);
  const keyword = written.toUpperCase();
  if (!KEYWORDS.has(keyword)) return fail(c, 'UnknownInstruction', withSuggestion(`unknown instruction: ${written}`, written, [...KEYWORDS]));
  const flagsE = decodeFlags(c, keyword, flagWords);
  if (E.isLeft(flagsE)) return flagsE;
  const flags = flagsE.right;
  const lines: LineRange = { start: l.start, end: l.end };
  const base = { lines, flags, original: text.trim() };
  const heredocs: readonly Heredoc[] = nested || !HEREDOC_KEYWORDS.has(keyword) ? [] : l.heredocs;
  const atLeastOne = () => fail(c, 'DockerfileSyntax', `${keyword} requires at least one argument`);
  const exactlyOne = () => fail(c, 'DockerfileSyntax', `${keyword} requires exactly one argument`);

  switch (keyword) {
    case 'FROM': {
      const words = whitespaceWords(rest);
      if (words.length !== 1 && words.length !== 3) return fail(c, 'DockerfileSyntax', 'FROM requires either one or three arguments');
      if (words.length === 3 && words[1]!.toUpperCase() !== 'AS') return fail(c, 'DockerfileSyntax', `FROM: expected "AS" before the stage name, got ${JSON.stringify(words[1])}`);
      const name = words[2]?.toLowerCase();
      if (name !== undefined && !/^[a-z][a-z0-9\-_.]*$/.test(name)) return fail(c, 'InvalidStageName', `invalid name for build stage: ${JSON.stringify(words[2])}, name can't start with a number or contain symbols`);
      const platform = flagValue(flags, 'platform');
      return E.right({ keyword, ...base, image: words[0]!, ...(name !== undefined ? { name } : {}), ...(platform !== undefined ? { platform } : {}) });
    }
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT': {
      if (rest === '' && keyword === 'RUN') return atLeastOne();
      const cmd = command(rest);
      if (E.isLeft(cmd)) return fail(c, 'DockerfileSyntax', NOT_STRINGS);
      if (keyword !== 'RUN') return E.right({ keyword, ...base, command: cmd.right, heredocs: [] });
      const mounts: Mount[] = [];
      for (const m of flagList(flags, 'mount')) {
        const r = parseMount(m);
        if (E.isLeft(r)) return fail(c, 'InvalidFlag', `RUN --mount=${m}: ${r.left}`);
        mounts.push(r.right);
      }
      const network = flagValue(flags, 'network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) return fail(c, 'InvalidFlag', `RUN: unsupported network mode ${JSON.stringify(network)}`);
      const security = flagValue(flags, 'security');
      if (security !== undefined && !['sandbox', 'insecure'].includes(security)) return fail(c, 'InvalidFlag', `RUN: unsupported security mode ${JSON.stringify(security)}`);
      return E.right({
        keyword, ...base, command: cmd.right, heredocs, mounts,
        ...(network !== undefined ? { network: network as 'default' | 'none' | 'host' } : {}),
        ...(security !== undefined ? { security: security as 'sandbox' | 'insecure' } : {}),
      });
    }
    case 'SHELL': {
      const j = parseJsonArray(rest);
      if (!j.ok) return fail(c, 'DockerfileSyntax', j.notStrings ? NOT_STRINGS : 'SHELL requires the arguments to be in JSON form');
      if (j.args.length === 0) return fail(c, 'DockerfileSyntax', 'SHELL requires at least one argument');
      return E.right({ keyword, ...base, args: j.args });
    }
    case 'LABEL':
    case 'ENV': {
      const p = pairs(c, keyword, rest);
      return E.isLeft(p) ? p : E.right({ keyword, ...base, pairs: p.right });
    }
    case 'ARG': {
      const words = quotedWords(rest, escape);
      if (words.length === 0) return atLeastOne();
      const args = words.map((w) => {
        const eq = w.indexOf('=');
        return eq < 0 ? { name: w } : { name: w.slice(0, eq), default: w.slice(eq + 1) };
      });
      if (args.some((a) => a.name === '')) return fail(c, 'DockerfileSyntax', 'ARG names can not be blank');
      return E.right({ keyword, ...base, args });
    }
    case 'MAINTAINER':
      return rest === '' ? exactlyOne() : E.right({ keyword, ...base, name: rest });
    case 'USER':
      return rest === '' ? exactlyOne() : E.right({ keyword, ...base, user: rest });
    case 'WORKDIR':
      return rest === '' ? exactlyOne() : E.right({ keyword, ...base, path: rest });
    case 'STOPSIGNAL':
      return rest === '' ? exactlyOne() : E.right({ keyword, ...base, signal: rest });
    case 'EXPOSE': {
      const ports = whitespaceWords(rest);
      return ports.length === 0 ? atLeastOne() : E.right({ keyword, ...base, ports });
    }
    case 'VOLUME': {
      const j = parseJsonArray(rest);
      if (!j.ok && j.notStrings) return fail(c, 'DockerfileSyntax', NOT_STRINGS);
      const paths = j.ok ? j.args : whitespaceWords(rest);
      if (paths.length === 0) return atLeastOne();
      if (paths.some((p) => p.trim() === '')) return fail(c, 'DockerfileSyntax', 'VOLUME specified can not be an empty string');
      return E.right({ keyword, ...base, paths });
    }
    case 'ADD':
    case 'COPY': {
      const j = parseJsonArray(rest);
      if (!j.ok && j.notStrings) return fail(c, 'DockerfileSyntax', NOT_STRINGS);
      const words = j.ok ? j.args : whitespaceWords(rest);
      if (words.length < 2) return fail(c, 'DockerfileSyntax', `${keyword} requires at least two arguments, but only ${words.length} provided`);
      const from = flagValue(flags, 'from');
      const chown = flagValue(flags, 'chown');
      const chmod = flagValue(flags, 'chmod');
      const common = {
        ...base, sources: words.slice(0, -1), dest: words[words.length - 1]!,
        ...(from !== undefined ? { from } : {}), ...(chown !== undefined ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}),
        link: flagBool(flags, 'link'), parents: flagBool(flags, 'parents'), exclude: flagList(flags, 'exclude'), heredocs: j.ok ? [] : heredocs, json: j.ok,
      };
      if (keyword === 'COPY') return E.right({ keyword, ...common });
      const checksum = flagValue(flags, 'checksum');
      const keep = flags.some((f) => f.name === 'keep-git-dir');
      return E.right({ keyword, ...common, ...(checksum !== undefined ? { checksum } : {}), ...(keep ? { keepGitDir: flagBool(flags, 'keep-git-dir') } : {}) });
    }
    case 'ONBUILD': {
      if (rest === '') return atLeastOne();
      const inner = splitCommand(rest).keyword.toUpperCase();
      if (inner === 'ONBUILD') return fail(c, 'DockerfileSyntax', 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (inner === 'FROM' || inner === 'MAINTAINER') return fail(c, 'DockerfileSyntax', `${inner} isn't allowed as an ONBUILD trigger`);
      const nestedI = parseInstruction({ ...l, heredocs: [] }, file, escape, rest, true);
      if (E.isLeft(nestedI)) return nestedI;
      const i = nestedI.right;
      const withDocs = (i.keyword === 'RUN' || i.keyword === 'COPY' || i.keyword === 'ADD') && !('json' in i && i.json) ? { ...i, heredocs: l.heredocs } : i;
      return E.right({ keyword, ...base, instruction: withDocs });
    }
    case 'HEALTHCHECK': {
      // the type is the first word, the command the rest (Go's unicode.IsSpace splits them)
      const m = new RegExp(`^((?:(?!${GO_SPACE.source})[\\s\\S])+)${GO_SPACE.source}*([\\s\\S]*)$`).exec(rest);
      if (!m) return atLeastOne();
      const type = m[1]!.toUpperCase();
      if (type === 'NONE') {
        if (m[2] !== '') return fail(c, 'DockerfileSyntax', 'HEALTHCHECK NONE takes no arguments');
        if (flags.length > 0) return fail(c, 'DockerfileSyntax', 'HEALTHCHECK NONE takes no flags');
        return E.right({ keyword, ...base, test: { kind: 'none' } });
      }
      if (type !== 'CMD') return fail(c, 'DockerfileSyntax', `Unknown type ${JSON.stringify(m[1])} in HEALTHCHECK (try CMD)`);
      if (m[2] === '') return fail(c, 'DockerfileSyntax', 'Missing command after HEALTHCHECK CMD');
      const cmd = command(m[2]!);
      if (E.isLeft(cmd)) return fail(c, 'DockerfileSyntax', NOT_STRINGS);
      const durations: Record<string, string> = {};
      for (const name of ['interval', 'timeout', 'start-period', 'start-interval']) {
        const v = flagValue(flags, name);
        if (v === undefined) continue;
        if (v !== '0' && !DURATION.test(v)) return fail(c, 'InvalidFlag', `HEALTHCHECK: invalid duration for --${name}: ${JSON.stringify(v)}`);
        durations[name] = v;
      }
      const retriesText = flagValue(flags, 'retries');
      if (retriesText !== undefined && !/^-?\d+$/.test(retriesText)) return fail(c, 'InvalidFlag', `HEALTHCHECK: --retries must be an integer, got ${JSON.stringify(retriesText)}`);
      const retries = retriesText === undefined ? undefined : Number(retriesText);
      if (retries !== undefined && retries < 0) return fail(c, 'InvalidFlag', 'HEALTHCHECK: --retries cannot be negative');
      return E.right({
        keyword, ...base, test: { kind: 'cmd', command: cmd.right },
        ...(durations.interval ? { interval: durations.interval } : {}),
        ...(durations.timeout ? { timeout: durations.timeout } : {}),
        ...(durations['start-period'] ? { startPeriod: durations['start-period'] } : {}),
        ...(durations['start-interval'] ? { startInterval: durations['start-interval'] } : {}),
        ...(retries !== undefined ? { retries } : {}),
      });
    }
  }
  return fail(c, 'UnknownInstruction', withSuggestion(`unknown instruction: ${written}`, written, [...KEYWORDS]));
};
