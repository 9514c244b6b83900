// Name resolution for user-defined networks. Docker answers at 127.0.0.11
// inside each container; Node cannot enter a namespace, so skiff listens on
// each user network's gateway address (host side of the bridge) instead and
// the containers' resolv.conf points there. Names of containers on the
// network are answered here; everything else is relayed to the host's
// resolvers, which the daemon can reach even when they are on loopback.
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import type { Logger } from '../log/logger.js';

/** What the responder asks the network service: the address of `name` for a client, or undefined. */
export type Lookup = (name: string, clientIp: string, network: string) => string | undefined;

const TYPE_A = 1;
const CLASS_IN = 1;
const FORWARD_TIMEOUT_MS = 4000;

interface Question {
  name: string;
  type: number;
  cls: number;
  /** Offset just past the question (the answer section starts there). */
  end: number;
}

/** The first question of a query, or undefined when the packet is not one skiff understands. */
export function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || (msg[2]! & 0x80) !== 0 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    if (off >= msg.length) return undefined;
    const len = msg[off]!;
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63 || off + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(off + 1, off + 1 + len).toString('latin1'));
    off += 1 + len;
  }
  if (off + 4 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off), cls: msg.readUInt16BE(off + 2), end: off + 4 };
}

/** An authoritative answer to `query`: one A record, none (NOERROR/NODATA), or an rcode. */
export function buildAnswer(query: Buffer, q: Question, ip: string | undefined, rcode = 0): Buffer {
  const head = Buffer.from(query.subarray(0, q.end));
  head[2] = 0x84 | (query[2]! & 0x01); // QR, AA, RD copied
  head[3] = 0x80 | rcode; // RA
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(ip ? 1 : 0, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  if (!ip) return head;
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(TYPE_A, 2);
  rr.writeUInt16BE(CLASS_IN, 4);
  rr.writeUInt32BE(600, 6);
  rr.writeUInt16BE(4, 10);
  ip.split('.').forEach((b, i) => (rr[12 + i] = Number(b)));
  return Buffer.concat([head, rr]);
}

/** SERVFAIL for a query that could not be relayed. */
function servfail(query: Buffer): Buffer {
  const q = parseQuestion(query);
  if (q) return buildAnswer(query, q, undefined, 2);
  const h = Buffer.from(query.subarray(0, 12));
  h[2] = 0x80 | (query[2]! & 0x01);
  h[3] = 0x82;
  return h;
}

export interface DnsOptions {
  logger: Logger;
  lookup: Lookup;
  /** The host's resolvers for names that are not containers'. */
  upstream: () => string[];
}

/** The responder of one network, on its gateway address (UDP and TCP port 53). */
export class DnsResponder {
  private udp: Socket | undefined;
  private tcp: Server | undefined;

  constructor(
    private readonly o: DnsOptions,
    readonly network: string,
    readonly address: string,
    /** Internal networks resolve their containers only. */
    private readonly forward: boolean,
  ) {}

  async start(): Promise<void> {
    const udp = createSocket({ type: 'udp4', reuseAddr: true });
    udp.on('message', (msg, rinfo) => void this.answer(msg, rinfo.address).then((out) => udp.send(out, rinfo.port, rinfo.address)).catch(() => undefined));
    udp.on('error', (err) => this.o.logger.warn('dns responder', { address: this.address, error: err.message }));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(53, this.address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.udp = udp;
    const tcp = createServer((sock) => this.serveTcp(sock));
    tcp.on('error', (err) => this.o.logger.warn('dns responder (tcp)', { address: this.address, error: err.message }));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(53, this.address, () => {
        tcp.off('error', reject);
        resolve();
      });
    }).catch((err: Error) => this.o.logger.warn('dns responder: no tcp', { address: this.address, error: err.message }));
    this.tcp = tcp;
  }

  close(): void {
    this.udp?.close();
    this.tcp?.close();
    this.udp = undefined;
    this.tcp = undefined;
  }

  private serveTcp(sock: TcpSocket): void {
    let buf = Buffer.alloc(0);
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void this.answer(Buffer.from(msg), sock.remoteAddress ?? '').then((out) => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(out.length);
          if (!sock.destroyed) sock.write(Buffer.concat([len, out]));
        });
      }
    });
  }

  private async answer(msg: Buffer, client: string): Promise<Buffer> {
    const q = parseQuestion(msg);
    if (q && q.cls === CLASS_IN) {
      const ip = this.o.lookup(q.name.replace(/\.$/, ''), client, this.network);
      // A known name: its A record, and NODATA for every other type (AAAA above all).
      if (ip !== undefined) return buildAnswer(msg, q, q.type === TYPE_A ? ip : undefined);
    }
    if (!this.forward) return q ? buildAnswer(msg, q, undefined, 3) : servfail(msg);
    return relay(msg, this.o.upstream());
  }
}

/** Asks the upstream resolvers in turn; SERVFAIL when none answers. */
async function relay(msg: Buffer, servers: string[]): Promise<Buffer> {
  for (const server of servers) {
    const out = await new Promise<Buffer | undefined>((resolve) => {
      const s = createSocket(server.includes(':') ? 'udp6' : 'udp4');
      const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS);
      let finished = false;
      const done = (b: Buffer | undefined) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        s.close();
        resolve(b);
      };
      s.on('message', (m: Buffer, r: RemoteInfo) => {
        if (r.address === server && m.length >= 2 && m.readUInt16BE(0) === msg.readUInt16BE(0)) done(m);
      });
      s.on('error', () => done(undefined));
      // Send errors (no route to that resolver) come only through the callback.
      s.send(msg, 53, server, (err) => {
        if (err) done(undefined);
      });
    });
    if (out) return out;
  }
  return servfail(msg);
}
