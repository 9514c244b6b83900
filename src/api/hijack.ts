// Turning an API request into a raw duplex stream, as attach and exec start
// need. With `Connection: Upgrade` the answer is moby's exact 101 bytes (the
// docker CLI accepts nothing else); without it, a 200 raw-stream response
// whose request body is stdin (dockerode's non-hijack attach).
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { RequestContext } from './context.js';

export const RAW_STREAM = 'application/vnd.docker.raw-stream';

export interface Hijacked {
  /** Client → daemon bytes (stdin); ends when the client half-closes. */
  input: Readable;
  /** Daemon → client bytes. */
  output: Writable;
  /** Flushes and closes the connection (the process has exited). */
  close(): void;
  /** Resolves when the client went away or close() was called. */
  closed: Promise<void>;
}

export async function hijack(ctx: RequestContext, extraHeaders: Record<string, string> = {}): Promise<Hijacked> {
  const up = ctx.upgrade;
  if (up) {
    // dockerode sends a JSON body along with the Upgrade; it is not stdin.
    await ctx.body();
    const socket = up.socket;
    const res = ctx.res;
    const common = res.getHeaderNames().map((name) => [canonical(name), String(res.getHeader(name))] as const);
    const lines = [
      'HTTP/1.1 101 UPGRADED',
      `Content-Type: ${RAW_STREAM}`,
      'Connection: Upgrade',
      'Upgrade: tcp',
      ...common.map(([k, v]) => `${k}: ${v}`),
      ...Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}`),
    ];
    // The ServerResponse made for this socket must never write now.
    res.detachSocket(socket as unknown as import('node:net').Socket);
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    const input = new PassThrough();
    if (up.head.length > 0) input.write(up.head);
    socket.pipe(input);
    socket.resume();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A half-close from the client is stdin EOF, not a hang-up: keep writing.
    return {
      input,
      output: socket,
      close: () => {
        socket.end();
      },
      closed,
    };
  }
  const res = ctx.res;
  res.writeHead(200, { 'Content-Type': RAW_STREAM, ...extraHeaders });
  res.flushHeaders();
  const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
  return {
    input: ctx.req,
    output: res,
    close: () => {
      res.end();
    },
    closed,
  };
}

/** Go's canonical header form (api-version → Api-Version), as moby writes them. */
function canonical(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}
