// The Dockerfile corpus: each snippet with the parse result the Dockerfile reference (and
// BuildKit's parser, where the reference is silent) says it must give.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closest, editDistance } from '../../src/build/dockerfile/suggest.js';
import * as E from 'fp-ts/lib/Either.js';
import { parseDockerfile } from '../../src/build/dockerfile/parse.js';
import type { Dockerfile, Instruction } from '../../src/build/dockerfile/ast.js';

const parse = (text: string): Dockerfile => {
  const r = parseDockerfile(text);
  if (E.isLeft(r)) throw new Error(`unexpected failure: ${r.left.message}`);
  return r.right;
};
/** The first instruction after `FROM scratch`. */
const one = (body: string): Instruction => {
  const df = parse(`FROM scratch\n${body}`);
  const i = df.stages[0]!.instructions[0];
  if (!i) throw new Error('no instruction');
  return i;
};
/** Asserts each field of `want` deep-equals the same field of `got`. */
const has = (got: object, want: Record<string, unknown>) => {
  for (const [k, v] of Object.entries(want)) assert.equal((got as Record<string, unknown>)[k], v, `field ${k}`);
};

type Case = [name: string, body: string, want: Record<string, unknown>];
const cases: Case[] = [
  // RUN, CMD, ENTRYPOINT: exec and shell forms
  ['RUN shell form', 'RUN echo hello', { keyword: 'RUN', command: { form: 'shell', text: 'echo hello' } }],
  ['RUN exec form', 'RUN ["echo", "hello"]', { command: { form: 'exec', args: ['echo', 'hello'] } }],
  ['RUN JSON with single quotes falls back to shell form', "RUN ['echo', 'hi']", { command: { form: 'shell', text: "['echo', 'hi']" } }],
  ['RUN broken JSON falls back to shell form', 'RUN ["echo", "hi"', { command: { form: 'shell', text: '["echo", "hi"' } }],
  ['RUN exec form: text after the array is ignored (json.Decoder)', 'RUN ["a"] trailing', { command: { form: 'exec', args: ['a'] } }],
  ['RUN exec form keeps escapes of JSON', 'RUN ["sh", "-c", "echo \\"q\\""]', { command: { form: 'exec', args: ['sh', '-c', 'echo "q"'] } }],
  ['RUN empty exec form', 'RUN []', { command: { form: 'exec', args: [] } }],
  ['CMD exec form', 'CMD ["nginx", "-g", "daemon off;"]', { keyword: 'CMD', command: { form: 'exec', args: ['nginx', '-g', 'daemon off;'] } }],
  ['CMD shell form keeps $ for the shell', 'CMD echo $HOME', { command: { form: 'shell', text: 'echo $HOME' } }],
  ['ENTRYPOINT exec form', 'ENTRYPOINT ["top", "-b"]', { keyword: 'ENTRYPOINT', command: { form: 'exec', args: ['top', '-b'] } }],
  ['ENTRYPOINT shell form', 'ENTRYPOINT exec top -b', { command: { form: 'shell', text: 'exec top -b' } }],
  ['keywords are case-insensitive', 'run echo x', { keyword: 'RUN', command: { form: 'shell', text: 'echo x' } }],
  // continuations
  ['a continuation joins lines without the escape', 'RUN apt-get update && \\\n    apt-get install -y curl', { command: { form: 'shell', text: 'apt-get update &&     apt-get install -y curl' }, lines: { start: 2, end: 3 } }],
  ['a continuation with spaces after the backslash', 'RUN a \\   \nb', { command: { form: 'shell', text: 'a b' } }],
  ['a comment inside a continuation is dropped', 'RUN a \\\n# note\n  b', { command: { form: 'shell', text: 'a   b' }, lines: { start: 2, end: 4 } }],
  ['an empty continuation line is skipped', 'RUN a \\\n\n b', { command: { form: 'shell', text: 'a  b' } }],
  ['an escaped backslash does not continue', 'RUN echo \\\\\nRUN b', { command: { form: 'shell', text: 'echo \\\\' }, lines: { start: 2, end: 2 } }],
  ['trailing backslash at EOF ends the instruction', 'RUN echo a \\', { command: { form: 'shell', text: 'echo a' } }],
  // flags
  ['RUN --mount=type=cache', 'RUN --mount=type=cache,target=/root/.cache,sharing=locked pip install x', { mounts: [{ type: 'cache', target: '/root/.cache', sharing: 'locked', options: { type: 'cache', target: '/root/.cache', sharing: 'locked' } }], command: { form: 'shell', text: 'pip install x' } }],
  ['RUN --mount aliases and defaults', 'RUN --mount=src=.,dst=/src,ro true', { mounts: [{ type: 'bind', target: '/src', source: '.', readonly: true, options: { source: '.', target: '/src', readonly: 'true' } }] }],
  ['RUN --mount=type=secret', 'RUN --mount=type=secret,id=npmrc,target=/root/.npmrc,required=true npm ci', { mounts: [{ type: 'secret', target: '/root/.npmrc', id: 'npmrc', required: true, options: { type: 'secret', id: 'npmrc', target: '/root/.npmrc', required: 'true' } }] }],
  ['RUN several mounts', 'RUN --mount=type=tmpfs,target=/t --mount=type=ssh x', { mounts: [{ type: 'tmpfs', target: '/t', options: { type: 'tmpfs', target: '/t' } }, { type: 'ssh', options: { type: 'ssh' } }] }],
  ['RUN --network and --security', 'RUN --network=none --security=insecure x', { network: 'none', security: 'insecure' }],
  ['flags end at --', 'RUN -- --not-a-flag', { flags: [], command: { form: 'shell', text: '--not-a-flag' } }],
  ['COPY flags', 'COPY --from=build --chown=1000:1000 --chmod=755 --link /out /app', { from: 'build', chown: '1000:1000', chmod: '755', link: true, sources: ['/out'], dest: '/app' }],
  ['COPY --link=false', 'COPY --link=false a b', { link: false }],
  ['COPY --parents and --exclude', 'COPY --parents --exclude=*.tmp --exclude=*.log src/ /d/', { parents: true, exclude: ['*.tmp', '*.log'] }],
  ['COPY several sources', 'COPY a b c /dest/', { sources: ['a', 'b', 'c'], dest: '/dest/', json: false }],
  ['COPY JSON form keeps spaces', 'COPY ["a file", "/dest dir/"]', { sources: ['a file'], dest: '/dest dir/', json: true }],
  ['ADD --checksum', 'ADD --checksum=sha256:abc https://example.com/x.tgz /x', { keyword: 'ADD', checksum: 'sha256:abc', sources: ['https://example.com/x.tgz'] }],
  ['ADD --keep-git-dir', 'ADD --keep-git-dir=true https://github.com/x/y.git /y', { keepGitDir: true }],
  ['HEALTHCHECK with options', 'HEALTHCHECK --interval=5m --timeout=3s --start-period=1s --retries=3 CMD curl -f http://localhost/ || exit 1', { test: { kind: 'cmd', command: { form: 'shell', text: 'curl -f http://localhost/ || exit 1' } }, interval: '5m', timeout: '3s', startPeriod: '1s', retries: 3 }],
  ['HEALTHCHECK exec form', 'HEALTHCHECK CMD ["/bin/check", "-q"]', { test: { kind: 'cmd', command: { form: 'exec', args: ['/bin/check', '-q'] } } }],
  ['HEALTHCHECK NONE', 'HEALTHCHECK NONE', { test: { kind: 'none' } }],
  ['HEALTHCHECK --start-interval', 'HEALTHCHECK --start-interval=500ms CMD true', { startInterval: '500ms' }],
  // ENV, LABEL, ARG
  ['ENV key=value pairs', 'ENV A=1 B=2', { pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '2' }] }],
  ['ENV old form: the rest of the line is the value', 'ENV MY_NAME John Doe', { pairs: [{ key: 'MY_NAME', value: 'John Doe' }] }],
  ['ENV quotes are kept for substitution', 'ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog', { pairs: [{ key: 'MY_NAME', value: '"John Doe"' }, { key: 'MY_DOG', value: 'Rex\\ The\\ Dog' }] }],
  ['ENV empty value', 'ENV A=', { pairs: [{ key: 'A', value: '' }] }],
  ['ENV over continuation lines', 'ENV A=1 \\\n    B=2', { pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '2' }] }],
  ['LABEL several', 'LABEL "com.example.vendor"="ACME Inc" version="1.0"', { keyword: 'LABEL', pairs: [{ key: '"com.example.vendor"', value: '"ACME Inc"' }, { key: 'version', value: '"1.0"' }] }],
  ['LABEL old form', 'LABEL description This text', { pairs: [{ key: 'description', value: 'This text' }] }],
  ['ARG with and without default', 'ARG user1=someuser buildno', { args: [{ name: 'user1', default: 'someuser' }, { name: 'buildno' }] }],
  ['ARG empty default', 'ARG X=', { args: [{ name: 'X', default: '' }] }],
  // the simple string instructions
  ['WORKDIR', 'WORKDIR /path/to/workdir', { path: '/path/to/workdir' }],
  ['USER with group', 'USER app:app', { user: 'app:app' }],
  ['STOPSIGNAL', 'STOPSIGNAL SIGKILL', { signal: 'SIGKILL' }],
  ['MAINTAINER', 'MAINTAINER Jane Doe <jane@example.com>', { name: 'Jane Doe <jane@example.com>' }],
  ['EXPOSE several', 'EXPOSE 80/tcp 80/udp 8080', { ports: ['80/tcp', '80/udp', '8080'] }],
  ['VOLUME JSON', 'VOLUME ["/data", "/var/log"]', { paths: ['/data', '/var/log'] }],
  ['VOLUME plain', 'VOLUME /data /logs', { paths: ['/data', '/logs'] }],
  ['SHELL', 'SHELL ["powershell", "-command"]', { args: ['powershell', '-command'] }],
  // ONBUILD
  ['ONBUILD with a nested instruction', 'ONBUILD ADD . /app/src', { keyword: 'ONBUILD', instruction: { keyword: 'ADD', lines: { start: 2, end: 2 }, flags: [], original: 'ADD . /app/src', sources: ['.'], dest: '/app/src', link: false, parents: false, exclude: [], heredocs: [], json: false } }],
  ['ONBUILD RUN exec', 'ONBUILD RUN ["make"]', { instruction: { keyword: 'RUN', lines: { start: 2, end: 2 }, flags: [], original: 'RUN ["make"]', command: { form: 'exec', args: ['make'] }, heredocs: [], mounts: [] } }],
  // heredocs
  ['RUN heredoc', 'RUN <<EOF\napt-get update\napt-get install -y vim\nEOF', { command: { form: 'shell', text: '<<EOF' }, heredocs: [{ name: 'EOF', content: 'apt-get update\napt-get install -y vim\n', expand: true, chomp: false }], lines: { start: 2, end: 5 } }],
  ['RUN heredoc with a shebang', 'RUN <<EOT\n#!/usr/bin/env python\nprint("hi")\nEOT', { heredocs: [{ name: 'EOT', content: '#!/usr/bin/env python\nprint("hi")\n', expand: true, chomp: false }] }],
  ['RUN heredoc fed to a command', 'RUN python3 <<EOF\nprint(1)\nEOF', { command: { form: 'shell', text: 'python3 <<EOF' }, heredocs: [{ name: 'EOF', content: 'print(1)\n', expand: true, chomp: false }] }],
  ['RUN two heredocs', 'RUN <<FILE1 cat > f1 && <<FILE2 cat > f2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2', { heredocs: [{ name: 'FILE1', content: 'I am\nfirst\n', expand: true, chomp: false }, { name: 'FILE2', content: 'I am\nsecond\n', expand: true, chomp: false }], lines: { start: 2, end: 8 } }],
  ['quoted heredoc delimiter: no expansion', "RUN <<'EOF'\necho $HOME\nEOF", { heredocs: [{ name: 'EOF', content: 'echo $HOME\n', expand: false, chomp: false }] }],
  ['double-quoted heredoc delimiter', 'RUN <<"EOF"\nx\nEOF', { heredocs: [{ name: 'EOF', content: 'x\n', expand: false, chomp: false }] }],
  ['<<- strips leading tabs', 'RUN <<-EOF\n\techo hi\n\tEOF', { heredocs: [{ name: 'EOF', content: 'echo hi\n', expand: true, chomp: true }] }],
  ['COPY heredoc as a file', 'COPY <<EOF /etc/motd\nhello\nEOF', { sources: ['<<EOF'], dest: '/etc/motd', heredocs: [{ name: 'EOF', content: 'hello\n', expand: true, chomp: false }] }],
  ['COPY two heredoc files', 'COPY <<a.txt <<b.txt /dir/\nA\na.txt\nB\nb.txt', { sources: ['<<a.txt', '<<b.txt'], heredocs: [{ name: 'a.txt', content: 'A\n', expand: true, chomp: false }, { name: 'b.txt', content: 'B\n', expand: true, chomp: false }] }],
  ['no heredoc in the exec form', 'RUN ["echo", "<<EOF"]', { command: { form: 'exec', args: ['echo', '<<EOF'] }, heredocs: [] }],
  ['no heredoc in CMD', 'CMD cat <<EOF', { command: { form: 'shell', text: 'cat <<EOF' }, heredocs: [] }],
  ['ONBUILD RUN heredoc', 'ONBUILD RUN <<EOF\necho x\nEOF', { keyword: 'ONBUILD', lines: { start: 2, end: 4 } }],
];

