// Lex: the Dockerfile reference's variable substitution on one word, as BuildKit's shell lexer
// does it: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
// `${VAR:?msg}`, `${VAR#pat}`, `${VAR%pat}` (and ## %%), `${VAR/pat/repl}`; single quotes are
// literal, double quotes allow substitution, the escape character makes the next one literal.
import * as E from 'fp-ts/lib/Either.js';
import { compileGlob, removePrefix, removeSuffix, replaceMatches } from './glob.js';

/** Variables in scope: unset names are absent. */
export type Vars = ReadonlyMap<string, string>;

export interface LexOptions {
  readonly escape: string;
  /** keep quote characters in the output (heredoc bodies) */
  readonly rawQuotes?: boolean;
}

const isNameStart = (c: string | undefined): boolean => c !== undefined && /[A-Za-z_]/.test(c);
const isNameChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_]/.test(c);

class Lexer {
  pos = 0;
  /** words being built, for ProcessWords; `blank` marks a word boundary pending */
  words: string[] = [];
  word = '';
  inWord = false;
  constructor(readonly s: string, readonly vars: Vars, readonly opts: LexOptions) {}

  peek(): string | undefined {
    return this.s[this.pos];
  }
  next(): string | undefined {
    return this.s[this.pos++];
  }
  add(text: string, split: boolean) {
    for (const ch of text) {
      if (split && /\s/.test(ch)) {
        if (this.inWord) this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      } else {
        this.word += ch;
        this.inWord = true;
      }
    }
  }
  /** Marks the current word as present even if empty ("" is a word). */
  touch() {
    this.inWord = true;
  }

  /** Processes until `stop` (not consumed) or end; returns the text produced in this call. */
  run(stop: string | undefined): E.Either<string, string> {
    const { escape } = this.opts;
    let out = '';
    const emit = (t: string, split: boolean) => {
      out += t;
      this.add(t, split);
    };
    while (this.pos < this.s.length) {
      const ch = this.peek()!;
      if (stop !== undefined && ch === stop) return E.right(out);
      if (ch === "'") {
        this.next();
        const end = this.s.indexOf("'", this.pos);
        if (end < 0) return E.left('unexpected end of statement while looking for matching single-quote');
        const body = this.s.slice(this.pos, end);
        this.pos = end + 1;
        this.touch();
        emit(this.opts.rawQuotes ? `'${body}'` : body, false);
      } else if (ch === '"') {
        this.next();
        this.touch();
        if (this.opts.rawQuotes) emit('"', false);
        for (;;) {
          const c = this.next();
          if (c === undefined) return E.left('unexpected end of statement while looking for matching double-quote');
          if (c === '"') break;
          if (c === '$') {
            const v = this.dollar();
            if (E.isLeft(v)) return v;
            emit(v.right, false);
          } else if (c === escape) {
            const n = this.peek();
            if (n === '"' || n === '$' || n === escape) {
              this.next();
              emit(n, false);
            } else emit(c, false);
          } else emit(c, false);
        }
        if (this.opts.rawQuotes) emit('"', false);
      } else if (ch === '$') {
        this.next();
        const v = this.dollar();
        if (E.isLeft(v)) return v;
        emit(v.right, true);
      } else if (ch === escape) {
        this.next();
        const n = this.next();
        if (n === undefined) break;
        emit(n, false);
      } else {
        this.next();
        emit(ch, true);
      }
    }
    return E.right(out);
  }

  lookup(name: string): string | undefined {
    return this.vars.get(name);
  }

