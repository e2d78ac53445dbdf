// -t with -d (a pty kept by the supervisor), attach (output, stdin, ctrl-p ctrl-q), -i with -d,
// and -i/-t with -p in the foreground; a run's -a (the streams it attaches) and its detach keys
// (-it runs supervised: ctrl-p ctrl-q, or --detach-keys, leave it running); with the real runc
// and tsd-supervisor.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { createServer } from 'node:net';
import { dataFrames, detachScanner, parseDetachKeys, sizeFrame } from '../../src/run/attach.js';
import { alive, detach, inspect, p, run, setup, sleep, supervisors, teardown, until } from './detached-support.js';

const REPO = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..');

test.before(setup);

test('detach keys: parsed as Docker writes them; a partial match is sent on as typed', () => {
  assert.equal(parseDetachKeys('ctrl-p,ctrl-q'), E.right([0x10, 0x11]));
  assert.equal(parseDetachKeys('ctrl-a,x'), E.right([0x01, 0x78]));
  assert.ok(E.isLeft(parseDetachKeys('ctrl-1')));
  assert.ok(E.isLeft(parseDetachKeys('alt-x')));
  const scan = detachScanner([0x10, 0x11]);
  assert.equal(scan(Buffer.from('ab\x10')), { forward: Buffer.from('ab'), detached: false });
  assert.equal(scan(Buffer.from('x')), { forward: Buffer.from('\x10x'), detached: false });
  assert.equal(scan(Buffer.from('\x10\x10')), { forward: Buffer.from('\x10'), detached: false });
  assert.equal(scan(Buffer.from('\x11rest')), { forward: Buffer.from(''), detached: true });
  assert.equal(dataFrames(Buffer.from('hi')), [Buffer.from([0x64, 0, 2, 0x68, 0x69])]);
  assert.equal(dataFrames(Buffer.alloc(5000)).map((f) => f.length), [4099, 907]);
  assert.equal(sizeFrame(300, 80), Buffer.from([0x77, 1, 44, 0, 80]));
});

