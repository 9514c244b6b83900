// Docker's streaming JSON messages (pull, push, load, delta progress): one
// JSON object per line. Operations emit typed events; this module is the only
// place that knows the wire shape, for the daemon (encode) and the CLI (decode).
import type { Readable, Writable } from 'node:stream';

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