for (const [name, body, want] of cases) {
  test(name, () => has(one(body), want));
}

test('ONBUILD RUN heredoc: the body belongs to the nested RUN', () => {
  const i = one('ONBUILD RUN <<EOF\necho x\nEOF');
  assert.is(i.keyword, 'ONBUILD');
  if (i.keyword === 'ONBUILD') assert.equal((i.instruction as { heredocs: unknown }).heredocs, [{ name: 'EOF', content: 'echo x\n', expand: true, chomp: false }]);
});

// directives
test('# escape=` makes the backtick the continuation character', () => {
  const df = parse('# escape=`\nFROM windows\nRUN dir c:\\ `\n  && echo done');
  assert.is(df.escape, '`');
  assert.equal(df.directives, [{ name: 'escape', value: '`', line: 1, applied: true }]);
  has(df.stages[0]!.instructions[0]!, { command: { form: 'shell', text: 'dir c:\\   && echo done' }, lines: { start: 3, end: 4 } });
});

test('an escape directive after a comment is only a comment', () => {
  const df = parse('# about\n# escape=`\nFROM x\nRUN a \\\n b');
  assert.is(df.escape, '\\');
  assert.equal(df.directives, []);
  has(df.stages[0]!.instructions[0]!, { command: { form: 'shell', text: 'a  b' } });
});

