// Everything skiff asks of iproute2's `ip`: network namespaces, bridges, veth
// pairs, addresses and routes. The only module that runs `ip` (Node has no
// netlink sockets).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { SystemError } from '../errors.js';

export const NETNS_DIR = '/var/run/netns';

function ip(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) child.stdin?.end(input);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new SystemError(`ip: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new SystemError(`ip ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
}

/** Several commands in one run (`ip -batch`), in `netns` when given; stops at the first failure. */
function batch(lines: string[][], netns?: string): Promise<string> {
  return ip([...(netns ? ['-n', netns] : []), '-batch', '-'], lines.map((l) => l.join(' ')).join('\n') + '\n');
}

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** Creates the namespace with loopback up; returns its path. Idempotent. */
export async function createNetns(name: string): Promise<string> {
  if (!existsSync(netnsPath(name))) await ip(['netns', 'add', name]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  return netnsPath(name);
}

export async function deleteNetns(name: string): Promise<void> {
  if (existsSync(netnsPath(name))) await ip(['netns', 'delete', name]);
}

export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

export interface Link {
  name: string;
  kind: string | undefined;
  master: string | undefined;
  up: boolean;
}

export async function links(): Promise<Link[]> {
  const raw = JSON.parse((await ip(['-j', '-d', 'link', 'show'])) || '[]') as Array<{ ifname: string; master?: string; flags?: string[]; linkinfo?: { info_kind?: string } }>;
  return raw.map((l) => ({ name: l.ifname, kind: l.linkinfo?.info_kind, master: l.master, up: (l.flags ?? []).includes('UP') }));
}

export interface Route {
  /** "a.b.c.d/n" or "default". */
  dst: string;
  dev: string | undefined;
}

/** IPv4 routes of the main table. */
export async function routes(): Promise<Route[]> {
  const raw = JSON.parse((await ip(['-j', '-4', 'route', 'show', 'table', 'main'])) || '[]') as Array<{ dst: string; dev?: string }>;
  return raw.map((r) => ({ dst: r.dst === 'default' || r.dst.includes('/') ? r.dst : `${r.dst}/32`, dev: r.dev }));
}

export async function addresses(dev: string): Promise<string[]> {
  const raw = JSON.parse((await ip(['-j', '-4', 'addr', 'show', 'dev', dev])) || '[]') as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>;
  return raw.flatMap((l) => (l.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`));
}

/** A bridge with exactly the gateway address `gwCidr` ("a.b.c.d/n"), up. */
export async function ensureBridge(name: string, gwCidr: string): Promise<void> {
  const existing = (await links()).find((l) => l.name === name);
  if (existing && existing.kind !== 'bridge') throw new SystemError(`${name} exists and is not a bridge`);
  if (!existing) await ip(['link', 'add', 'name', name, 'type', 'bridge']);
  const have = await addresses(name);
  for (const a of have) if (a !== gwCidr) await ip(['addr', 'del', a, 'dev', name]);
  if (!have.includes(gwCidr)) await ip(['addr', 'add', gwCidr, 'dev', name]);
  await ip(['link', 'set', name, 'up']);
}

export async function deleteLink(name: string): Promise<void> {
  await ip(['link', 'delete', name]).catch((err: Error) => {
    if (!/Cannot find device|does not exist/.test(err.message)) throw err;
  });
}

export interface VethSpec {
  /** Host-side name, enslaved to `bridge`. */
  hostIf: string;
  bridge: string;
  netns: string;
  /** The name inside the namespace (eth0, eth1...). */
  ifName: string;
  mac: string;
  /** "a.b.c.d/n" */
  address: string;
  /** Default route through it (the first non-internal network). */
  gateway: string | undefined;
}

/** A veth pair from the bridge into the namespace, addressed and up. */
export async function addVeth(v: VethSpec): Promise<void> {
  // Two runs of `ip` instead of six: each spawn costs more than the work.
  try {
    await batch([
      ['link', 'add', v.hostIf, 'type', 'veth', 'peer', 'name', v.ifName, 'netns', v.netns],
      ['link', 'set', v.hostIf, 'master', v.bridge, 'up'],
    ]);
    await batch(
      [
        ['link', 'set', v.ifName, 'address', v.mac],
        ['addr', 'add', v.address, 'dev', v.ifName],
        ['link', 'set', v.ifName, 'up'],
        ...(v.gateway ? [['route', 'replace', 'default', 'via', v.gateway, 'dev', v.ifName]] : []),
      ],
      v.netns,
    );
  } catch (err) {
    await deleteLink(v.hostIf).catch(() => undefined);
    throw err;
  }
}

/** Removes a namespace's interface (the veth pair goes with it). */
export async function deleteNsLink(netns: string, ifName: string): Promise<void> {
  await ip(['-n', netns, 'link', 'delete', ifName]).catch((err: Error) => {
    if (!/Cannot find device|does not exist|No such file/.test(err.message)) throw err;
  });
}

export async function setDefaultRoute(netns: string, gateway: string, ifName: string): Promise<void> {
  await ip(['-n', netns, 'route', 'replace', 'default', 'via', gateway, 'dev', ifName]);
}
