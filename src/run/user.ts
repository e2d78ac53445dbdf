// User: `-u user[:group]` resolved the way Docker (and runc's libcontainer/user) does it, against
// the image's /etc/passwd and /etc/group read from the container's root. Parsing and resolving
// are pure; the caller reads the two files.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';
import type { ResolvedUser } from './spec.js';

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

const lines = (text: string): string[][] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));

const isId = (s: string | undefined): s is string => s !== undefined && /^\d+$/.test(s) && Number(s) <= 0xffffffff;

export const parsePasswd = (text: string): readonly PasswdEntry[] =>
  lines(text).flatMap(([name, , uid, gid, , home]) => (name && isId(uid) && isId(gid) ? [{ name, uid: Number(uid), gid: Number(gid), home: home || '/' }] : []));

export const parseGroup = (text: string): readonly GroupEntry[] =>
  lines(text).flatMap(([name, , gid, members]) =>
    name && isId(gid) ? [{ name, gid: Number(gid), members: (members ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '') }] : [],
  );

const unable = (message: string): Failure => failure('InvalidUser', message, ExitCode.tool);

/**
 * Resolves "user", "uid", "user:group", "uid:gid" (and the empty string, meaning the image's
 * default, root). A name must exist in the image; a number need not. Supplementary groups are the
 * groups listing the user as a member, plus `groupAdd` (names or numbers).
 */
export const resolveUser = (spec: string, passwd: readonly PasswdEntry[], groups: readonly GroupEntry[], groupAdd: readonly string[] = []): E.Either<Failure, ResolvedUser> => {
  const [userPart = '', groupPart] = spec === '' ? ['root'] : spec.split(':', 2);
  const byName = passwd.find((p) => p.name === userPart);
  const byUid = isId(userPart) ? passwd.find((p) => p.uid === Number(userPart)) : undefined;
  const entry = byName ?? byUid;
  let uid: number;
  if (entry) uid = entry.uid;
  else if (isId(userPart)) uid = Number(userPart);
  else if (userPart === 'root') uid = 0;
  else return E.left(unable(`unable to find user ${userPart}: no matching entries in passwd file`));
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    const g = groups.find((x) => x.name === groupPart);
    if (g) gid = g.gid;
    else if (isId(groupPart)) gid = Number(groupPart);
    else return E.left(unable(`unable to find group ${groupPart}: no matching entries in group file`));
  }
  const extra: number[] = [];
  const add = (g: number) => {
    if (g !== gid && !extra.includes(g)) extra.push(g);
  };
  // with an explicit group Docker sets only that group, as runc does
  if (entry && groupPart === undefined) for (const g of groups) if (g.members.includes(entry.name)) add(g.gid);
  for (const a of groupAdd) {
    const g = groups.find((x) => x.name === a);
    if (g) add(g.gid);
    else if (isId(a)) add(Number(a));
    else return E.left(unable(`unable to find group ${a}: no matching entries in group file`));
  }
  return E.right({ uid, gid, additionalGids: extra, home: entry?.home ?? (uid === 0 ? '/root' : '/') });
};
