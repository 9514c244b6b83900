// The userland proxy (docker-proxy's job, inside the daemon): it holds the
// published host port — so a port already in use fails the start — and
// relays loopback traffic, which DNAT rules cannot reach, to the container.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { errnoCode } from '../errors.js';

export interface ProxyTarget {
  proto: 'tcp' | 'udp';
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

const UDP_IDLE_MS = 90_000;

export class PortInUse extends Error {
  constructor(readonly hostIp: string, readonly hostPort: number) {
    super(`Bind for ${hostIp}:${hostPort} failed: port is already allocated`);
  }
}

/** A running relay; close() frees the port. */
export interface Proxy {
  close(): void;
}

export async function startProxy(t: ProxyTarget): Promise<Proxy> {
  return t.proto === 'tcp' ? startTcp(t) : startUdp(t);
}

async function startTcp(t: ProxyTarget): Promise<Proxy> {
  // Half-closes pass through: a client that ends its request still gets the whole answer.
  const open = new Set<Socket>();
  const server: Server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    const upstream = connect({ port: t.containerPort, host: t.containerIp, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    upstream.on('connect', () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });
  await listen(t, (cb) => server.once('error', cb), () => new Promise((res) => server.listen({ port: t.hostPort, host: t.hostIp, exclusive: true }, () => res())));
  return {
    close: () => {
      server.close();
      for (const s of open) s.destroy();
    },
  };
}

async function startUdp(t: ProxyTarget): Promise<Proxy> {
  const sock: UdpSocket = createSocket('udp4');
  const peers = new Map<string, { up: UdpSocket; timer: NodeJS.Timeout }>();
  sock.on('message', (msg, r) => {
    const key = `${r.address}:${r.port}`;
    let p = peers.get(key);
    if (!p) {
      const up = createSocket('udp4');
      up.on('message', (reply) => sock.send(reply, r.port, r.address));
      up.on('error', () => undefined);
      p = { up, timer: setTimeout(() => undefined, 0) };
      peers.set(key, p);
    }
    clearTimeout(p.timer);
    const peer = p;
    p.timer = setTimeout(() => {
      peer.up.close();
      peers.delete(key);
    }, UDP_IDLE_MS);
    p.up.send(msg, t.containerPort, t.containerIp);
  });
  await listen(t, (cb) => sock.once('error', cb), () => new Promise((res) => sock.bind({ port: t.hostPort, address: t.hostIp, exclusive: true }, () => res())));
  sock.on('error', () => undefined);
  return {
    close: () => {
      for (const p of peers.values()) {
        clearTimeout(p.timer);
        p.up.close();
      }
      sock.close();
    },
  };
}

async function listen(t: ProxyTarget, onError: (cb: (err: Error) => void) => void, bind: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    onError((err) => reject(errnoCode(err) === 'EADDRINUSE' ? new PortInUse(t.hostIp, t.hostPort) : err));
    bind().then(resolve, reject);
  });
}
