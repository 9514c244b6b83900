// Docker's streaming JSON messages (pull, push, load, delta progress): one
// JSON object per line. Operations emit typed events; this module is the only
// place that knows the wire shape, for the daemon (encode) and the CLI (decode).
import type { ServerResponse } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import { messageOf } from '../errors.js';

export interface JsonMessage {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  stream?: string;
  aux?: unknown;
  error?: string;
  errorDetail?: { message: string; code?: number };
}

/** Decimal units as Docker's HumanSize prints them ("2.794MB"; `docker images` uses 3 digits). */
export function humanSize(bytes: number, precision = 4): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(precision))}${units[i]}`;
}

/** The bar the docker CLI shows verbatim: `[=====>     ]  1.2MB/3.4MB`. */
export function progressBar(current: number, total: number | undefined, width = 50): string {
  if (!total || total <= 0) return `${humanSize(current).padStart(8)}`;
  const filled = Math.min(width, Math.floor((current / total) * width));
  const bar = filled >= width ? '='.repeat(width) + '>' : '='.repeat(filled) + '>' + ' '.repeat(width - filled - 1);
  return `[${bar}] ${humanSize(current).padStart(8)}/${humanSize(total)}`;
}

export function progressMessage(id: string, status: string, current: number, total?: number): JsonMessage {
  return {
    status,
    progressDetail: total === undefined ? { current } : { current, total },
    progress: progressBar(current, total),
    id,
  };
}

export function errorMessage(message: string): JsonMessage {
  return { errorDetail: { message }, error: message };
}

/** Writes messages to a response, waiting for the client when it reads slowly. */
export class JsonMessageWriter {
  constructor(private readonly out: Writable) {}

  async write(msg: JsonMessage): Promise<void> {
    if (this.out.destroyed) return;
    if (!this.out.write(JSON.stringify(msg) + '\r\n')) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.out.off('drain', done);
          this.out.off('close', done);
          resolve();
        };
        this.out.on('drain', done);
        this.out.on('close', done);
      });
    }
  }

  /** A mid-stream failure: the CLI prints it and exits 1. */
  error(message: string): Promise<void> {
    return this.write(errorMessage(message));
  }
}

/** Splits a byte stream into JSON messages; used by the CLI. */
export async function* readJsonMessages(input: Readable): AsyncGenerator<JsonMessage> {
  let buf = '';
  for await (const chunk of input) {
    buf += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line !== '') yield JSON.parse(line) as JsonMessage;
    }
  }
  if (buf.trim() !== '') yield JSON.parse(buf) as JsonMessage;
}

/**
 * A progress response of JSON lines, written in order with backpressure.
 * Lazy (the default): the 200 goes out with the first line, so an error
 * before it is a real status code (moby's Flushed()). Eager: at once.
 */
export class JsonLineStream {
  private readonly out: JsonMessageWriter;
  private queue = Promise.resolve();
  constructor(
    private readonly res: ServerResponse,
    opts: { eager?: boolean } = {},
  ) {
    this.out = new JsonMessageWriter(res);
    if (opts.eager) this.head();
  }

  private head(): void {
    if (this.res.headersSent) return;
    this.res.writeHead(200, { 'Content-Type': 'application/json' });
    this.res.flushHeaders();
  }

  write(m: JsonMessage): void {
    this.head();
    this.queue = this.queue.then(() => this.out.write(m));
  }

  /** Ends the response; an error after the 200 becomes the stream's last line (the CLI prints it and exits 1). */
  async end(err?: unknown): Promise<void> {
    await this.queue;
    if (err !== undefined) {
      if (!this.res.headersSent) throw err;
      await this.out.error(messageOf(err));
    }
    this.res.end();
  }
}
