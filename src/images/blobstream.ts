// A registry blob as one continuous byte stream across network drops: on an
// error the stream re-opens the blob with a Range request at the current
// offset and carries on, backing off exponentially, and gives up after
// `attempts` consecutive failures. Bytes are verified by the caller's hash,
// which keeps running across re-opens because no byte is ever repeated.
import type { Readable } from 'node:stream';
import { Unavailable } from '../errors.js';

export interface BlobOpener {
  /** Opens the blob at `offset`; a server ignoring Range answers from 0 (`offset` says where it starts). */
  open(offset: number): Promise<{ body: Readable; offset: number }>;
}

export interface ResumeOptions {
  attempts: number;
  /** First back-off; doubles per consecutive failure. */
  backoffMs: number;
  maxBackoffMs?: number;
  onRetry?: (attempt: number, delayMs: number, err: Error) => void;
  signal?: AbortSignal;
}

export async function* resumableBlob(opener: BlobOpener, opts: ResumeOptions): AsyncGenerator<Buffer> {
  let offset = 0;
  let failures = 0;
  for (;;) {
    try {
      const { body, offset: start } = await opener.open(offset);
      let skip = offset - start;
      try {
        for await (const chunk of body) {
          let c = chunk as Buffer;
          if (skip > 0) {
            // The server sent bytes we already have: drop them.
            const n = Math.min(skip, c.length);
            skip -= n;
            c = c.subarray(n);
            if (c.length === 0) continue;
          }
          offset += c.length;
          failures = 0;
          yield c;
        }
      } finally {
        body.destroy();
      }
      return;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      if (!isRetryable(err)) throw err;
      failures++;
      if (failures >= opts.attempts) {
        throw new Unavailable(`download failed after ${failures} attempts: ${(err as Error).message}`, { cause: err });
      }
      const delay = Math.min(opts.backoffMs * 2 ** (failures - 1), opts.maxBackoffMs ?? 30_000);
      opts.onRetry?.(failures, delay, err as Error);
      await sleep(delay, opts.signal);
    }
  }
}

/** Registry answers that will not change on retry (404, 401, bad digest) are final. */
function isRetryable(err: unknown): boolean {
  const kind = (err as { kind?: string }).kind;
  return kind === undefined || kind === 'unavailable' || kind === 'system';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new Unavailable('pull cancelled'));
      },
      { once: true },
    );
  });
}
