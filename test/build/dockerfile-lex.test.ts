// Word substitution as the Dockerfile reference (and BuildKit's shell lexer) defines it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { processWord, processWords } from '../../src/build/dockerfile/lex.js';

const vars = new Map([['a', 'hello'], ['e', ''], ['p', '/usr/local/bin/x.tar.gz'], ['s', 'a b  c'], ['q', 'it\'s "q"']]);
const word = (w: string, escape = '\\') => processWord(w, vars, { escape });

const ok: [string, string][] = [
  ['$a', 'hello'], ['${a}', 'hello'], ['x${a}y', 'xhelloy'], ['$a$a', 'hellohello'],
  ['${a:-x}', 'hello'], ['${u:-x}', 'x'], ['${e:-x}', 'x'], ['${e-x}', ''], ['${u-x}', 'x'],
  ['${a:+y}', 'y'], ['${u:+y}', ''], ['${e:+y}', ''], ['${e+y}', 'y'],
  ["'$a'", '$a'], ['"$a x"', 'hello x'], ['\\$a', '$a'], ['"\\$a"', '$a'], ['"a\\b"', 'a\\b'],
  ['$', '$'], ['a$', 'a$'], ['$-', '$-'], ['$u', ''], ['${u}', ''],
  ['${a:-${e:-deep}}', 'hello'], ['${u:-${e:-deep}}', 'deep'], ['${u:-"q q"}', 'q q'],
  ['${p##*/}', 'x.tar.gz'], ['${p#*/}', 'usr/local/bin/x.tar.gz'], ['${p%.*}', '/usr/local/bin/x.tar'], ['${p%%.*}', '/usr/local/bin/x'],
  ['${p#nomatch}', '/usr/local/bin/x.tar.gz'], ['${p%[a-z]z}', '/usr/local/bin/x.tar.'], ['${p##*[!a-z]}', 'gz'],
  ['${p/local/LOC}', '/usr/LOC/bin/x.tar.gz'], ['${p//\\//:}', ':usr:local:bin:x.tar.gz'], ['${p/l*l/L}', '/usr/L/bin/x.tar.gz'], ['${p/nope/x}', '/usr/local/bin/x.tar.gz'],
  ['$q', 'it\'s "q"'], ['a\\', 'a'], ['\\"x\\"', '"x"'],
];
for (const [w, want] of ok) test(`${w} → ${JSON.stringify(want)}`, () => assert.equal(word(w), E.right(want)));

test('the backtick escape', () => {
  assert.equal(word('`$a', '`'), E.right('$a'));
  assert.equal(word('\\$a', '`'), E.right('\\hello'));
});

const bad: [string, string][] = [
  ['${u:?must be set}', 'u: must be set'],
  ['${u?}', 'u: is not allowed to be unset'],
  ['${a', "missing '}' in substitution of a"],
  ['${', 'bad substitution: ${} needs a variable name'],
  ["'abc", 'unexpected end of statement while looking for matching single-quote'],
  ['"x', 'unexpected end of statement while looking for matching double-quote'],
  ['${a:x}', 'unsupported modifier (:x) in substitution of a'],
];
for (const [w, message] of bad) test(`error: ${w}`, () => assert.equal(word(w), E.left(message)));

test('words split on unquoted white space, also inside values', () => {
  assert.equal(processWords('$s "x y" z', vars, { escape: '\\' }), E.right(['a', 'b', 'c', 'x y', 'z']));
  assert.equal(processWords('"" a', vars, { escape: '\\' }), E.right(['', 'a']));
});

test('a hostile pattern on a long value stays fast', () => {
  const long = new Map([['v', 'a'.repeat(20000)]]);
  const t0 = performance.now();
  assert.equal(processWord('${v%%*a*a*a*a*a*a*a*b}', long, { escape: '\\' }), E.right('a'.repeat(20000)));
  assert.equal(processWord('${v##*a*a*a*a*a*a*a*b}', long, { escape: '\\' }), E.right('a'.repeat(20000)));
  assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
});

test.run();
