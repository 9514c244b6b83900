// Published ports: what PortBindings / PublishAllPorts ask for, host ports
// chosen from the ephemeral range, and the views inspect and ps show.
import { readFileSync } from 'node:fs';
import { InvalidParameter } from '../errors.js';
import type { PortMapping } from './store.js';

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** One wanted publication; hostPort 0 means "any free one". */
export interface PortRequest {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string;
  hostPort: number;
  /** The last port of a "8000-8010" host range (hostPort is the first). */
  hostPortEnd: number;
}

/** "80/tcp" → port and protocol. */
export function parsePortKey(key: string): { port: number; proto: 'tcp' | 'udp' } {
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/.exec(key);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new InvalidParameter(`invalid port specification: "${key}"`);
  if (m[2] === 'sctp') throw new InvalidParameter('publishing sctp ports is not supported by skiff');
  return { port: Number(m[1]), proto: (m[2] ?? 'tcp') as 'tcp' | 'udp' };
}

export function portRequests(exposed: Record<string, unknown> | null | undefined, bindings: Record<string, PortBinding[] | null> | null | undefined, publishAll: boolean): PortRequest[] {
  const out: PortRequest[] = [];
  const bound = new Set<string>();
  for (const [key, list] of Object.entries(bindings ?? {})) {
    const { port, proto } = parsePortKey(key);
    bound.add(`${port}/${proto}`);
    for (const b of list ?? [{}]) {
      const hp = (b.HostPort ?? '').trim();
      const m = /^(\d+)?(?:-(\d+))?$/.exec(hp);
      if (!m) throw new InvalidParameter(`invalid port specification: "${hp}"`);
      const first = m[1] ? Number(m[1]) : 0;
      const last = m[2] ? Number(m[2]) : first;
      if (first > 65535 || last > 65535 || last < first) throw new InvalidParameter(`invalid port specification: "${hp}"`);
      const hostIp = b.HostIp || '0.0.0.0';
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(hostIp)) throw new InvalidParameter(`invalid host IP address: ${hostIp} (skiff publishes on IPv4 only)`);
      out.push({ proto, containerPort: port, hostIp, hostPort: first, hostPortEnd: last });
    }
  }
  if (publishAll) {
    for (const key of Object.keys(exposed ?? {})) {
      const { port, proto } = parsePortKey(key);
      if (!bound.has(`${port}/${proto}`)) out.push({ proto, containerPort: port, hostIp: '0.0.0.0', hostPort: 0, hostPortEnd: 0 });
    }
  }
  return out;
}

/** The kernel's ephemeral range, where Docker picks ports for -P. */
export function ephemeralRange(): [number, number] {
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a && b) return [a, b];
  } catch {
    // fall through to Docker's own default
  }
  return [49153, 65535];
}

/** NetworkSettings.Ports: every exposed or published port, null where unpublished. */
export function portMap(exposed: Record<string, unknown> | null | undefined, live: PortMapping[]): Record<string, Array<{ HostIp: string; HostPort: string }> | null> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  for (const key of Object.keys(exposed ?? {})) {
    const { port, proto } = parsePortKey(key);
    out[`${port}/${proto}`] = null;
  }
  for (const p of live) {
    const k = `${p.containerPort}/${p.proto}`;
    (out[k] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  }
  return out;
}

/** `Ports` of GET /containers/json. */
export function portList(exposed: Record<string, unknown> | null | undefined, live: PortMapping[]): Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> {
  const out: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> = live.map((p) => ({ IP: p.hostIp, PrivatePort: p.containerPort, PublicPort: p.hostPort, Type: p.proto }));
  for (const key of Object.keys(exposed ?? {})) {
    const { port, proto } = parsePortKey(key);
    if (!live.some((p) => p.containerPort === port && p.proto === proto)) out.push({ PrivatePort: port, Type: proto });
  }
  return out;
}