test('an escape directive after an instruction is only a comment', () => {
  const df = parse('FROM x\n# escape=`\nRUN a');
  assert.is(df.escape, '\\');
});

test('directive names are case-insensitive and spaces are allowed', () => {
  const df = parse('#  ESCAPE = `\nFROM x');
  assert.is(df.escape, '`');
});

test('syntax and check directives are recognised and reported as not applicable', () => {
  const df = parse('# syntax=docker/dockerfile:1\n# check=skip=all\nFROM x');
  assert.equal(df.directives.map((d) => [d.name, d.value, d.applied]), [['syntax', 'docker/dockerfile:1', false], ['check', 'skip=all', false]]);
  assert.is(df.warnings.length, 2);
  assert.match(df.warnings[0]!.message, 'not applicable');
});

test('an unknown directive ends the directives: what follows is a comment', () => {
  const df = parse('# foo=bar\n# escape=`\nFROM x');
  assert.is(df.escape, '\\');
  assert.equal(df.directives, []);
});

test('an empty continuation line gives a warning', () => {
  const df = parse('FROM x\nRUN a \\\n\n b');
  assert.is(df.warnings.length, 1);
  assert.match(df.warnings[0]!.message, 'empty continuation line');
});

// stages and global ARGs
test('ARG before FROM is global; stages are split at FROM', () => {
  const df = parse('ARG VERSION=latest\nFROM busybox:$VERSION AS one\nRUN a\nFROM alpine\nRUN b\nRUN c');
  assert.equal(df.globalArgs.map((a) => a.args), [[{ name: 'VERSION', default: 'latest' }]]);
  assert.equal(df.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.length]), [[0, 'one', 'busybox:$VERSION', 1], [1, undefined, 'alpine', 2]]);
});

