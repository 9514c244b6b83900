// IPv4 address arithmetic and allocation for skiff's bridge networks: subnets
// as (base, prefix) pairs of unsigned 32-bit numbers, Docker's default pools,
// and first-free allocation inside a range that skips reserved addresses.
import { InvalidParameter } from '../errors.js';

export interface Cidr {
  /** The network address (host bits cleared). */
  base: number;
  prefix: number;
}

export function parseIp(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(String(s).trim());
  if (!m) throw new InvalidParameter(`invalid IP address: ${s}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new InvalidParameter(`invalid IP address: ${s}`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "a.b.c.d/n"; `keepHost` keeps the address as given (for --bip, which names the gateway). */
export function parseCidr(s: string): Cidr & { addr: number } {
  const i = s.indexOf('/');
  if (i === -1) throw new InvalidParameter(`invalid CIDR address: ${s}`);
  const addr = parseIp(s.slice(0, i));
  const ps = s.slice(i + 1);
  if (!/^\d{1,2}$/.test(ps) || Number(ps) > 32) throw new InvalidParameter(`invalid CIDR address: ${s}`);
  const prefix = Number(ps);
  return { base: (addr & mask(prefix)) >>> 0, prefix, addr };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.base) || contains(b, a.base);
}

/** Docker's default address pools for local networks: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s. */
export function* defaultPools(): Generator<Cidr> {
  for (let i = 17; i <= 31; i++) yield { base: parseIp(`172.${i}.0.0`), prefix: 16 };
  for (let i = 0; i < 256; i += 16) yield { base: parseIp(`192.168.${i}.0`), prefix: 20 };
}

/** The first free pool that overlaps none of `taken`. */
export function freePool(taken: Cidr[]): Cidr | undefined {
  for (const p of defaultPools()) if (!taken.some((t) => overlaps(t, p))) return p;
  return undefined;
}

/**
 * The lowest free address of `range` (within `subnet`), skipping the network
 * and broadcast addresses and everything in `used`.
 */
export function allocate(subnet: Cidr, range: Cidr, used: Set<number>): number | undefined {
  const first = Math.max(range.base, subnet.base + 1);
  const last = Math.min(range.base + size(range) - 1, subnet.base + size(subnet) - 2);
  for (let ip = first; ip <= last; ip++) if (!used.has(ip)) return ip;
  return undefined;
}

/** Docker's MAC for an address: 02:42 followed by the four bytes of the IPv4 address. */
export function macFor(ip: number): string {
  return ['02', '42', ...[ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
