// tsd-store's entry: the fast path for --version and a plain ls, and its fall-back to the parser.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeImage, removeDir, tempStore, tsd } from '../support/tsd.js';

// cli.ts runs the command line it was started with when imported: read plainList from its source
// by importing it under an argv that does nothing harmful (--version prints to this stdout).
process.argv = [process.argv[0]!, 'cli', '--version'];
const { plainList } = await import('../../src/store/cli.js');

const cases: [string[], ReturnType<typeof plainList>][] = [
  [['ls'], { json: false }],
  [['images', '--json'], { json: true }],
  [['ls', '--root', '/x', '--json'], { root: '/x', json: true }],
  [['ls', '--root=/x', '--format={{.ID}}'], { root: '/x', json: false, format: '{{.ID}}' }],
  [['ls', '--format', '{{.Repository}}'], { json: false, format: '{{.Repository}}' }],
  [['ls', '--help'], undefined],
  [['ls', '-q'], undefined],
  [['ls', '--root'], undefined],
  [['ls', 'extra'], undefined],
  [['inspect', 'x'], undefined],
  [[], undefined],
];
for (const [argv, want] of cases) {
  test(`plainList ${JSON.stringify(argv)}`, () => assert.equal(plainList(argv), want));
}

test('the fast ls prints the listing; --help and unknown options reach the parser', async () => {
  const p = await tempStore();
  await makeImage(p, 'localhost/a:1', [[{ name: 'a', content: 'a' }]]);
  const json = await tsd('store', ['ls', '--json'], { root: p.root });
  assert.is(json.code, 0, json.stderr);
  const m = JSON.parse(json.stdout);
  assert.equal([m.v, m.type, m.ref], [1, 'image', 'localhost/a:1']);
  const format = await tsd('store', ['ls', `--root=${p.root}`, '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  assert.is(format.stdout, `localhost/a:1 ${m.config.slice(7, 19)}\n`);
  const table = await tsd('store', ['images'], { root: p.root });
  assert.match(table.stdout, /^REPOSITORY {3,}TAG {3,}IMAGE ID {3,}CREATED {3,}SIZE\nlocalhost\/a {3,}1 {3,}[a-f0-9]{12} /);
  const help = await tsd('store', ['ls', '--help'], { root: p.root });
  assert.match(help.stdout + help.stderr, '--format');
  const bogus = await tsd('store', ['ls', '--bogus'], { root: p.root });
  assert.is(bogus.code, 1);
  assert.match(bogus.stderr, 'Unknown arguments');
  const missing = await tsd('store', ['ls', '--root', '/etc/passwd/x']);
  assert.is(missing.code, 125);
  assert.match(missing.stderr, /^tsd-store: create store \/etc\/passwd\/x: .*not a directory/);
  const version = await tsd('store', ['--version']);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  removeDir(p.root);
});

test.run();
