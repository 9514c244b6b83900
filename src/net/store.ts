// skiff's network state on disk: the networks, what each container is
// connected to, and what is live (addresses, veths, published ports) so a
// restarted daemon knows what it had made. One JSON file, replaced durably;
// recovery at open drops the temp files an interrupted write left.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, SystemError } from '../errors.js';
import { isDurableTemp, writeFileDurable } from '../store/durable.js';

export interface IpamConfig {
  Subnet: string;
  Gateway: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface NetworkRecord {
  Id: string;
  Name: string;
  Created: string;
  /** bridge, host or null (none). */
  Driver: string;
  Internal: boolean;
  Attachable: boolean;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfig[] };
  /** The bridge device (bridge driver). */
  Bridge?: string;
  /** bridge, host, none: cannot be removed. */
  Predefined?: boolean;
}

/** A container's wish to be on a network (kept while it is stopped). */
export interface Attachment {
  /** The network's id. */
  network: string;
  aliases: string[];
  /** IPAMConfig.IPv4Address, if the user chose one. */
  ipv4?: string;
}

/** A live connection: a veth in the container's namespace with an address. */
export interface Endpoint {
  network: string;
  endpointId: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  hostIf: string;
  ifName: string;
}

export interface PortMapping {
  proto: 'tcp' | 'udp';
  containerPort: number;
  hostIp: string;
  hostPort: number;
}

export interface NetState {
  networks: NetworkRecord[];
  attachments: Record<string, Attachment[]>;
  endpoints: Record<string, Endpoint[]>;
  ports: Record<string, PortMapping[]>;
}

export class NetStore {
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    readonly state: NetState,
  ) {}

  static async open(dataRoot: string): Promise<NetStore> {
    const dir = join(dataRoot, 'network');
    await fs.mkdir(dir, { recursive: true });
    for (const n of await fs.readdir(dir)) if (isDurableTemp(n)) await fs.rm(join(dir, n), { force: true });
    const file = join(dir, 'state.json');
    let state: NetState = { networks: [], attachments: {}, endpoints: {}, ports: {} };
    try {
      state = { ...state, ...(JSON.parse(await fs.readFile(file, 'utf8')) as Partial<NetState>) };
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw new SystemError(`reading ${file}: ${(err as Error).message}`);
    }
    return new NetStore(file, state);
  }

  /** Writes the current state; writes are serialised, each one the whole state as it is now. */
  save(): Promise<void> {
    const next = this.chain.then(() => writeFileDurable(this.file, JSON.stringify(this.state)));
    this.chain = next.catch(() => undefined);
    return next;
  }
}
