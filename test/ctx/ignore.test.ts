// .dockerignore table: each case is a rule from Docker's documentation (docs.docker.com,
// "Dockerfile reference › .dockerignore file") or moby's patternmatcher behaviour it describes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileIgnore, isExcluded, mayReinclude, readIgnoreFile } from '../../src/ctx/ignore.js';

type Case = [file: string, path: string, excluded: boolean, rule: string];
const cases: Case[] = [
  ['*/temp*', 'somedir/temporary.txt', true, 'docs: */temp* excludes names starting with temp in an immediate subdirectory'],
  ['*/temp*', 'somedir/temp', true, 'docs: */temp* excludes the directory /somedir/temp'],
  ['*/temp*', 'temp.txt', false, '*/temp* does not reach the root'],
  ['*/*/temp*', 'somedir/subdir/temporary.txt', true, 'docs: */*/temp* two levels below the root'],
  ['*/*/temp*', 'somedir/temporary.txt', false, '*/*/temp* needs two levels'],
  ['temp?', 'tempa', true, 'docs: temp? one-character extension in the root'],
  ['temp?', 'temp', false, '? needs exactly one character'],
  ['temp?', 'tempab', false, '? is one character only'],
  ['temp?', 'dir/tempa', false, 'temp? is anchored at the root'],
  ['**/*.go', 'x.go', true, 'docs: **/*.go includes the root of the context'],
  ['**/*.go', 'a/b/c.go', true, '**/*.go in every directory'],
  ['*.md\n!README.md', 'README.md', false, 'docs: ! makes an exception'],
  ['*.md\n!README.md', 'CHANGES.md', true, 'docs: all other markdown files excluded'],
  ['*.md\n!README.md', 'docs/x.md', false, '*.md matches only in the root'],
  ['*.md\n!README*.md\nREADME-secret.md', 'README-secret.md', true, 'docs: the last matching line decides'],
  ['*.md\n!README*.md\nREADME-secret.md', 'README-public.md', false, 'docs: README files other than the secret one are kept'],
  ['*.md\nREADME-secret.md\n!README*.md', 'README-secret.md', false, 'docs: !README*.md comes last and wins'],
  ['*\n!src', 'src/a.ts', false, 'docs: * then ! re-includes what is named'],
  ['*\n!src', 'other.txt', true, '* excludes everything else'],
  ['*\n!**/*.py', 'a/b/c.py', false, 'an exception re-includes nested files below an excluded directory'],
  ['*\n!**/*.py', 'x.py', false, '!**/*.py includes the root too'],
  ['*\n!**/*.py', 'a/b/c.js', true, 'other nested files stay excluded'],
  ['dir\n!dir/**/*.go', 'dir/a/b.go', false, '!dir/**/*.go re-includes deep files'],
  ['dir\n!dir/**/*.go', 'dir/b.go', false, '** matches zero directories'],
  ['dir\n!dir/**/*.go', 'dir/x.txt', true, 'the rest of dir stays excluded'],
  ['build/', 'build', true, 'a trailing / is cleaned away'],
  ['build/', 'build/out.o', true, 'a directory pattern excludes its contents'],
  ['build/', 'a/build/x', false, 'patterns are anchored at the context root'],
  ['/foo/bar', 'foo/bar', true, 'docs: /foo/bar and foo/bar are the same'],
  ['/foo/bar', 'foo/bar/x', true, 'the contents of an excluded directory'],
  ['/foo/bar', 'x/foo/bar', false, 'docs: neither excludes anything else'],
  ['./foo', 'foo', true, 'a leading ./ is cleaned away'],
  ['a/../b', 'b', true, 'filepath.Clean resolves ..'],
  ['a/../b', 'a/b', false, 'a/../b is b'],
  ['a/**/b', 'a/b', true, '** in the middle matches zero directories'],
  ['a/**/b', 'a/x/y/b', true, '** in the middle matches several directories'],
  ['a/**/b', 'a/xb', false, '** does not glue names together'],
  ['# comment', '# comment', false, 'docs: a # in column 1 is a comment'],
  ['  #foo', '#foo', true, 'a # after spaces is not a comment: trimmed, it is a pattern'],
  ['\n\nfoo\n\n', 'foo', true, 'blank lines are ignored'],
  ['   foo   ', 'foo', true, 'leading and trailing white space is trimmed'],
  ['node_modules', 'node_modules/a/b.js', true, 'a directory name excludes all below it'],
  ['node_modules', 'src/node_modules/x', false, 'not at other depths'],
  ['**/node_modules', 'src/node_modules/x', true, '**/ reaches every depth'],
  ['[a-c].txt', 'b.txt', true, 'a character range'],
  ['[a-c].txt', 'd.txt', false, 'outside the range'],
  ['[^a].txt', 'b.txt', true, 'filepath.Match negates a class with ^'],
  ['[^a].txt', 'a.txt', false, 'the negated member'],
  ['[!a].txt', 'a.txt', true, 'filepath.Match has no ! negation: ! is a member'],
  ['\\*.txt', '*.txt', true, 'a backslash escapes a wildcard'],
  ['\\*.txt', 'a.txt', false, 'the escaped * is literal'],
  ['**', 'any/thing', true, '** alone matches everything'],
  ['*', 'a/b', true, '* matches the top directory, so all below it'],
  ['foo/*', 'foo/x', true, 'foo/* matches children'],
  ['foo/*', 'foo', false, 'but not foo itself'],
  ['foo/**', 'foo/x/y', true, 'foo/** matches everything below foo'],
  ['foo/**', 'foo', false, 'foo/** does not match foo itself'],
  ['foo*', 'foo/x', true, 'foo* matches the directory foo, so its contents'],
  ['**.go', 'a.go', true, 'patternmatcher: a leading ** with no other wildcard is a suffix match'],
  ['**foo', 'barfoo', true, 'suffix match quirk'],
  ['?', 'a', true, '? is one character'],
  ['?', 'ab', false, '? is not two'],
  ['!a\na', 'a', true, 'order matters: the last match wins'],
  ['a\n!a\na', 'a', true, 'excluded again'],
  ['**/*.go\n!vendor/**', 'vendor/x/y.go', false, 'an exception of a whole tree'],
  ['**/*.go\n!vendor/**', 'main.go', true, 'outside the exception'],
  ['.git', '.git/config', true, 'dot names are ordinary'],
  ['.git', 'a.git', false, '. is literal, not any character'],
  ['*.tar.gz', 'x.tar.gz', true, 'several dots'],
  ['*.tar.gz', 'x.tar', false, 'the whole suffix is needed'],
  ['ä?', 'äb', true, 'UTF-8 names'],
  ['foo\r\nbar', 'bar', true, 'CRLF line endings'],
  ['\uFEFFfoo', 'foo', true, 'a byte-order mark is dropped'],
  ['a+b', 'a+b', true, 'regexp characters are literal'],
  ['x(1)', 'x(1)', true, 'parentheses are literal'],
  ['$HOME', '$HOME', true, '$ is literal (no variables in .dockerignore)'],
];

