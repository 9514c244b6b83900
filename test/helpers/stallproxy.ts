// A pass-through HTTP proxy with one fault the fault proxy does not have: a
// stall that ends in a reset. The chosen response sends its headers and the
// first `after` body bytes, then nothing for `stallMs`, then the connection
// is reset. The daemon's own stall detector (the registry client's
// readTimeoutMs, 30 s, not configurable) is too slow for a test; this gives a
// stalled connection that ends in a bounded time. Put it in front of the
// fault proxy to keep that proxy's request log.
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface StallRule {
  match: RegExp;
  after: number;
  stallMs: number;
  times?: number;
}

export interface StallProxy {
  url: string;
  host: string;
  /** Stalls that have happened: when each began (ms since epoch) and how many bytes went out first. */
  stalls: Array<{ url: string; sent: number; at: number }>;
  addStall(rule: StallRule): void;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

export async function startStallProxy(target: string): Promise<StallProxy> {
  const upstream = new URL(target);
  const rules: Array<StallRule & { left: number }> = [];
  const stalls: StallProxy['stalls'] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const pick = (req: IncomingMessage): (StallRule & { left: number }) | undefined => {
    const r = rules.find((x) => x.left > 0 && req.method === 'GET' && x.match.test(req.url ?? ''));
    if (r) r.left--;
    return r;
  };

  const server = createServer((req, res) => {
    const rule = pick(req);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== 'host') headers[k] = v;
    headers.host = upstream.host;
    const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (ures) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ures.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(ures.statusCode ?? 502, out);
      if (!rule) {
        ures.pipe(res);
        return;
      }
      let sent = 0;
      let stopped = false;
      ures.on('data', (chunk: Buffer) => {
        if (stopped) return;
        if (sent + chunk.length < rule.after) {
          sent += chunk.length;
          res.write(chunk);
          return;
        }
        stopped = true;
        const head = chunk.subarray(0, rule.after - sent);
        sent += head.length;
        ures.destroy();
        res.write(head);
        stalls.push({ url: req.url ?? '', sent, at: Date.now() });
        const socket = res.socket;
        const t = setTimeout(() => {
          timers.delete(t);
          socket?.resetAndDestroy();
        }, rule.stallMs);
        timers.add(t);
      });
      ures.on('end', () => {
        if (!stopped) res.end();
      });
      ures.on('error', () => res.destroy());
    });
    up.on('error', (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`stall proxy: ${err.message}\n`);
      } else res.destroy();
    });
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    stalls,
    addStall(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
