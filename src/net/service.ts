// The network service: Docker's networks (the default bridge, user-defined
// bridges, host and none), each container's endpoints, published ports and
// name resolution. State lives in NetStore; devices through ip.ts, rules
// through iptables.ts, both rebuilt from that state at daemon start.
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { Conflict, Forbidden, InvalidParameter, NotFound, SystemError, messageOf } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../log/logger.js';
import { DnsResponder } from './dns.js';
import { extraHostLines, hostsFile, resolvConf, upstreamResolvers, type DnsSettings } from './files.js';
import * as ip from './ip.js';
import { applyRules } from './iptables.js';
import { allocate, contains, formatCidr, formatIp, freePool, macFor, overlaps, parseCidr, parseIp, type Cidr } from './ipam.js';
import { netnsName } from './netns.js';
import { ephemeralRange, portList, portMap, portRequests, type PortRequest } from './ports.js';
import { PortInUse, startProxy, type Proxy } from './proxy.js';
import { buildRules, type PublishedPort } from './rules.js';
import { NetStore, type Attachment, type Endpoint, type IpamConfig, type NetworkRecord, type PortMapping } from './store.js';
import type { ContainerDirectory, CreateAsked, EndpointSettings, EndpointsConfig, NetConfig, NetContainer, NetworkResource } from './types.js';
import { labelMatches } from '../filters.js';

const PREDEFINED = ['bridge', 'host', 'none'];
const BRIDGE_NAME_OPT = 'com.docker.network.bridge.name';

export interface NetworkServiceOptions {
  dataRoot: string;
  config: NetConfig;
  logger: Logger;
  events?: EventBus;
}

type EndpointConfig = NonNullable<EndpointsConfig[string]>;

/** An EndpointSettings of a request, checked for the fields skiff reads. */
function endpointConfig(raw: unknown, where: string): EndpointConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidParameter(`invalid endpoint settings for ${where}: expected an object`);
  const r = raw as Record<string, unknown>;
  if (r.Aliases !== undefined && r.Aliases !== null && !(Array.isArray(r.Aliases) && r.Aliases.every((a) => typeof a === 'string'))) {
    throw new InvalidParameter(`invalid Aliases for ${where}: expected a list of strings`);
  }
  const ipam = r.IPAMConfig;
  if (ipam !== undefined && ipam !== null) {
    if (typeof ipam !== 'object' || Array.isArray(ipam)) throw new InvalidParameter(`invalid IPAMConfig for ${where}: expected an object`);
    for (const k of ['IPv4Address', 'IPv6Address'] as const) {
      const v = (ipam as Record<string, unknown>)[k];
      if (v !== undefined && v !== null && typeof v !== 'string') throw new InvalidParameter(`invalid IPAMConfig.${k} for ${where}: expected a string`);
    }
  }
  return r as EndpointConfig;
}

/** The attachment an endpoint's settings ask for, checked as Docker checks them, on create and on connect alike. */
function attachmentOf(ref: string, net: NetworkRecord | undefined, conf: EndpointConfig | undefined): Attachment {
  const aliases = conf?.Aliases ?? [];
  const ipv4 = conf?.IPAMConfig?.IPv4Address || undefined;
  if (conf?.IPAMConfig?.IPv6Address) throw new InvalidParameter('IPv6 addresses are not supported by skiff');
  const isDefault = net?.Predefined === true && net.Name === 'bridge';
  if (isDefault && ipv4) throw new InvalidParameter('user specified IP address is supported on user defined networks only');
  if (isDefault && aliases.length) throw new InvalidParameter('network-scoped alias is supported only for containers in user defined networks');
  if (ipv4) parseIp(ipv4);
  return { network: ref, aliases, ...(ipv4 ? { ipv4 } : {}) };
}

function newId(): string {
  return randomBytes(32).toString('hex');
}

function readHostFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export class NetworkService {
  private dir: ContainerDirectory | undefined;
  private readonly responders = new Map<string, DnsResponder>();
  private readonly proxies = new Map<string, Proxy[]>();
  private queue: Promise<unknown> = Promise.resolve();
  private nextEphemeral = 0;

  private constructor(
    private readonly store: NetStore,
    private readonly o: NetworkServiceOptions,
  ) {}

  static async open(o: NetworkServiceOptions): Promise<NetworkService> {
    return new NetworkService(await NetStore.open(o.dataRoot), o);
  }

  setContainers(dir: ContainerDirectory): void {
    this.dir = dir;
  }

  private get containers(): ContainerDirectory {
    if (!this.dir) throw new SystemError('network service used before the container service was attached');
    return this.dir;
  }

  private get state() {
    return this.store.state;
  }

  /** One mutation at a time: addresses, ports and rules are decided on a consistent state. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  // ---- daemon start ----------------------------------------------------------------

  /** Predefined networks, every bridge up with its responder, ip_forward and the rules: before containers restore. */
  async start(): Promise<void> {
    await this.exclusive(async () => {
      await this.ensurePredefined();
      if (this.o.config.ipForward) await fs.writeFile('/proc/sys/net/ipv4/ip_forward', '1\n').catch((err: Error) => this.o.logger.warn('enabling ip_forward failed', { error: err.message }));
      for (const n of this.state.networks) if (n.Driver === 'bridge') await this.bringUp(n);
      await this.store.save();
      await this.applyRules();
    });
  }

  /**
   * After containers were restored: whatever belongs to containers that no
   * longer run goes (a kill -9 of the daemon leaves it), and running ones
   * get their published ports back.
   */
  async reconcile(): Promise<void> {
    await this.exclusive(async () => {
      const all = this.containers.all();
      const running = new Set(all.filter((c) => c.running).map((c) => c.id));
      // start() saved the state and wrote the rules: only what changes here is written again.
      let rulesChanged = false;
      let attachmentsChanged = false;
      for (const id of new Set([...Object.keys(this.state.endpoints), ...Object.keys(this.state.ports)])) {
        if (!running.has(id)) rulesChanged = (await this.release(id)) || rulesChanged;
        else if (!this.proxies.has(id)) await this.startProxies(id).catch((err: Error) => this.o.logger.warn('restoring published ports failed', { container: id.slice(0, 12), error: err.message }));
      }
      // Connections of containers that are gone (a crash between their removal and ours).
      const known = new Set(all.map((c) => c.id));
      for (const id of Object.keys(this.state.attachments)) {
        if (known.has(id)) continue;
        delete this.state.attachments[id];
        attachmentsChanged = true;
      }
      const byShort = new Map(all.map((c) => [netnsName(c.id), c]));
      for (const ns of ip.listNetns()) {
        const c = byShort.get(ns);
        if (c && !c.running) await ip.deleteNetns(ns).catch(() => undefined);
      }
      const bridges = new Set(this.state.networks.map((n) => n.Bridge).filter(Boolean));
      const hostIfs = new Set(Object.values(this.state.endpoints).flat().map((e) => e.hostIf));
      for (const l of await ip.links()) {
        // Veths on skiff's bridges whose endpoint is gone. (A network's bridge goes before
        // its record does, so no bridge can outlive its network: none is guessed at here.)
        if (l.kind === 'veth' && l.master && bridges.has(l.master) && !hostIfs.has(l.name)) await ip.deleteLink(l.name).catch(() => undefined);
      }
      if (attachmentsChanged) await this.store.save(); // release() saved its own changes
      if (rulesChanged) await this.applyRules();
    });
  }

  /** Daemon shutdown: responders and proxies close (devices and rules stay, as Docker's do). */
  shutdown(): void {
    for (const r of this.responders.values()) r.close();
    for (const list of this.proxies.values()) for (const p of list) p.close();
    this.responders.clear();
    this.proxies.clear();
  }

  private async ensurePredefined(): Promise<void> {
    const cfg = this.o.config;
    const find = (name: string) => this.state.networks.find((n) => n.Predefined && n.Name === name);
    const base = (name: string, driver: string): NetworkRecord => ({
      Id: newId(),
      Name: name,
      Created: new Date().toISOString(),
      Driver: driver,
      Internal: false,
      Attachable: false,
      Labels: {},
      Options: {},
      IPAM: { Driver: 'default', Options: null, Config: [] },
      Predefined: true,
    });
    if (!find('host')) this.state.networks.push(base('host', 'host'));
    if (!find('none')) this.state.networks.push(base('none', 'null'));
    let bridge = find('bridge');
    if (cfg.bridge === 'none') {
      if (bridge?.Bridge) await ip.deleteLink(bridge.Bridge);
      this.state.networks = this.state.networks.filter((n) => n !== bridge);
      return;
    }
    if (!bridge) {
      bridge = base('bridge', 'bridge');
      this.state.networks.unshift(bridge);
    }
    if (bridge.Bridge && bridge.Bridge !== cfg.bridge) await ip.deleteLink(bridge.Bridge);
    bridge.Bridge = cfg.bridge;
    bridge.Options = {
      'com.docker.network.bridge.default_bridge': 'true',
      'com.docker.network.bridge.enable_icc': 'true',
      'com.docker.network.bridge.enable_ip_masquerade': 'true',
      'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
      [BRIDGE_NAME_OPT]: cfg.bridge,
      'com.docker.network.driver.mtu': '1500',
    };
    const others = this.state.networks.filter((n) => n !== bridge).flatMap((n) => n.IPAM.Config.map((c) => parseCidr(c.Subnet)));
    let subnet: Cidr;
    let gateway: number;
    if (cfg.bip) {
      const b = parseCidr(cfg.bip);
      if (b.addr === b.base) throw new InvalidParameter(`invalid --bip ${cfg.bip}: it names the gateway's address, not the network's`);
      subnet = b;
      gateway = b.addr;
    } else {
      const host = await this.hostRoutes([cfg.bridge]);
      const taken = [...others, ...host.map((r) => r.cidr)];
      const old = bridge.IPAM.Config[0];
      const keep = old && !taken.some((t) => overlaps(t, parseCidr(old.Subnet)));
      const def = parseCidr('172.17.0.0/16');
      const pick = keep ? parseCidr(old.Subnet) : !taken.some((t) => overlaps(t, def)) ? def : freePool(taken);
      if (!pick) throw new SystemError('could not find an available, non-overlapping IPv4 address pool for the default bridge network');
      subnet = pick;
      gateway = keep ? parseIp(old.Gateway) : pick.base + 1;
    }
    const conf: IpamConfig = { Subnet: formatCidr(subnet), Gateway: formatIp(gateway) };
    if (cfg.fixedCidr) {
      const f = parseCidr(cfg.fixedCidr);
      if (!contains(subnet, f.base) || f.prefix < subnet.prefix) throw new InvalidParameter(`invalid --fixed-cidr ${cfg.fixedCidr}: not inside the bridge's network ${formatCidr(subnet)}`);
      conf.IPRange = formatCidr(f);
    }
    bridge.IPAM.Config = [conf];
  }

  /** The host's IPv4 routes that are not skiff's own bridges' (nor the default route). */
  private async hostRoutes(ownExtra: string[] = []): Promise<Array<{ cidr: Cidr; text: string }>> {
    const own = new Set([...this.state.networks.map((n) => n.Bridge).filter(Boolean), ...ownExtra]);
    return (await ip.routes())
      .filter((r) => r.dst !== 'default' && !(r.dev && own.has(r.dev)))
      .map((r) => ({ cidr: parseCidr(r.dst), text: `${r.dst}${r.dev ? ` dev ${r.dev}` : ''}` }));
  }

  private async bringUp(n: NetworkRecord): Promise<void> {
    const c = n.IPAM.Config[0];
    if (!n.Bridge || !c) return;
    await ip.ensureBridge(n.Bridge, `${c.Gateway}/${parseCidr(c.Subnet).prefix}`);
    if (n.Name !== 'bridge' || !n.Predefined) {
      if (this.responders.has(n.Id)) return;
      const r = new DnsResponder(
        { logger: this.o.logger, lookup: (name, client, net) => this.lookup(name, client, net), upstream: () => this.upstream() },
        n.Id,
        c.Gateway,
        !n.Internal,
      );
      try {
        await r.start();
        this.responders.set(n.Id, r);
      } catch (err) {
        this.o.logger.warn('name resolution on the network is unavailable', { network: n.Name, error: messageOf(err) });
      }
    }
  }

  private upstream(): string[] {
    return upstreamResolvers(readHostFile('/etc/resolv.conf'), { dns: [], search: [], options: [] }, this.daemonDns(), true);
  }

  private daemonDns(): DnsSettings {
    return { dns: this.o.config.dns, search: this.o.config.dnsSearch, options: this.o.config.dnsOpts };
  }

  private async applyRules(): Promise<void> {
    if (!this.o.config.iptables) return;
    const published: PublishedPort[] = [];
    for (const [id, ports] of Object.entries(this.state.ports)) {
      const ep = this.portEndpoint(id);
      const n = ep && this.network(ep.network);
      if (!ep || !n?.Bridge) continue;
      for (const p of ports) published.push({ ...p, bridge: n.Bridge, containerIp: ep.ip });
    }
    await applyRules(buildRules(this.state.networks, published));
  }

  // ---- lookups ----------------------------------------------------------------------

  private network(id: string): NetworkRecord | undefined {
    return this.state.networks.find((n) => n.Id === id);
  }

  /** By full id, by name, then by unique id prefix (Docker's order). */
  private findNetwork(ref: string): NetworkRecord {
    const byId = this.state.networks.find((n) => n.Id === ref);
    if (byId) return byId;
    const byName = this.state.networks.find((n) => n.Name === ref);
    if (byName) return byName;
    const byPrefix = ref ? this.state.networks.filter((n) => n.Id.startsWith(ref)) : [];
    if (byPrefix.length === 1) return byPrefix[0]!;
    if (byPrefix.length > 1) throw new InvalidParameter(`network ${ref} is ambiguous (${byPrefix.length} matches found based on ID prefix)`);
    throw new NotFound(`network ${ref} not found`);
  }

  /** Published ports go to the container's first endpoint. */
  private portEndpoint(id: string): Endpoint | undefined {
    return this.state.endpoints[id]?.[0];
  }

  /** A name as a container on `network` sees it: container names, short ids and aliases on shared user networks. */
  private lookup(name: string, clientIp: string, network: string): string | undefined {
    const q = name.toLowerCase();
    let nets = [network];
    for (const eps of Object.values(this.state.endpoints)) {
      const mine = eps.find((e) => e.ip === clientIp && e.network === network);
      if (mine) nets = [network, ...eps.map((e) => e.network).filter((n) => n !== network)];
    }
    for (const net of nets) {
      const rec = this.network(net);
      if (!rec || (rec.Predefined && rec.Name === 'bridge')) continue;
      for (const [cid, eps] of Object.entries(this.state.endpoints)) {
        const ep = eps.find((e) => e.network === net);
        if (!ep) continue;
        const c = this.dir?.get(cid);
        const aliases = (this.state.attachments[cid] ?? []).find((a) => a.network === net)?.aliases ?? [];
        const names = [c?.name, cid.slice(0, 12), cid, ...aliases].filter((x): x is string => !!x).map((x) => x.toLowerCase());
        if (names.includes(q)) return ep.ip;
      }
    }
    return undefined;
  }

  // ---- container hooks ------------------------------------------------------------

  /** Checks a create request's NetworkMode and endpoints and records what the container is connected to. */
  async created(
    id: string,
    mode: string,
    endpoints: EndpointsConfig | undefined,
    asked: CreateAsked,
  ): Promise<string[]> {
    if (mode.startsWith('container:')) {
      // Docker's runconfig errors: these belong to the container whose namespace is shared.
      if (mode === 'container:') throw new InvalidParameter('invalid container format container:<name|id>');
      if (asked.hostname) throw new InvalidParameter('conflicting options: hostname and the network mode');
      if (asked.dns) throw new InvalidParameter('conflicting options: dns and the network mode');
      if (asked.extraHosts) throw new InvalidParameter('conflicting options: custom host-to-IP mapping and the network mode');
      if (asked.ports) throw new InvalidParameter('conflicting options: port publishing and the container type network mode');
    }
    await this.exclusive(async () => {
      const atts: Attachment[] = [];
      const eps = endpoints ?? {};
      if (!['host', 'none'].includes(mode) && !mode.startsWith('container:')) {
        const main = mode === 'default' ? 'bridge' : mode;
        const entries: Array<[string, (typeof eps)[string] | undefined]> = [[main, eps[mode] ?? eps[main] ?? undefined]];
        for (const [k, v] of Object.entries(eps)) if (k !== mode && k !== main) entries.push([k, v]);
        const seen = new Set<string>();
        for (const [key, raw] of entries) {
          const conf = endpointConfig(raw, key);
          let net: NetworkRecord | undefined;
          try {
            net = this.findNetwork(key);
          } catch (err) {
            if (!(err instanceof NotFound)) throw err;
          }
          // --bridge=none: the default mode has no network but loopback.
          if (!net && mode === 'default' && key === main) continue;
          const ref = net?.Id ?? key;
          if (seen.has(ref)) continue;
          seen.add(ref);
          if (net && net.Driver !== 'bridge') throw new InvalidParameter(`container cannot be connected to network ${net.Name} together with others`);
          atts.push(attachmentOf(ref, net, conf));
        }
      }
      this.state.attachments[id] = atts;
      await this.store.save();
    });
    // Docker's create warning: the host's ports are the container's own there.
    return mode === 'host' && asked.ports ? ['Published ports are discarded when using host network mode'] : [];
  }

  /**
   * Everything a starting container needs: its namespace with an endpoint on
   * each network, published ports, /etc/hosts and /etc/resolv.conf. Returns
   * the namespace for the OCI spec ('host' for the host's). A failure leaves
   * nothing behind.
   */
  async setUp(c: NetContainer): Promise<string> {
    if (c.networkMode === 'host') {
      await fs.writeFile(c.hostsPath, readHostFile('/etc/hosts') + extraHostLines(c.extraHosts, undefined));
      await fs.writeFile(c.resolvPath, resolvConf(readHostFile('/etc/resolv.conf'), 'host', c.dns, this.daemonDns(), undefined));
      return 'host';
    }
    if (c.networkMode.startsWith('container:')) {
      const other = this.containers.find(c.networkMode.slice('container:'.length));
      if (other.id === c.id) throw new InvalidParameter('cannot join own network');
      if (!other.running) throw new Conflict(`cannot join network of a non running container: ${other.id}`);
      // The joined container's files, as Docker shares them.
      await fs.copyFile(other.hostsPath, c.hostsPath);
      await fs.copyFile(other.resolvPath, c.resolvPath);
      // Whose namespace it really is: the joined container may itself have joined one (or the host's).
      let owner = other;
      for (let hops = 0; owner.networkMode.startsWith('container:') && hops < 16; hops++) owner = this.containers.find(owner.networkMode.slice('container:'.length));
      return owner.networkMode === 'host' ? 'host' : ip.netnsPath(netnsName(owner.id));
    }
    return this.exclusive(async () => {
      const ns = await ip.createNetns(netnsName(c.id));
      try {
        const atts = c.networkMode === 'none' ? [] : this.attachmentsOf(c);
        for (const a of atts) {
          const ep = await this.connectEndpoint(c, a);
          this.publishEndpoint('connect', ep.network, c.id);
        }
        const first = this.state.endpoints[c.id]?.[0];
        const requests = portRequests(c.exposedPorts, c.portBindings, c.publishAll);
        if (requests.length && first) await this.publish(c, first, requests);
        await this.store.save();
        // Rules depend on networks and published ports only.
        if (this.state.ports[c.id]?.length) await this.applyRules();
        await this.writeFiles(c);
        return ns;
      } catch (err) {
        await this.release(c.id).catch((e: Error) => this.o.logger.warn('network clean-up after a failed start', { container: c.id.slice(0, 12), error: e.message }));
        throw err;
      }
    });
  }

  private attachmentsOf(c: NetContainer): Attachment[] {
    let atts = this.state.attachments[c.id];
    if (!atts) {
      // Containers created before skiff had networks: the default bridge.
      const b = this.state.networks.find((n) => n.Predefined && n.Name === 'bridge');
      atts = b ? [{ network: b.Id, aliases: [] }] : [];
      this.state.attachments[c.id] = atts;
    }
    return atts;
  }

  private async writeFiles(c: NetContainer): Promise<void> {
    const eps = this.state.endpoints[c.id] ?? [];
    const first = eps[0];
    // On any user network the container asks that network's responder (Docker's embedded DNS).
    const responder = eps.find((e) => this.responders.has(e.network))?.gateway;
    await fs.writeFile(c.hostsPath, hostsFile(c.hostname, c.domainname, first?.ip, extraHostLines(c.extraHosts, first?.gateway)));
    await fs.writeFile(c.resolvPath, resolvConf(readHostFile('/etc/resolv.conf'), 'private', c.dns, this.daemonDns(), responder));
  }

  /** One endpoint: an address on the network, a veth into the namespace, the default route if it is the first way out. */
  private async connectEndpoint(c: NetContainer, a: Attachment): Promise<Endpoint> {
    const n = this.findNetwork(a.network);
    if (n.Driver !== 'bridge') throw new InvalidParameter(`container cannot be connected to network ${n.Name}`);
    const conf = n.IPAM.Config[0];
    if (!conf || !n.Bridge) throw new SystemError(`network ${n.Name} has no address pool`);
    const subnet = parseCidr(conf.Subnet);
    const used = new Set<number>([parseIp(conf.Gateway), ...Object.values(conf.AuxiliaryAddresses ?? {}).map(parseIp)]);
    for (const eps of Object.values(this.state.endpoints)) for (const e of eps) if (e.network === n.Id) used.add(parseIp(e.ip));
    let addr: number | undefined;
    if (a.ipv4) {
      addr = parseIp(a.ipv4);
      if (!contains(subnet, addr)) throw new InvalidParameter(`Invalid address ${a.ipv4}: It does not belong to any of this network's subnets`);
      if (used.has(addr)) throw new Forbidden(`Address already in use`);
    } else {
      addr = allocate(subnet, conf.IPRange ? parseCidr(conf.IPRange) : subnet, used);
      if (addr === undefined) throw new Forbidden(`no available IPv4 addresses on this network's address pools: ${n.Name} (${n.Id})`);
    }
    const mine = (this.state.endpoints[c.id] ??= []);
    if (mine.some((e) => e.network === n.Id)) throw new Forbidden(`endpoint with name ${c.name} already exists in network ${n.Name}`);
    let k = 0;
    while (mine.some((e) => e.ifName === `eth${k}`)) k++;
    const hasRoute = mine.some((e) => !this.network(e.network)?.Internal);
    const ep: Endpoint = {
      network: n.Id,
      endpointId: newId(),
      ip: formatIp(addr),
      prefixLen: subnet.prefix,
      gateway: conf.Gateway,
      mac: macFor(addr),
      hostIf: `veth${randomBytes(4).toString('hex').slice(0, 7)}`,
      ifName: `eth${k}`,
    };
    // Recorded before the device exists, so a crash in between leaves nothing unknown.
    mine.push(ep);
    await this.store.save();
    try {
      await ip.addVeth({ hostIf: ep.hostIf, bridge: n.Bridge, netns: netnsName(c.id), ifName: ep.ifName, mac: ep.mac, address: `${ep.ip}/${ep.prefixLen}`, gateway: !n.Internal && !hasRoute ? ep.gateway : undefined });
    } catch (err) {
      this.state.endpoints[c.id] = mine.filter((e) => e !== ep);
      await this.store.save();
      throw err;
    }
    return ep;
  }

  private async publish(c: NetContainer, ep: Endpoint, requests: PortRequest[]): Promise<void> {
    const live: PortMapping[] = [];
    const proxies: Proxy[] = [];
    this.proxies.set(c.id, proxies);
    const [lo, hi] = ephemeralRange();
    for (const r of requests) {
      const candidates: number[] = [];
      if (r.hostPort === 0) {
        const span = hi - lo + 1;
        for (let i = 0; i < span; i++) candidates.push(lo + ((this.nextEphemeral + i) % span));
      } else for (let p = r.hostPort; p <= r.hostPortEnd; p++) candidates.push(p);
      let done = false;
      let lastErr: unknown;
      for (const port of candidates) {
        try {
          proxies.push(await startProxy({ proto: r.proto, hostIp: r.hostIp, hostPort: port, containerIp: ep.ip, containerPort: r.containerPort }));
          live.push({ proto: r.proto, containerPort: r.containerPort, hostIp: r.hostIp, hostPort: port });
          if (r.hostPort === 0) this.nextEphemeral = port - lo + 1;
          done = true;
          break;
        } catch (err) {
          lastErr = err;
          if (!(err instanceof PortInUse)) break;
        }
      }
      if (!done) {
        const detail = lastErr instanceof PortInUse && r.hostPort === 0 ? 'no free host port in the ephemeral range' : messageOf(lastErr);
        throw new SystemError(`driver failed programming external connectivity on endpoint ${c.name} (${ep.endpointId}): ${detail}`);
      }
    }
    this.state.ports[c.id] = live;
  }

  /** After a daemon restart with live-restore: the relays of a container that kept running. */
  private async startProxies(id: string): Promise<void> {
    const ep = this.portEndpoint(id);
    const ports = this.state.ports[id] ?? [];
    if (!ep || !ports.length) return;
    const list: Proxy[] = [];
    this.proxies.set(id, list);
    for (const p of ports) list.push(await startProxy({ ...p, containerIp: ep.ip }));
  }

  /** The container stopped (or never started): everything it had on the host goes. */
  async tearDown(id: string): Promise<void> {
    await this.exclusive(async () => {
      if (await this.release(id)) await this.applyRules();
    });
  }

  /** Frees what a container had; true when it had published ports (the rules change). */
  private async release(id: string): Promise<boolean> {
    const hadPorts = (this.state.ports[id]?.length ?? 0) > 0;
    const had = hadPorts || id in this.state.endpoints || id in this.state.ports;
    for (const p of this.proxies.get(id) ?? []) p.close();
    this.proxies.delete(id);
    await ip.deleteNetns(netnsName(id));
    for (const e of this.state.endpoints[id] ?? []) {
      await ip.deleteLink(e.hostIf).catch(() => undefined);
      this.publishEndpoint('disconnect', e.network, id);
    }
    delete this.state.endpoints[id];
    delete this.state.ports[id];
    if (had) await this.store.save();
    return hadPorts;
  }

  /** The container is gone for good. */
  async removed(id: string): Promise<void> {
    await this.exclusive(async () => {
      const hadPorts = await this.release(id);
      if (id in this.state.attachments) {
        delete this.state.attachments[id];
        await this.store.save();
      }
      if (hadPorts) await this.applyRules();
    });
  }

  /** Docker's network events for a container joining or leaving (start, stop, connect, disconnect). */
  private publishEndpoint(action: 'connect' | 'disconnect', network: string, container: string): void {
    const n = this.network(network);
    if (n) this.o.events?.publish('network', action, n.Id, { container, name: n.Name, type: n.Driver });
  }

  /** NetworkSettings as docker inspect shows it. */
  settings(c: NetContainer): Record<string, unknown> {
    const networks = this.endpointSettings(c);
    const eps = c.running ? this.state.endpoints[c.id] ?? [] : [];
    const bridge = this.state.networks.find((n) => n.Predefined && n.Name === 'bridge');
    const onBridge = eps.find((e) => e.network === bridge?.Id);
    return {
      Bridge: '',
      SandboxID: c.running && !c.networkMode.startsWith('container:') ? this.sandboxId(c.id) : '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: c.running ? portMap(c.exposedPorts, this.state.ports[c.id] ?? []) : {},
      SandboxKey: c.running && c.networkMode !== 'host' && !c.networkMode.startsWith('container:') ? ip.netnsPath(netnsName(c.id)) : '',
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: onBridge?.endpointId ?? '',
      Gateway: onBridge?.gateway ?? '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: onBridge?.ip ?? '',
      IPPrefixLen: onBridge?.prefixLen ?? 0,
      IPv6Gateway: '',
      MacAddress: onBridge?.mac ?? '',
      Networks: networks,
    };
  }

  private sandboxId(id: string): string {
    return id.split('').reverse().join('');
  }

  private endpointSettings(c: NetContainer): Record<string, EndpointSettings> {
    const out: Record<string, EndpointSettings> = {};
    const blank = (networkId: string): EndpointSettings => ({
      IPAMConfig: null,
      Links: null,
      Aliases: null,
      NetworkID: networkId,
      EndpointID: '',
      Gateway: '',
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      MacAddress: '',
      DriverOpts: null,
    });
    if (c.networkMode === 'host' || c.networkMode === 'none') {
      const n = this.state.networks.find((x) => x.Predefined && x.Name === c.networkMode);
      out[c.networkMode] = blank(n?.Id ?? '');
      return out;
    }
    if (c.networkMode.startsWith('container:')) return out;
    const eps = c.running ? this.state.endpoints[c.id] ?? [] : [];
    for (const a of this.state.attachments[c.id] ?? this.attachmentsOfQuiet(c)) {
      const n = this.network(a.network);
      const s = blank(n?.Id ?? '');
      if (a.ipv4) s.IPAMConfig = { IPv4Address: a.ipv4 };
      const userNet = n && !(n.Predefined && n.Name === 'bridge');
      if (userNet) s.Aliases = [...a.aliases, c.id.slice(0, 12)];
      const e = eps.find((x) => x.network === a.network);
      if (e) Object.assign(s, { EndpointID: e.endpointId, Gateway: e.gateway, IPAddress: e.ip, IPPrefixLen: e.prefixLen, MacAddress: e.mac });
      out[n?.Name ?? a.network] = s;
    }
    return out;
  }

  private attachmentsOfQuiet(c: NetContainer): Attachment[] {
    const b = this.state.networks.find((n) => n.Predefined && n.Name === 'bridge');
    return ['default', 'bridge'].includes(c.networkMode) && b ? [{ network: b.Id, aliases: [] }] : [];
  }

  /** `Ports` and `NetworkSettings` of GET /containers/json. */
  summary(c: NetContainer): { Ports: ReturnType<typeof portList>; NetworkSettings: { Networks: Record<string, EndpointSettings> } } {
    return { Ports: portList(c.exposedPorts, c.running ? this.state.ports[c.id] ?? [] : []), NetworkSettings: { Networks: this.endpointSettings(c) } };
  }

  /** The networks a container is on (for the `network` filter of ps). */
  networksOf(id: string): string[] {
    return (this.state.attachments[id] ?? []).flatMap((a) => {
      const n = this.network(a.network);
      return n ? [n.Name, n.Id] : [a.network];
    });
  }

  // ---- the networks API ------------------------------------------------------------

  private resource(n: NetworkRecord, withContainers: boolean): NetworkResource {
    const containers: NetworkResource['Containers'] = {};
    if (withContainers) {
      for (const [cid, eps] of Object.entries(this.state.endpoints)) {
        const e = eps.find((x) => x.network === n.Id);
        if (!e) continue;
        containers[cid] = { Name: this.dir?.get(cid)?.name ?? '', EndpointID: e.endpointId, MacAddress: e.mac, IPv4Address: `${e.ip}/${e.prefixLen}`, IPv6Address: '' };
      }
    }
    return {
      Name: n.Name,
      Id: n.Id,
      Created: n.Created,
      Scope: 'local',
      Driver: n.Driver,
      EnableIPv6: false,
      IPAM: { Driver: n.IPAM.Driver, Options: n.IPAM.Options, Config: n.IPAM.Config.map((c) => ({ ...c })) },
      Internal: n.Internal,
      Attachable: n.Attachable,
      Ingress: false,
      ConfigFrom: { Network: '' },
      ConfigOnly: false,
      Containers: containers,
      Options: n.Options,
      Labels: n.Labels,
    };
  }

  list(filters: Map<string, string[]>): NetworkResource[] {
    for (const k of filters.keys()) if (!['name', 'id', 'label', 'driver', 'type', 'scope', 'dangling'].includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    for (const t of filters.get('type') ?? []) if (t !== 'custom' && t !== 'builtin') throw new InvalidParameter(`invalid filter: 'type'='${t}'`);
    return this.state.networks
      .filter((n) => {
        const f = (k: string) => filters.get(k) ?? [];
        if (f('name').length && !f('name').some((v) => n.Name.includes(v))) return false;
        if (f('id').length && !f('id').some((v) => n.Id.startsWith(v))) return false;
        if (f('driver').length && !f('driver').includes(n.Driver)) return false;
        if (f('scope').length && !f('scope').includes('local')) return false;
        if (f('type').length && !f('type').includes(n.Predefined ? 'builtin' : 'custom')) return false;
        if (!f('label').every((l) => labelMatches(n.Labels, l))) return false;
        if (f('dangling').length) {
          const dangling = !n.Predefined && !this.inUse(n);
          if (!f('dangling').some((v) => (v === 'true' || v === '1') === dangling)) return false;
        }
        return true;
      })
      .map((n) => this.resource(n, false));
  }

  inspect(ref: string): NetworkResource {
    return this.resource(this.findNetwork(ref), true);
  }

  private inUse(n: NetworkRecord): boolean {
    return Object.values(this.state.endpoints).some((eps) => eps.some((e) => e.network === n.Id));
  }

  async create(body: Record<string, unknown>): Promise<{ Id: string; Warning: string }> {
    return this.exclusive(async () => {
      const name = body.Name;
      if (typeof name !== 'string' || name === '') throw new InvalidParameter('network name must not be empty');
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new InvalidParameter(`invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      if (PREDEFINED.includes(name)) throw new Forbidden(`${name} is a pre-defined network and cannot be created`);
      const driver = (body.Driver as string | undefined) || 'bridge';
      if (driver !== 'bridge') throw new InvalidParameter(`network driver "${driver}" is not supported by skiff: only "bridge" networks can be created`);
      if (body.EnableIPv6 === true) throw new InvalidParameter('IPv6 networks are not supported by skiff (EnableIPv6 must be false)');
      if (body.ConfigOnly === true) throw new InvalidParameter('config-only networks are not supported by skiff');
      if (this.state.networks.some((n) => n.Name === name)) throw new Conflict(`network with name ${name} already exists`);
      const ipam = (body.IPAM ?? {}) as { Driver?: string; Config?: Array<Record<string, unknown>> | null; Options?: Record<string, string> | null };
      if (typeof ipam !== 'object' || Array.isArray(ipam)) throw new InvalidParameter('invalid IPAM: expected an object');
      if (ipam.Config !== undefined && ipam.Config !== null && !(Array.isArray(ipam.Config) && ipam.Config.every((c) => typeof c === 'object' && c !== null && !Array.isArray(c)))) {
        throw new InvalidParameter('invalid IPAM.Config: expected a list of objects');
      }
      for (const [k, v] of [['Options', body.Options], ['Labels', body.Labels], ['IPAM.Options', ipam.Options]] as const) {
        if (v !== undefined && v !== null && !(typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'))) {
          throw new InvalidParameter(`invalid ${k}: expected an object of strings`);
        }
      }
      if (ipam.Driver !== undefined && typeof ipam.Driver !== 'string') throw new InvalidParameter('invalid IPAM.Driver: expected a string');
      if (body.Driver !== undefined && body.Driver !== null && typeof body.Driver !== 'string') throw new InvalidParameter('invalid Driver: expected a string');
      if (ipam.Driver && ipam.Driver !== 'default') throw new InvalidParameter(`IPAM driver "${ipam.Driver}" is not supported by skiff`);
      const options = { ...((body.Options ?? {}) as Record<string, string>) };
      const labels = { ...((body.Labels ?? {}) as Record<string, string>) };
      const id = newId();
      const bridgeName = options[BRIDGE_NAME_OPT] || `br-${id.slice(0, 12)}`;
      if (bridgeName.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridgeName)) throw new InvalidParameter(`invalid bridge name "${bridgeName}"`);
      if (this.state.networks.some((n) => n.Bridge === bridgeName)) throw new Conflict(`bridge name ${bridgeName} is already used by another network`);
      const configs = (ipam.Config ?? []).filter((c) => c && (c.Subnet || c.Gateway || c.IPRange));
      for (const c of configs) if (String(c.Subnet ?? '').includes(':')) throw new InvalidParameter('IPv6 subnets are not supported by skiff');
      if (configs.length > 1) throw new InvalidParameter('skiff networks take one IPv4 address pool');
      const taken = this.state.networks.flatMap((n) => n.IPAM.Config.map((c) => parseCidr(c.Subnet)));
      const hostRoutes = await this.hostRoutes();
      let conf: IpamConfig;
      const c = configs[0];
      if (c?.Subnet) {
        const s = parseCidr(String(c.Subnet));
        if (s.prefix > 30) throw new InvalidParameter(`invalid subnet ${c.Subnet}: too small for a bridge network`);
        if (taken.some((t) => overlaps(t, s))) throw new Forbidden('Pool overlaps with other one on this address space');
        const route = hostRoutes.find((r) => overlaps(r.cidr, s));
        if (route) throw new Forbidden(`Pool overlaps with a route of the host (${route.text}): choose another subnet`);
        const gw = c.Gateway ? parseIp(String(c.Gateway)) : s.base + 1;
        if (!contains(s, gw)) throw new InvalidParameter(`Invalid gateway ${String(c.Gateway)}: It does not belong to subnet ${formatCidr(s)}`);
        conf = { Subnet: formatCidr(s), Gateway: formatIp(gw) };
        if (c.IPRange) {
          const r = parseCidr(String(c.IPRange));
          if (!contains(s, r.base) || r.prefix < s.prefix) throw new InvalidParameter(`Invalid IP range ${String(c.IPRange)}: It does not belong to subnet ${formatCidr(s)}`);
          conf.IPRange = formatCidr(r);
        }
        const aux = (c.AuxiliaryAddresses ?? c.AuxAddress) as Record<string, string> | undefined;
        if (aux && Object.keys(aux).length) {
          for (const [k, v] of Object.entries(aux)) if (!contains(s, parseIp(v))) throw new InvalidParameter(`Invalid auxiliary address ${k}=${v}: It does not belong to subnet ${formatCidr(s)}`);
          conf.AuxiliaryAddresses = { ...aux };
        }
      } else {
        if (c?.Gateway || c?.IPRange) throw new InvalidParameter('a gateway or IP range needs a subnet');
        const pool = freePool([...taken, ...hostRoutes.map((r) => r.cidr)]);
        if (!pool) throw new Forbidden('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
        conf = { Subnet: formatCidr(pool), Gateway: formatIp(pool.base + 1) };
      }
      const rec: NetworkRecord = {
        Id: id,
        Name: name,
        Created: new Date().toISOString(),
        Driver: 'bridge',
        Internal: body.Internal === true,
        Attachable: body.Attachable === true,
        Labels: labels,
        Options: options,
        IPAM: { Driver: 'default', Options: ipam.Options ?? {}, Config: [conf] },
        Bridge: bridgeName,
      };
      this.state.networks.push(rec);
      await this.store.save();
      try {
        await this.bringUp(rec);
        await this.applyRules();
      } catch (err) {
        await this.destroy(rec).catch(() => undefined);
        throw err;
      }
      this.o.events?.publish('network', 'create', id, { name, type: 'bridge' });
      return { Id: id, Warning: '' };
    });
  }

  private async destroy(n: NetworkRecord): Promise<void> {
    this.responders.get(n.Id)?.close();
    this.responders.delete(n.Id);
    // The device first: a crash in between leaves the network, which the next start brings back up.
    if (n.Bridge) await ip.deleteLink(n.Bridge);
    this.state.networks = this.state.networks.filter((x) => x !== n);
    await this.store.save();
    await this.applyRules();
  }

  async remove(ref: string): Promise<void> {
    await this.exclusive(async () => {
      const n = this.findNetwork(ref);
      if (n.Predefined) throw new Forbidden(`${n.Name} is a pre-defined network and cannot be removed`);
      if (this.inUse(n)) throw new Conflict(`error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
      await this.destroy(n);
      this.o.events?.publish('network', 'destroy', n.Id, { name: n.Name, type: n.Driver });
    });
  }

  async prune(filters: Map<string, string[]>): Promise<{ NetworksDeleted: string[] | null }> {
    for (const k of filters.keys()) if (!['until', 'label'].includes(k)) throw new InvalidParameter(`invalid filter '${k}'`);
    return this.exclusive(async () => {
      const deleted: string[] = [];
      const until = filters.get('until')?.[0];
      const limit = until ? (/^\d+(\.\d+)?$/.test(until) ? Number(until) * 1000 : Date.parse(until)) : undefined;
      for (const n of [...this.state.networks]) {
        if (n.Predefined || this.inUse(n)) continue;
        if (limit !== undefined && Date.parse(n.Created) >= limit) continue;
        if ((filters.get('label') ?? []).some((l) => !labelMatches(n.Labels, l))) continue;
        await this.destroy(n);
        this.o.events?.publish('network', 'destroy', n.Id, { name: n.Name, type: n.Driver });
        deleted.push(n.Name);
      }
      return { NetworksDeleted: deleted.length ? deleted : null };
    });
  }

  async connect(ref: string, body: Record<string, unknown>): Promise<void> {
    const containerRef = body.Container;
    if (typeof containerRef !== 'string' || !containerRef) throw new InvalidParameter('Container is required');
    const conf = endpointConfig(body.EndpointConfig, 'EndpointConfig') ?? {};
    await this.exclusive(async () => {
      const n = this.findNetwork(ref);
      const c = this.containers.find(containerRef);
      if (['host', 'none'].includes(c.networkMode) || c.networkMode.startsWith('container:')) {
        throw new Forbidden('container sharing network namespace with another container or host cannot be connected to any other network');
      }
      if (n.Driver !== 'bridge') throw new Forbidden(`container cannot be disconnected from host network or connected to host network`);
      const atts = this.attachmentsOf(c);
      if (atts.some((a) => a.network === n.Id)) throw new Forbidden(`endpoint with name ${c.name} already exists in network ${n.Name}`);
      const att = attachmentOf(n.Id, n, conf);
      if (c.running) await this.connectEndpoint(c, att);
      atts.push(att);
      await this.store.save();
      this.publishEndpoint('connect', n.Id, c.id);
    });
  }

  async disconnect(ref: string, body: Record<string, unknown>): Promise<void> {
    const containerRef = body.Container;
    if (typeof containerRef !== 'string' || !containerRef) throw new InvalidParameter('Container is required');
    await this.exclusive(async () => {
      const n = this.findNetwork(ref);
      let c: NetContainer;
      try {
        c = this.containers.find(containerRef);
      } catch (err) {
        if (body.Force === true) return;
        throw err;
      }
      if (n.Driver !== 'bridge') throw new Forbidden('container cannot be disconnected from host network or connected to host network');
      const atts = this.attachmentsOf(c);
      if (!atts.some((a) => a.network === n.Id)) throw new Forbidden(`container ${c.id} is not connected to network ${n.Name}`);
      const eps = this.state.endpoints[c.id] ?? [];
      const ep = eps.find((e) => e.network === n.Id);
      if (ep) {
        await ip.deleteNsLink(netnsName(c.id), ep.ifName);
        await ip.deleteLink(ep.hostIf).catch(() => undefined);
        const rest = eps.filter((e) => e !== ep);
        this.state.endpoints[c.id] = rest;
        // The way out moves to another network when the one that had it goes.
        const next = rest.find((e) => !this.network(e.network)?.Internal);
        if (next && !n.Internal) await ip.setDefaultRoute(netnsName(c.id), next.gateway, next.ifName).catch(() => undefined);
        const ports = this.state.ports[c.id];
        if (ports && eps[0] === ep) {
          // Published ports followed the first endpoint: they are gone with it.
          for (const p of this.proxies.get(c.id) ?? []) p.close();
          this.proxies.delete(c.id);
          delete this.state.ports[c.id];
        }
      }
      this.state.attachments[c.id] = atts.filter((a) => a.network !== n.Id);
      await this.store.save();
      await this.applyRules();
      this.publishEndpoint('disconnect', n.Id, c.id);
    });
  }
}