/** `tsd-run attach …` (or a run) with a stdin we write to as the test goes. */
const interactive = (args: string[]): { child: ChildProcess; out: () => string; err: () => string; done: Promise<number> } => {
  const child = spawn(join(REPO, 'bin', 'tsd-run'), args, { env: { ...process.env, TSD_ROOT: p().root }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdin!.on('error', () => undefined);
  const done = new Promise<number>((r) => child.on('close', (code) => r(code ?? 128)));
  return { child, out: () => out, err: () => err, done };
};

test('-d -t: the container gets a terminal; its output is in logs; it runs on without any client', async () => {
  const id = await detach(['-t', '--name', 'term', 'bb:test', 'sh', '-c', 'tty; stty size; echo "$TERM"; echo out; sleep 30']);
  const logs = await until('the tty output', async () => {
    const l = await run(['logs', 'term']);
    return l.stdout.includes('out') ? l : undefined;
  });
  // a terminal: one stream, CR LF line ends, the pty's size from the start (24x80 without a terminal here)
  assert.is(logs.stdout, '/dev/pts/0\r\n24 80\r\nxterm\r\nout\r\n');
  assert.is(logs.stderr, '');
  assert.is((await inspect(id)).State.Status, 'running');
  assert.is((await run(['rm', '-f', id])).code, 0);
});

test('attach: reads a -d -it container\'s terminal, types into it, detaches with ctrl-p ctrl-q, attaches again; its exit code ends attach', async () => {
  const id = await detach(['-it', '--name', 'shell', 'bb:test', 'sh']);
  const a = interactive(['attach', 'shell']);
  await sleep(300);
  a.child.stdin!.write('echo answer-$((6*7))\n');
  await until('the echo through attach', async () => (a.out().includes('answer-42') ? true : undefined));
  a.child.stdin!.write('\x10\x11');
  assert.is(await a.done, 0);
  assert.is(a.err(), '');
  assert.is((await inspect(id)).State.Status, 'running', 'detaching leaves it running');
  assert.match((await run(['logs', 'shell'])).stdout, /answer-42/);
  const b = interactive(['attach', 'shell']);
  await sleep(300);
  b.child.stdin!.write('exit 3\n');
  assert.is(await b.done, 3);
  assert.is((await run(['wait', 'shell'])).stdout, '3\n');
  const gone = await run(['attach', 'shell']);
  assert.is(gone.code, 1);
  assert.is(gone.stderr, 'tsd-run: container shell: is not running; start it first\n');
});

test('attach ends with the run it joined (its code) when a restart policy starts the next one; attach joins that one', async () => {
  const id = await detach(['-it', '--restart', 'always', '--name', 'phoenix', 'bb:test', 'sh']);
  const a = interactive(['attach', 'phoenix']);
  await sleep(300);
  a.child.stdin!.write('exit 9\n');
  assert.is(await a.done, 9);
  await until('the next run', async () => ((await inspect(id)).RestartCount === 1 && (await inspect(id)).State.Status === 'running' ? true : undefined));
  const b = interactive(['attach', 'phoenix']);
  await sleep(300);
  b.child.stdin!.write('echo second-$((5*5))\n');
  await until('the second run answers', async () => (b.out().includes('second-25') ? true : undefined));
  b.child.stdin!.write('\x10\x11');
  assert.is(await b.done, 0);
  await run(['rm', '-f', id]);
});

test('kill -9 of the supervisor\'s worker: the pty survives (the watchdog holds it) and attach still types into it', async () => {
  const id = await detach(['-it', 'bb:test', 'sh']);
  const [worker, watchdog] = supervisors(id) as [number, number];
  process.kill(worker, 'SIGKILL');
  await until('the watchdog to take over', async () => (!alive(worker) && supervisors(id).length === 1 ? true : undefined));
  assert.ok(alive(watchdog));
  const a = interactive(['attach', id]);
  await sleep(300);
  a.child.stdin!.write('echo still-$((1+1))\n');
  await until('the echo after the takeover', async () => (a.out().includes('still-2') ? true : undefined));
  a.child.stdin!.write('exit 0\n');
  assert.is(await a.done, 0);
  assert.is((await inspect(id)).State.ExitCode, 0);
});

test('-d -i without -t: attach writes to its stdin; attach\'s end of input leaves the container\'s stdin open', async () => {
  const id = await detach(['-i', '--name', 'reader', 'bb:test', 'sh', '-c', 'trap "echo term; exit 9" TERM; while read l; do echo "got $l"; done; echo eof; exit 5']);
  const a = interactive(['attach', 'reader']);
  await sleep(300);
  a.child.stdin!.end('one\ntwo\n');
  await until('both lines', async () => (a.out() === 'got one\ngot two\n' ? true : undefined));
  await sleep(300);
  assert.is((await inspect(id)).State.Status, 'running');
  a.child.kill('SIGTERM'); // sig-proxy: TERM goes to the container, whose trap ends it
  assert.is(await a.done, 9);
  assert.is(a.out(), 'got one\ngot two\nterm\n');
  assert.is((await run(['wait', 'reader'])).stdout, '9\n');
});

test('-p with -i in the foreground: stdin reaches the container and its end ends it; --rm removes it', async () => {
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const addr = s.address() as { port: number };
      s.close(() => r(addr.port));
    });
  });
  const r = await run(['--rm', '-i', '-p', `127.0.0.1:${port}:80`, '--name', 'catter', 'bb:test', 'sh', '-c', 'cat; echo bye >&2; exit 4']).then(
    (x) => x,
  );
  assert.equal([r.code, r.stderr], [4, 'bye\n']);
  assert.is(r.stdout, ''); // tsd() sends an empty stdin
  const fed = interactive(['--rm', '-i', '-p', `127.0.0.1:${port}:80`, 'bb:test', 'sh', '-c', 'cat; exit 6']);
  fed.child.stdin!.end('piped in\n');
  assert.is(await fed.done, 6);
  assert.is(fed.out(), 'piped in\n');
  assert.not.match((await run(['ps', '-a'])).stdout, /catter/);
});