  /** After a `$`: a name, `{…}`, or a literal dollar. */
  dollar(): E.Either<string, string> {
    const c = this.peek();
    if (c !== '{') {
      if (c !== undefined && /[0-9]/.test(c)) {
        this.next();
        return E.right(this.lookup(c) ?? '');
      }
      if (!isNameStart(c)) return E.right('$');
      let name = '';
      while (isNameChar(this.peek())) name += this.next();
      return E.right(this.lookup(name) ?? '');
    }
    this.next();
    let name = '';
    while (isNameChar(this.peek())) name += this.next();
    if (name === '') return E.left('bad substitution: ${} needs a variable name');
    const value = this.lookup(name);
    const m = this.next();
    if (m === '}') return E.right(value ?? '');
    if (m === undefined) return E.left(`missing '}' in substitution of ${name}`);
    const word = (): E.Either<string, string> => {
      const saved = { words: this.words, word: this.word, inWord: this.inWord };
      const r = this.run('}');
      Object.assign(this, saved);
      if (E.isLeft(r)) return r;
      if (this.next() !== '}') return E.left(`missing '}' in substitution of ${name}`);
      return r;
    };
    let op = m;
    if (m === ':') {
      const m2 = this.next();
      if (m2 !== '-' && m2 !== '+' && m2 !== '?') return E.left(`unsupported modifier (${m}${m2 ?? ''}) in substitution of ${name}`);
      op = `:${m2}`;
    } else if ((m === '#' || m === '%') && this.peek() === m) {
      this.next();
      op = m + m;
    } else if (m === '/' && this.peek() === '/') {
      this.next();
      op = '//';
    }
    switch (op) {
      case '-':
      case ':-':
      case '+':
      case ':+':
      case '?':
      case ':?': {
        const w = word();
        if (E.isLeft(w)) return w;
        const unset = op.startsWith(':') ? value === undefined || value === '' : value === undefined;
        if (op.endsWith('-')) return E.right(unset ? w.right : value!);
        if (op.endsWith('+')) return E.right(unset ? '' : w.right);
        if (unset) return E.left(`${name}: ${w.right === '' ? 'is not allowed to be unset' : w.right}`);
        return E.right(value!);
      }
      case '#':
      case '##':
      case '%':
      case '%%': {
        const w = word();
        if (E.isLeft(w)) return w;
        const g = compileGlob(w.right, this.opts.escape);
        const v = value ?? '';
        return E.right(op[0] === '#' ? removePrefix(v, g, op.length === 2) : removeSuffix(v, g, op.length === 2));
      }
      case '/':
      case '//': {
        const saved = { words: this.words, word: this.word, inWord: this.inWord };
        const p = this.run('/');
        if (E.isLeft(p)) return p;
        let repl = '';
        if (this.peek() === '/') {
          this.next();
          const r = this.run('}');
          if (E.isLeft(r)) return r;
          repl = r.right;
        }
        Object.assign(this, saved);
        if (this.next() !== '}') return E.left(`missing '}' in substitution of ${name}`);
        return E.right(replaceMatches(value ?? '', compileGlob(p.right, this.opts.escape), repl, op === '//'));
      }
      default:
        return E.left(`unsupported modifier (${op}) in substitution of ${name}`);
    }
  }
}

/** Substitutes variables in one word and removes its quotes: the result is one string. */
export const processWord = (word: string, vars: Vars, opts: LexOptions): E.Either<string, string> => new Lexer(word, vars, opts).run(undefined);

/** Like processWord but splits the result into words on unquoted whitespace (EXPOSE, VOLUME lists). */
export const processWords = (text: string, vars: Vars, opts: LexOptions): E.Either<string, string[]> => {
  const lx = new Lexer(text, vars, opts);
  const r = lx.run(undefined);
  if (E.isLeft(r)) return r;
  if (lx.inWord) lx.words.push(lx.word);
  return E.right(lx.words);
};

/** Substitutes `$VAR`/`${VAR…}` in a heredoc body: quotes kept, only the escape before `$` removed. */
export const expandHeredoc = (body: string, vars: Vars, escape: string): E.Either<string, string> => {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === escape && body[i + 1] === '$') {
      out += '$';
      i++;
    } else if (c === '$') {
      // substitute just this expression with the word lexer
      const m = /^\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)/.exec(body.slice(i));
      if (!m) out += '$';
      else {
        const r = processWord(m[0], vars, { escape });
        if (E.isLeft(r)) return r;
        out += r.right;
        i += m[0].length - 1;
      }
    } else out += c;
  }
  return E.right(out);
};
