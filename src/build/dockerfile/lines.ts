// Lines: the physical text of a Dockerfile becomes logical instruction lines, as BuildKit reads
// it: parser directives at the very top, comments dropped (also inside continuations), the escape
// character joining lines, empty continuation lines skipped with a warning, and here-document
// bodies collected after the line that opens them.
import * as E from 'fp-ts/lib/Either.js';
import type { Failure } from '../../failure.js';
import type { Directive, Heredoc, Warning } from './ast.js';
import { dockerfileError } from './error.js';
import { GO_SPACE } from './words.js';

/** A heredoc opener found on a line: its name and how its body is read. */
export interface HeredocHead {
  readonly name: string;
  readonly expand: boolean;
  readonly chomp: boolean;
}

export interface LogicalLine {
  /** the instruction text, continuations joined, comments removed */
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly heredocs: readonly Heredoc[];
}

export interface Lines {
  readonly directives: readonly Directive[];
  readonly escape: '\\' | '`';
  readonly lines: readonly LogicalLine[];
  readonly warnings: readonly Warning[];
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

const continuation = (escape: string): RegExp => {
  const e = escape === '`' ? '`' : '\\\\';
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
};

const trimLeft = (s: string): string => s.replace(new RegExp(`^${GO_SPACE.source}+`), '');
const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, '');
const isComment = (s: string): boolean => trimLeft(s).startsWith('#');

/**
 * Splits `text` into logical lines. `heredocsOf(line)` says which heredocs a finished line opens
 * (none unless the instruction may carry them); their bodies are read from the following lines.
 */
export const readLines = (text: string, file: string, heredocsOf: (line: string) => readonly HeredocHead[]): E.Either<Failure, Lines> => {
  const physical = text.split('\n');
  // a final "\n" ends the last line rather than starting an empty one
  if (physical.length > 0 && physical[physical.length - 1] === '') physical.pop();
  if (physical.length > 0 && physical[0]!.charCodeAt(0) === 0xfeff) physical[0] = physical[0]!.slice(1);
  const last = physical.length - 1;
  const raw = (i: number): string => (i < last || text.endsWith('\n') ? `${physical[i]}\n` : physical[i]!);

  const directives: Directive[] = [];
  const warnings: Warning[] = [];
  const lines: LogicalLine[] = [];
  let escape: '\\' | '`' = '\\';
  let cont = continuation(escape);
  let directivesDone = false;
  const seen = new Set<string>();

  // BuildKit looks for a directive on every line until the first line that is not one
  const processLine = (lineNo: number, s: string, stripLeft: boolean): E.Either<Failure, string> => {
    let t = trimNewline(s);
    if (stripLeft) t = trimLeft(t);
    if (!directivesDone) {
      const m = DIRECTIVE.exec(t);
      const name = m?.[1]?.toLowerCase();
      if (!m || name === undefined || !KNOWN_DIRECTIVES.has(name)) directivesDone = true;
      else {
        if (seen.has(name)) return E.left(dockerfileError('InvalidDirective', file, lineNo, `only one ${name} parser directive can be used`));
        seen.add(name);
        const value = m[2]!;
        if (name === 'escape') {
          if (value !== '`' && value !== '\\') return E.left(dockerfileError('InvalidDirective', file, lineNo, `invalid escape token '${value}' does not match \` or \\`));
          escape = value;
          cont = continuation(escape);
        } else {
          warnings.push({ line: lineNo, message: `the ${name} parser directive is not applicable: tsd uses its own Dockerfile front end` });
        }
        directives.push({ name: name as Directive['name'], value, line: lineNo, applied: name === 'escape' });
      }
    }
    return E.right(isComment(t) ? '' : t);
  };
  const trimContinuation = (s: string): [string, boolean] => (cont.test(s) ? [s.replace(cont, '$1'), false] : [s, true]);

  let i = 0;
  while (i <= last) {
    const first = processLine(i + 1, physical[i]!, true);
    if (E.isLeft(first)) return first;
    i++;
    const start = i;
    let [buf, eol] = trimContinuation(first.right);
    if (eol && buf.length === 0) continue;
    let emptyContinuation = false;
    while (!eol && i <= last) {
      const next = processLine(i + 1, physical[i]!, false);
      if (E.isLeft(next)) return next;
      const wasComment = isComment(physical[i]!);
      i++;
      if (wasComment) continue;
      if (trimLeft(trimNewline(next.right)).length === 0) {
        emptyContinuation = true;
        continue;
      }
      const [t, done] = trimContinuation(next.right);
      buf += t;
      eol = done;
    }
    if (emptyContinuation) warnings.push({ line: i, message: `empty continuation line found in: ${buf.trim()}` });
    const heredocs: Heredoc[] = [];
    for (const head of buf.includes('<<') ? heredocsOf(buf) : []) {
      let content = '';
      let terminated = false;
      while (i <= last) {
        const body = raw(i);
        i++;
        let candidate = trimNewline(body);
        if (head.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === head.name) {
          terminated = true;
          break;
        }
        content += body;
      }
      if (!terminated) return E.left(dockerfileError('UnterminatedHeredoc', file, start, `unterminated heredoc <<${head.name}`));
      heredocs.push({ name: head.name, content: head.chomp ? content.replace(/^\t+/gm, '') : content, expand: head.expand, chomp: head.chomp });
    }
    lines.push({ text: buf, start, end: i, heredocs });
  }
  return E.right({ directives, escape, lines, warnings });
};
