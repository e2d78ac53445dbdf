// -u resolution against an image's /etc/passwd and /etc/group, as runc's libcontainer/user does it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from 'fp-ts/lib/Either.js';
import { parseGroup, parsePasswd, resolveUser } from '../../src/run/user.js';

const passwd = parsePasswd('root:x:0:0:root:/root:/bin/sh\n# comment\nalice:x:1000:1000::/home/alice:/bin/sh\nbroken line\nbob:x:1001:1001::/home/bob:/bin/sh\nweird:x:notanumber:1::/:/bin/sh\n');
const group = parseGroup('root:x:0:\nalice:x:1000:\nstaff:x:50:alice,bob\nwheel:x:10: alice \nbob:x:1001:\n');
const ok = (spec: string, add: string[] = []) => {
  const r = resolveUser(spec, passwd, group, add);
  if (E.isLeft(r)) throw new Error(r.left.message);
  return r.right;
};
const err = (spec: string, add: string[] = []) => {
  const r = resolveUser(spec, passwd, group, add);
  return E.isLeft(r) ? r.left.message : 'no error';
};

test('parsing skips comments, short and non-numeric lines', () => {
  assert.equal(passwd.map((p) => p.name), ['root', 'alice', 'bob']);
  assert.equal(group.find((g) => g.name === 'wheel')?.members, ['alice']);
});

test('table', () => {
  const cases: [string, string[], object][] = [
    ['', [], { uid: 0, gid: 0, additionalGids: [], home: '/root' }],
    ['root', [], { uid: 0, gid: 0, additionalGids: [], home: '/root' }],
    ['alice', [], { uid: 1000, gid: 1000, additionalGids: [50, 10], home: '/home/alice' }],
    ['1000', [], { uid: 1000, gid: 1000, additionalGids: [50, 10], home: '/home/alice' }],
    ['alice:staff', [], { uid: 1000, gid: 50, additionalGids: [], home: '/home/alice' }],
    ['alice:4000', [], { uid: 1000, gid: 4000, additionalGids: [], home: '/home/alice' }],
    ['4242', [], { uid: 4242, gid: 0, additionalGids: [], home: '/' }],
    ['4242:77', [], { uid: 4242, gid: 77, additionalGids: [], home: '/' }],
    ['bob', ['wheel', '99'], { uid: 1001, gid: 1001, additionalGids: [50, 10, 99], home: '/home/bob' }],
    ['bob', ['bob'], { uid: 1001, gid: 1001, additionalGids: [50], home: '/home/bob' }],
  ];
  for (const [spec, add, want] of cases) assert.equal(ok(spec, add), want, spec);
});

test('unknown names are errors naming them', () => {
  assert.match(err('mallory'), /unable to find user mallory/);
  assert.match(err('alice:nogroup'), /unable to find group nogroup/);
  assert.match(err('alice', ['ghosts']), /unable to find group ghosts/);
  assert.match(err('99999999999'), /unable to find user/);
});

test.run();