test('stage names are lower-cased; AS is case-insensitive', () => {
  const df = parse('FROM x as Builder');
  assert.is(df.stages[0]!.name, 'builder');
});

test('FROM --platform', () => {
  const df = parse('FROM --platform=$BUILDPLATFORM golang:1.22 AS build');
  has(df.stages[0]!.from, { platform: '$BUILDPLATFORM', image: 'golang:1.22', name: 'build' });
});

test('CRLF line endings and a byte-order mark', () => {
  const df = parse('\uFEFFFROM x\r\nRUN a \\\r\n  b\r\n');
  has(df.stages[0]!.instructions[0]!, { command: { form: 'shell', text: 'a   b' } });
});

test('leading white space and blank lines between instructions', () => {
  const df = parse('\n\n   FROM x\n\n\t RUN y\n');
  has(df.stages[0]!.instructions[0]!, { command: { form: 'shell', text: 'y' }, lines: { start: 5, end: 5 } });
});

// errors: one line naming file and line, as BuildKit words them
const errors: [string, string][] = [
  ['FROM x\nCOPPY a b', 'Dockerfile:2: unknown instruction: COPPY (did you mean COPY?)'],
  ['FROM x\ncoppy a b', 'Dockerfile:2: unknown instruction: coppy (did you mean copy?)'],
  ['FROM x\nCoppy a b', 'Dockerfile:2: unknown instruction: Coppy (did you mean COPY?)'],
  ['FORM alpine', 'Dockerfile:1: unknown instruction: FORM (did you mean FROM?)'],
  ['FROM x\nRUNN make', 'Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)'],
  ['FROM x\nENTRYPIONT ["a"]', 'Dockerfile:2: unknown instruction: ENTRYPIONT (did you mean ENTRYPOINT?)'],
  ['FROM x\nHEALTHCEHCK NONE', 'Dockerfile:2: unknown instruction: HEALTHCEHCK (did you mean HEALTHCHECK?)'],
  ['FROM x\nONBUILD RUNN make', 'Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)'],
  ['FROM x\nBOGUS a', 'Dockerfile:2: unknown instruction: BOGUS'],
  ['FROM x\nCOPYFILES a b', 'Dockerfile:2: unknown instruction: COPYFILES'],
  ['', 'Dockerfile: the Dockerfile cannot be empty'],
  ['# only a comment\n\n', 'Dockerfile: the Dockerfile cannot be empty'],
  ['RUN x', 'Dockerfile:1: no build stage in current context: RUN before the first FROM'],
  ['ARG A', 'Dockerfile:1: no build stage: the Dockerfile has no FROM instruction'],
  ['FROM x\nRUN <<EOF\necho', 'Dockerfile:2: unterminated heredoc <<EOF'],
  ['FROM a b', 'Dockerfile:1: FROM requires either one or three arguments'],
  ['FROM a AS 1x', 'Dockerfile:1: invalid name for build stage: "1x", name can\'t start with a number or contain symbols'],
  ['FROM a AS x\nFROM b AS X', 'Dockerfile:2: duplicate stage name "x"'],
  ['FROM x\nCOPY a', 'Dockerfile:2: COPY requires at least two arguments, but only 1 provided'],
  ['FROM x\nENV', 'Dockerfile:2: ENV requires at least one argument'],
  ['FROM x\nENV A', 'Dockerfile:2: ENV must have two arguments'],
  ['FROM x\nENV A=1 B', 'Dockerfile:2: Syntax error - can\'t find = in "B". Must be of the form: name=value'],
  ['FROM x\nWORKDIR', 'Dockerfile:2: WORKDIR requires exactly one argument'],
  ['FROM x\nSHELL /bin/sh -c', 'Dockerfile:2: SHELL requires the arguments to be in JSON form'],
  ['FROM x\nCMD ["a", 1]', 'Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only'],
  ['FROM x\nCOPY --chwon=1 a b', 'Dockerfile:2: COPY: unknown flag: chwon'],
  ['FROM x\nCOPY --from a b', 'Dockerfile:2: COPY: missing a value on flag: from'],
  ['FROM x\nRUN --mount=type=nfs,target=/x a', 'Dockerfile:2: RUN --mount=type=nfs,target=/x: unsupported mount type "nfs"'],
  ['FROM x\nRUN --network=bridge a', 'Dockerfile:2: RUN: unsupported network mode "bridge"'],
  ['FROM x\nHEALTHCHECK NONE x', 'Dockerfile:2: HEALTHCHECK NONE takes no arguments'],
  ['FROM x\nHEALTHCHECK --retries=-1 CMD x', 'Dockerfile:2: HEALTHCHECK: --retries cannot be negative'],
  ['FROM x\nONBUILD ONBUILD RUN x', 'Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
  ['FROM x\nONBUILD FROM y', 'Dockerfile:2: FROM isn\'t allowed as an ONBUILD trigger'],
  ['# escape=x\nFROM a', 'Dockerfile:1: invalid escape token \'x\' does not match ` or \\'],
  ['# escape=`\n# escape=\\\nFROM a', 'Dockerfile:2: only one escape parser directive can be used'],
  ['FROM x\nRUN a \\\n  b\nCMD --bad x', 'Dockerfile:4: CMD: unknown flag: bad'],
];
for (const [text, message] of errors) {
  test(`error: ${message}`, () => {
    const r = parseDockerfile(text);
    assert.ok(E.isLeft(r), 'expected a failure');
    if (E.isLeft(r)) {
      assert.is(r.left.message, message);
      assert.is(r.left.exitCode, 1);
      assert.not.match(r.left.message, '\n');
    }
  });
}

test('errors name the file given', () => {
  const r = parseDockerfile('FROM x\nBOGUS', { file: 'build/Dockerfile.prod' });
  assert.equal(E.isLeft(r) && r.left.message, 'build/Dockerfile.prod:2: unknown instruction: BOGUS');
});

test('the hint is the closest keyword within two edits, ties to the earlier one', () => {
  assert.is(editDistance('coppy', 'copy'), 1);
  assert.is(editDistance('form', 'from'), 2);
  assert.is(editDistance('', 'run'), 3);
  assert.is(closest('CPY', ['FROM', 'COPY']), 'COPY');
  assert.is(closest('copy', ['FROM', 'COPY']), undefined);
  assert.is(closest('xyzzy', ['FROM', 'COPY']), undefined);
  // "ab" is one edit from both: the earlier option wins, in the case written
  assert.is(closest('ab', ['AC', 'AD']), 'ac');
  assert.is(closest('AB', ['AD', 'AC']), 'AD');
  assert.is(closest('x'.repeat(100000), ['FROM']), undefined);
});

test.run();
