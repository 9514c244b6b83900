// What the network service sees of a container (net/ never reads container records itself).
import type { ContainerDirectory, NetContainer } from '../net/types.js';
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
    hostnamePath: p.hostnamePath,
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