for (const [file, path, excluded, rule] of cases) {
  test(`${JSON.stringify(file)} ${excluded ? 'excludes' : 'keeps'} ${path} (${rule})`, () => {
    const c = compileIgnore(readIgnoreFile(file));
    assert.ok(c.ok, c.ok ? '' : c.error);
    if (c.ok) assert.is(isExcluded(c.patterns, path), excluded);
  });
}

test('a lone ! is refused', () => {
  const c = compileIgnore(readIgnoreFile('foo\n!\n'));
  assert.equal(c, { ok: false, error: 'illegal exclusion pattern: "!"' });
});

test('an unterminated class is refused', () => {
  const c = compileIgnore(readIgnoreFile('[abc'));
  assert.is(c.ok, false);
});

test('an excluded directory is entered only when an exception may reach below it', () => {
  const c = compileIgnore(readIgnoreFile('*\n!src/keep\n!**/*.py'));
  assert.ok(c.ok);
  if (!c.ok) return;
  assert.is(mayReinclude(c.patterns, 'src'), true);
  assert.is(mayReinclude(c.patterns, 'docs'), true); // **/*.py may match anything
  const d = compileIgnore(readIgnoreFile('*\n!src/keep'));
  assert.ok(d.ok);
  if (d.ok) {
    assert.is(mayReinclude(d.patterns, 'docs'), false);
    assert.is(mayReinclude(d.patterns, 'src'), true);
  }
});

test.run();
