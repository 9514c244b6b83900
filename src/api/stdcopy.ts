// Docker's multiplexed stream (stdcopy): when a container has no TTY, stdout
// and stderr share one connection as frames of
// [stream, 0, 0, 0, size uint32 big-endian] + payload. Stream 3 carries an
// error from the daemon. Used by attach, exec start and logs; the CLI demuxes.
import type { Readable, Writable } from 'node:stream';

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const SYSTEMERR = 3;
export type StreamId = 0 | 1 | 2 | 3;

const HEADER = 8;
/** Frames are capped so one huge write does not become one huge allocation. */
const MAX_FRAME = 32 * 1024;

export function frameHeader(stream: StreamId, size: number): Buffer {
  const h = Buffer.alloc(HEADER);
  h[0] = stream;
  h.writeUInt32BE(size, 4);
  return h;
}

/** Writes `payload` as one or more frames; resolves when the sink can take more. */
export async function writeFrames(out: Writable, stream: StreamId, payload: Buffer): Promise<void> {
  for (let off = 0; off < payload.length; off += MAX_FRAME) {
    const part = payload.subarray(off, off + MAX_FRAME);
    out.write(frameHeader(stream, part.length));
    if (!out.write(part) && !out.destroyed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
    }
  }
}

export interface Frame {
  stream: StreamId;
  payload: Buffer;
}

/** Parses frames from a byte stream; a truncated or invalid frame is an error. */
export async function* demux(input: Readable): AsyncGenerator<Frame> {
  let buf: Buffer = Buffer.alloc(0);
  for await (const chunk of input) {
    buf = buf.length === 0 ? (chunk as Buffer) : Buffer.concat([buf, chunk as Buffer]);
    while (buf.length >= HEADER) {
      const stream = buf[0] as number;
      if (stream > 3) throw new Error(`unrecognized input header: ${stream}`);
      const size = buf.readUInt32BE(4);
      if (buf.length < HEADER + size) break;
      yield { stream: stream as StreamId, payload: buf.subarray(HEADER, HEADER + size) };
      buf = buf.subarray(HEADER + size);
    }
  }
  if (buf.length > 0) throw new Error('unexpected EOF in multiplexed stream');
}
