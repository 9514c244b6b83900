// Resolves a container's `User` ("name", "uid", "name:group", "uid:gid", ""
// for root) and `HostConfig.GroupAdd` against the image's /etc/passwd and
// /etc/group, the way Docker does before it starts a container. Pure: the
// caller reads the two files out of the mounted rootfs (undefined when the
// image has none, as in a FROM scratch image) and passes their text in.
import { InvalidParameter } from '../errors.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The primary gid first, then the user's supplementary groups, then GroupAdd (no duplicates). */
  additionalGids: number[];
  /** From the passwd entry; "/" when the user has none. */
  home: string;
}

const MAX_ID = 2 ** 31 - 1;

function toId(field: string | undefined): number {
  const n = Number.parseInt(field ?? '', 10);
  return Number.isFinite(n) ? n : 0;
}

function lines(text: string | undefined): string[][] {
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

export function parsePasswd(text: string | undefined): PasswdEntry[] {
  return lines(text).map((f) => ({
    name: f[0] ?? '',
    uid: toId(f[2]),
    gid: toId(f[3]),
    home: f[5] ?? '',
    shell: f[6] ?? '',
  }));
}

export function parseGroup(text: string | undefined): GroupEntry[] {
  return lines(text).map((f) => ({
    name: f[0] ?? '',
    gid: toId(f[2]),
    members: (f[3] ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== ''),
  }));
}

/** A decimal id ("1000"), or undefined when the string is a name. */
function numericId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw new InvalidParameter(`uids and gids must be in range 0-${MAX_ID}: ${s}`);
  return n;
}

function pushUnique(list: number[], id: number): void {
  if (!list.includes(id)) list.push(id);
}

/**
 * Docker's rules: a name must exist in passwd, a number need not; the user's
 * primary group comes from passwd unless a group is given after ':'; the
 * supplementary groups (the groups listing the user by name) only apply when
 * no group was given; GroupAdd entries are names (which must exist) or gids.
 */
export function resolveUser(
  userSpec: string,
  passwdText: string | undefined,
  groupText: string | undefined,
  groupAdd: readonly string[] = [],
): ResolvedUser {
  const colon = userSpec.indexOf(':');
  const userArg = colon < 0 ? userSpec : userSpec.slice(0, colon);
  const groupArg = colon < 0 ? '' : userSpec.slice(colon + 1);
  const passwd = parsePasswd(passwdText);
  const groups = parseGroup(groupText);

  let uid = 0;
  let gid = 0;
  let home = '/';
  let matchedName = '';

  const uidArg = userArg === '' ? undefined : numericId(userArg);
  const found = passwd.find((u) => (userArg === '' ? u.uid === 0 : uidArg !== undefined ? u.uid === uidArg : u.name === userArg));
  if (found) {
    uid = found.uid;
    gid = found.gid;
    home = found.home || '/';
    matchedName = found.name;
  } else if (userArg !== '') {
    if (uidArg === undefined) throw new InvalidParameter(`unable to find user ${userArg}: no matching entries in passwd file`);
    uid = uidArg;
  }

  const sgids: number[] = [];
  if (groupArg !== '') {
    const gidArg = numericId(groupArg);
    const g = groups.find((e) => (gidArg !== undefined ? e.gid === gidArg : e.name === groupArg));
    if (g) gid = g.gid;
    else if (gidArg !== undefined) gid = gidArg;
    else throw new InvalidParameter(`unable to find group ${groupArg}: no matching entries in group file`);
  } else if (matchedName !== '') {
    for (const g of groups) if (g.members.includes(matchedName)) sgids.push(g.gid);
  }

  const additionalGids = [gid];
  for (const id of sgids) pushUnique(additionalGids, id);
  for (const ag of groupAdd) {
    const agId = numericId(ag);
    const g = groups.find((e) => (agId !== undefined ? e.gid === agId : e.name === ag));
    if (g) pushUnique(additionalGids, g.gid);
    else if (agId !== undefined) pushUnique(additionalGids, agId);
    else throw new InvalidParameter(`unable to find group ${ag}: no matching entries in group file`);
  }
  return { uid, gid, additionalGids, home };
}