test('-a: only the streams named are printed, the others stay in the log; stdin only with -i; bad uses are one line', async () => {
  const before = (await run(['ps', '-a', '-q'])).stdout;
  const cmd = ['bb:test', 'sh', '-c', 'echo out; echo err >&2; exit 3'];
  const only = async (a: string[]) => {
    const r = await run(['--rm', ...a, ...cmd]);
    return [r.code, r.stdout, r.stderr];
  };
  assert.equal(await only(['-a', 'stdout']), [3, 'out\n', '']);
  assert.equal(await only(['-a', 'STDERR']), [3, '', 'err\n']);
  assert.equal(await only(['-a', 'stdout', '-a', 'stderr']), [3, 'out\n', 'err\n']);
  // -i -a stdin: input in, no output attached; the container's log has it all
  const fed = interactive(['-i', '-a', 'stdin', '--name', 'fed', 'bb:test', 'sh', '-c', 'cat; echo done >&2; exit 4']);
  fed.child.stdin!.end('piped\n');
  assert.is(await fed.done, 4);
  assert.equal([fed.out(), fed.err()], ['', '']);
  const logs = await run(['logs', 'fed']);
  assert.equal([logs.stdout, logs.stderr], ['piped\n', 'done\n']);
  // -a stdin without -i: stdin is attached but not open (Docker's AttachStdin without OpenStdin)
  const closed = interactive(['-a', 'stdin', '-a', 'stdout', '--name', 'closed', 'bb:test', 'sh', '-c', 'cat; echo end']);
  closed.child.stdin!.end('not read\n');
  assert.is(await closed.done, 0);
  assert.is(closed.out(), 'end\n');
  await run(['rm', '-f', 'fed', 'closed']);
  for (const [args, line] of [
    [['-a', 'stdio'], 'tsd-run: -a stdio: valid streams are stdin, stdout and stderr\n'],
    [['-d', '-a', 'stdout'], 'tsd-run: -a and -d cannot be combined (a detached container is attached to nothing)\n'],
    [['-it', '--detach-keys', 'alt-x'], 'tsd-run: --detach-keys: invalid key "alt-x" (ctrl-X or one character, comma separated)\n'],
  ] as const) {
    const r = await run([...args, 'bb:test', 'true']);
    assert.equal([r.code, r.stdout, r.stderr], [125, '', line]);
  }
  assert.is((await run(['ps', '-a', '-q'])).stdout, before, 'nothing left behind');
});

test('-it in the foreground: ctrl-p ctrl-q detaches and leaves it running; --detach-keys sets other keys; else its exit code, and --rm removes it', async () => {
  const a = interactive(['-it', '--name', 'fgshell', 'bb:test', 'sh']);
  await sleep(300);
  a.child.stdin!.write('echo hi-$((2*3))\n');
  await until('the echo in the foreground run', async () => (a.out().includes('hi-6') ? true : undefined));
  a.child.stdin!.write('\x10\x11');
  assert.is(await a.done, 0);
  assert.is((await inspect('fgshell')).State.Status, 'running', 'detaching leaves it running');
  // --detach-keys ctrl-x,x: ctrl-p ctrl-q are input like any other, ctrl-x x detaches
  const b = interactive(['-it', '--detach-keys', 'ctrl-x,x', '--name', 'fgcat', 'bb:test', 'cat']);
  await sleep(300);
  b.child.stdin!.write('\x10\x11');
  b.child.stdin!.write('after-keys\n');
  await until('cat still attached after ctrl-p ctrl-q', async () => (b.out().split('after-keys').length >= 3 ? true : undefined));
  b.child.stdin!.write('\x18x');
  assert.is(await b.done, 0);
  assert.is((await inspect('fgcat')).State.Status, 'running');
  await run(['rm', '-f', 'fgshell', 'fgcat']);
  const c = interactive(['--rm', '-it', '--name', 'fgexit', 'bb:test', 'sh']);
  await sleep(300);
  c.child.stdin!.write('exit 5\n');
  assert.is(await c.done, 5);
  assert.not.match((await run(['ps', '-a'])).stdout, /fgexit/);
});

