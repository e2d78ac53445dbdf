// Words: how BuildKit cuts an instruction's text before any substitution. Flags at the front
// (`--name=value` until the first word not starting with `--`), quote-aware words for ENV, LABEL
// and ARG, whitespace-split lists, and the JSON array test behind the exec form.
import type { HeredocHead } from './lines.js';

/** Go's unicode.IsSpace (JavaScript's \s also takes U+FEFF, Go does not). */
export const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const isSpace = (c: string): boolean => GO_SPACE.test(c);
/** strings.TrimSpace */
export const trimSpace = (s: string): string => s.replace(new RegExp(`^${GO_SPACE.source}+|${GO_SPACE.source}+$`, 'g'), '');
const WHITESPACE = /[\t\v\f\r ]+/;

/** Splits on whitespace runs exactly as BuildKit's regexp does (empty text gives no words). */
export const whitespaceWords = (rest: string): string[] => (rest === '' ? [] : rest.split(WHITESPACE));

/** The keyword, the raw flag words and the rest of an instruction line. */
export const splitCommand = (line: string): { keyword: string; flags: string[]; rest: string } => {
  const trimmed = trimSpace(line);
  const m = /[\t\v\f\r ]+/.exec(trimmed);
  if (!m) return { keyword: trimmed, flags: [], rest: '' };
  const { flags, rest } = extractFlags(trimmed.slice(m.index + m[0].length));
  return { keyword: trimmed.slice(0, m.index), flags, rest: trimSpace(rest) };
};

/** Leading `--flag[=value]` words (quotes and backslashes removed); `--` alone ends them. */
export const extractFlags = (line: string): { flags: string[]; rest: string } => {
  const flags: string[] = [];
  let pos = 0;
  for (;;) {
    while (pos < line.length && isSpace(line[pos]!)) pos++;
    if (pos >= line.length) return { flags, rest: '' };
    if (!line.startsWith('--', pos)) return { flags, rest: line.slice(pos) };
    let word = '';
    let quote = '';
    let blankOk = false;
    for (; pos < line.length; pos++) {
      let ch = line[pos]!;
      if (quote === '') {
        if (isSpace(ch)) break;
        if (ch === '"' || ch === "'") {
          quote = ch;
          blankOk = true;
          continue;
        }
      } else if (ch === quote) {
        quote = '';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
    }
    if (word === '--') return { flags, rest: line.slice(pos) };
    if (blankOk || word.length > 0) flags.push(word);
  }
};

/** Words for ENV, LABEL and ARG: split on unquoted whitespace, quotes and escapes kept for later. */
export const quotedWords = (rest: string, escape: string): string[] => {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  let blankOk = false;
  const chars = Array.from(rest);
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i]!;
    if (!inWord) {
      if (isSpace(ch)) continue;
      inWord = true;
    }
    if (quote === '') {
      if (isSpace(ch)) {
        if (blankOk || word.length > 0) words.push(word);
        word = '';
        blankOk = false;
        inWord = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      } else if (ch === escape) {
        if (i + 1 === chars.length) continue;
        word += ch;
        ch = chars[++i]!;
      }
      word += ch;
      continue;
    }
    // inside quotes
    let closes = ch === quote;
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        quote = '';
        continue;
      }
      word += ch;
      ch = chars[++i]!;
      closes = false;
    }
    if (closes) quote = '';
    word += ch;
  }
  if (inWord && (blankOk || word.length > 0)) words.push(word);
  return words;
};

export type JsonArray = { readonly ok: true; readonly args: string[] } | { readonly ok: false; readonly notStrings: boolean };

/**
 * The exec-form test: text starting with `[` whose first JSON value is an array of strings.
 * Like Go's json.Decoder, anything after that first value is ignored; a JSON array holding
 * something other than strings is an error, anything that is not JSON falls back to shell form.
 */
export const parseJsonArray = (rest: string): JsonArray => {
  const text = rest.replace(new RegExp(`^${GO_SPACE.source}+`), '');
  if (!text.startsWith('[')) return { ok: false, notStrings: false };
  const end = endOfJsonValue(text);
  if (end < 0) return { ok: false, notStrings: false };
  let value: unknown;
  try {
    value = JSON.parse(text.slice(0, end));
  } catch {
    return { ok: false, notStrings: false };
  }
  if (!Array.isArray(value)) return { ok: false, notStrings: false };
  if (!value.every((v) => typeof v === 'string')) return { ok: false, notStrings: true };
  return { ok: true, args: value as string[] };
};

/** Index just past the JSON value starting at 0 (bracket depth, strings skipped), or -1. */
const endOfJsonValue = (text: string): number => {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
};

/** Splits a line into shell words keeping quotes and escapes (for finding heredoc openers). */
const rawShellWords = (line: string): string[] => {
  const words: string[] = [];
  let word = '';
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote === '' && isSpace(ch)) {
      if (word) words.push(word);
      word = '';
      continue;
    }
    if (ch === '\\' && quote !== "'" && i + 1 < line.length) {
      word += ch + line[++i];
      continue;
    }
    if (quote === '' && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = '';
    word += ch;
  }
  if (word) words.push(word);
  return words;
};

const unquote = (word: string): string => {
  let out = '';
  let quote = '';
  for (let i = 0; i < word.length; i++) {
    const ch = word[i]!;
    if (ch === '\\' && quote !== "'" && i + 1 < word.length) out += word[++i];
    else if (quote === '' && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = '';
    else out += ch;
  }
  return out;
};

const HEREDOC = /^(\d*)<<(-?)([^<]*)$/;

/** The heredoc openers on a line: words like `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`. */
export const heredocHeads = (line: string): HeredocHead[] =>
  rawShellWords(line).flatMap((word) => {
    const m = HEREDOC.exec(word);
    if (!m || m[3] === '') return [];
    const rest = m[3]!;
    if (rawShellWords(rest).length !== 1) return [];
    const name = unquote(rest);
    if (name === '') return [];
    return [{ name, expand: !/['"]/.test(rest), chomp: m[2] === '-' }];
  });
