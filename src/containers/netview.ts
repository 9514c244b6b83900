// What the network service sees of a container (net/ never reads container records itself).
import type { ContainerDirectory, CreateAsked, EndpointsConfig, NetContainer } from '../net/types.js';
import type { ContainerRecord, ContainerStore } from '../store/containers.js';

export function netView(store: ContainerStore, c: ContainerRecord): NetContainer {
  const cfg = c.Config as { Hostname?: string; Domainname?: string; ExposedPorts?: Record<string, unknown> | null };
  const hc = c.HostConfig as {
    NetworkMode?: string;
    PortBindings?: NetContainer['portBindings'];
    PublishAllPorts?: boolean;
    Dns?: string[] | null;
    DnsSearch?: string[] | null;
    DnsOptions?: string[] | null;
    ExtraHosts?: string[] | null;
  };
  const p = store.paths(c.Id);
  return {
    id: c.Id,
    name: c.Name.slice(1),
    running: c.State.Running,
    networkMode: String(hc.NetworkMode || 'default'),
    hostname: cfg.Hostname || c.Id.slice(0, 12),
    domainname: cfg.Domainname ?? '',
    exposedPorts: cfg.ExposedPorts,
    portBindings: hc.PortBindings,
    publishAll: hc.PublishAllPorts === true,
    dns: { dns: hc.Dns ?? [], search: hc.DnsSearch ?? [], options: hc.DnsOptions ?? [] },
    extraHosts: hc.ExtraHosts ?? [],
    hostsPath: p.hostsPath,
    resolvPath: p.resolvPath,
  };
}

export function containerDirectory(store: ContainerStore): ContainerDirectory {
  return {
    find: (ref) => netView(store, store.get(ref)),
    get: (id) => {
      const c = store.find(id);
      return c ? netView(store, c) : undefined;
    },
    all: () => store.list().map((c) => netView(store, c)),
  };
}

/** What a create body asks of the network: endpoints, and the settings that conflict with `container:` modes. */
export function networkRequest(body: Record<string, unknown>, hc: { Dns?: unknown; DnsSearch?: unknown; DnsOptions?: unknown; ExtraHosts?: unknown; PortBindings?: unknown; PublishAllPorts?: unknown }): { endpoints: EndpointsConfig | undefined; asked: CreateAsked } {
  const nonEmpty = (v: unknown) => (Array.isArray(v) ? v.length > 0 : typeof v === 'object' && v !== null ? Object.keys(v).length > 0 : v !== undefined && v !== null && v !== '');
  return {
    endpoints: (body.NetworkingConfig as { EndpointsConfig?: EndpointsConfig } | null | undefined)?.EndpointsConfig,
    asked: {
      hostname: nonEmpty(body.Hostname),
      dns: [hc.Dns, hc.DnsSearch, hc.DnsOptions].some(nonEmpty),
      extraHosts: nonEmpty(hc.ExtraHosts),
      ports: nonEmpty(hc.PortBindings) || hc.PublishAllPorts === true,
    },
  };
}
