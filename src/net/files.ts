// /etc/hosts and /etc/resolv.conf of a container, written as Docker writes them.
import { InvalidParameter } from '../errors.js';

export interface DnsSettings {
  dns: string[];
  search: string[];
  options: string[];
}

interface ParsedResolv {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function parseResolvConf(text: string): ParsedResolv {
  const out: ParsedResolv = { nameservers: [], search: [], options: [] };
  for (const raw of text.split('\n')) {
    const f = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (f[0] === 'nameserver' && f[1]) out.nameservers.push(f[1]);
    else if (f[0] === 'search' || f[0] === 'domain') out.search = f.slice(1);
    else if (f[0] === 'options') out.options.push(...f.slice(1));
  }
  return out;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

/** Docker's fallback when the host has only loopback resolvers the container cannot reach. */
const FALLBACK_DNS = ['8.8.8.8', '8.8.4.4'];

/**
 * The resolvers a container uses (or the network's responder relays to):
 * the container's, else the daemon's, else the host's without loopback ones
 * unless `keepLoopback` (the responder runs on the host and reaches them).
 */
export function upstreamResolvers(host: string, container: DnsSettings, daemon: DnsSettings, keepLoopback: boolean): string[] {
  if (container.dns.length) return container.dns;
  if (daemon.dns.length) return daemon.dns;
  const ns = parseResolvConf(host).nameservers;
  if (keepLoopback) return ns;
  const remote = ns.filter((n) => !isLoopback(n));
  return remote.length ? remote : FALLBACK_DNS;
}

/**
 * resolv.conf: host mode keeps the host's file unless told otherwise;
 * `responder` (user networks) makes the network's resolver the only
 * nameserver with ndots:0, as Docker's embedded DNS does.
 */
export function resolvConf(host: string, mode: 'host' | 'private', container: DnsSettings, daemon: DnsSettings, responder: string | undefined): string {
  const h = parseResolvConf(host);
  const nameservers = responder ? [responder] : mode === 'host' && !container.dns.length && !daemon.dns.length ? h.nameservers : upstreamResolvers(host, container, daemon, false);
  const search = container.search.length ? container.search : daemon.search.length ? daemon.search : h.search;
  let options = container.options.length ? container.options : daemon.options.length ? daemon.options : h.options;
  if (responder && !options.some((o) => o.startsWith('ndots:'))) options = [...options, 'ndots:0'];
  return [...nameservers.map((n) => `nameserver ${n}`), ...(search.length ? [`search ${search.join(' ')}`] : []), ...(options.length ? [`options ${options.join(' ')}`] : [])].join('\n') + '\n';
}

/** "name:ip" entries of ExtraHosts; `host-gateway` stands for the gateway (Docker's host-gateway-ip). */
export function extraHostLines(extra: string[], hostGateway: string | undefined): string {
  return extra
    .map((e) => {
      const i = e.indexOf(':');
      if (i <= 0) throw new InvalidParameter(`invalid extra host: ${e} (expected host:ip)`);
      let addr = e.slice(i + 1);
      if (addr === 'host-gateway') {
        if (!hostGateway) throw new InvalidParameter('unable to derive the IP value for host-gateway');
        addr = hostGateway;
      }
      return `${addr}\t${e.slice(0, i)}\n`;
    })
    .join('');
}

export function hostsFile(hostname: string, domainname: string, ip: string | undefined, extra: string): string {
  const self = ip ? `${ip}\t${domainname ? `${hostname}.${domainname} ` : ''}${hostname}\n` : '';
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n${extra}${self}`;
}