test('--rm -it detached from (ctrl-p ctrl-q): its supervisor removes it when it exits later; not detached, its output and code, then removed', async () => {
  const a = interactive(['--rm', '-it', '--name', 'rmdetach', 'bb:test', 'sh']);
  await sleep(300);
  a.child.stdin!.write('echo up-$((4*4))\n');
  await until('the echo before detaching', async () => (a.out().includes('up-16') ? true : undefined));
  const id = (await inspect('rmdetach') as unknown as { Id: string }).Id;
  // the shell exits a second after the detach, with nobody attached
  a.child.stdin!.write('sleep 1; exit 7\n\x10\x11');
  assert.is(await a.done, 0);
  assert.is((await inspect('rmdetach')).State.Status, 'running', 'detaching leaves it running');
  await until('its removal after it exits', async () => (!(await run(['ps', '-a'])).stdout.includes('rmdetach') && !existsSync(join(p().containers, id)) ? true : undefined));
  // the race: detached as it exits (the container ends at once); removed either way
  const b = interactive(['--rm', '-it', '--name', 'rmrace', 'bb:test', 'sh', '-c', 'read x; exit 2']);
  await sleep(300);
  b.child.stdin!.write('go\n\x10\x11');
  assert.ok([0, 2].includes(await b.done));
  await until('the racing one removed', async () => (!(await run(['ps', '-a'])).stdout.includes('rmrace') ? true : undefined));
  // not detached: output and exit code as before, then removed (by the run, not its supervisor)
  const c = interactive(['--rm', '-it', '--name', 'rmstay', 'bb:test', 'sh', '-c', 'sleep 1; echo stayed; exit 6']);
  assert.is(await c.done, 6);
  assert.match(c.out(), /stayed/);
  assert.not.match((await run(['ps', '-a'])).stdout, /rmstay/);
  assert.is(readdirSync(p().containers).length, readdirSync(p().containers).filter((d) => existsSync(join(p().containers, d, 'container.json'))).length, 'no half-removed dir left');
});

test('in a terminal (script(1) makes one): a foreground -it run gets a pty and its exit code; attach puts the terminal in raw mode and ctrl-p ctrl-q detaches', async () => {
  const bin = join(REPO, 'bin', 'tsd-run');
  const inTerminal = (cmd: string) => {
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, TSD_ROOT: p().root }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stdin!.on('error', () => undefined);
    return { child, out: () => out, done: new Promise<number>((r) => child.on('close', (code) => r(code ?? 128))) };
  };
  const run1 = inTerminal(`${bin} --rm -it bb:test sh -c 'tty; exit 3'`);
  assert.is(await run1.done, 3);
  assert.match(run1.out(), /\/dev\/pts\/\d+/);
  const id = await detach(['-it', '--name', 'termshell', 'bb:test', 'sh']);
  const a = inTerminal(`${bin} attach termshell`);
  await sleep(500);
  a.child.stdin!.write('echo via-$((3+4))\r');
  await until('the echo through a terminal', async () => (a.out().includes('via-7') ? true : undefined));
  a.child.stdin!.write('\x10\x11');
  assert.is(await a.done, 0);
  assert.is((await inspect(id)).State.Status, 'running');
  await run(['rm', '-f', id]);
});

test.after(teardown);
test.run();
