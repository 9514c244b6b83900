// What the network service needs to know about a container, and the shapes
// it answers the API with.
import type { DnsSettings } from './files.js';
import type { PortBinding } from './ports.js';

export interface NetConfig {
  /** The default bridge's device ('none': no default bridge). */
  bridge: string;
  /** The default bridge's gateway address and prefix ("172.20.0.1/16"). */
  bip: string | undefined;
  /** Where default-bridge containers get their addresses. */
  fixedCidr: string | undefined;
  iptables: boolean;
  ipForward: boolean;
  dns: string[];
  dnsSearch: string[];
  dnsOpts: string[];
}

export interface NetContainer {
  id: string;
  /** Without the leading slash. */
  name: string;
  running: boolean;
  networkMode: string;
  hostname: string;
  domainname: string;
  exposedPorts: Record<string, unknown> | null | undefined;
  portBindings: Record<string, PortBinding[] | null> | null | undefined;
  publishAll: boolean;
  dns: DnsSettings;
  extraHosts: string[];
  hostsPath: string;
  resolvPath: string;
}

/** NetworkingConfig.EndpointsConfig of a create body. */
export type EndpointsConfig = Record<string, { Aliases?: string[] | null; IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } | null } | null>;

/** Which settings a create body gives that a `container:` network mode cannot have. */
export interface CreateAsked {
  hostname: boolean;
  dns: boolean;
  extraHosts: boolean;
  ports: boolean;
}

/** How the network service finds containers (the container service answers). */
export interface ContainerDirectory {
  /** By id, name or id prefix; throws NotFound. */
  find(ref: string): NetContainer;
  get(id: string): NetContainer | undefined;
  all(): NetContainer[];
}

export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string } | null;
  Links: null;
  Aliases: string[] | null;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  MacAddress: string;
  DriverOpts: null;
}

export interface NetworkResource {
  Name: string;
  Id: string;
  Created: string;
  Scope: 'local';
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: Array<Record<string, unknown>> };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
}
