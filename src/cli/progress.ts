// Printing a JSON message stream (pull, push, load) as the docker CLI does:
// per-id lines redrawn in place on a terminal, one line per state change otherwise.
import type { Readable } from 'node:stream';
import { readJsonMessages } from '../api/jsonstream.js';
import { EXIT, type CommandContext } from './command.js';

/** Returns the exit code: failure when the stream carries an error. */
export async function printJsonMessages(ctx: CommandContext, res: Readable, opts: { quiet: boolean }): Promise<number> {
  const tty = (ctx.out as NodeJS.WriteStream).isTTY === true && !opts.quiet;
  const lines = new Map<string, string>();
  let drawn = 0;
  for await (const m of readJsonMessages(res)) {
    if (m.errorDetail || m.error) {
      ctx.err.write(`${m.errorDetail?.message ?? m.error}\n`);
      return EXIT.failure;
    }
    if (m.stream !== undefined) {
      ctx.out.write(m.stream);
      continue;
    }
    if (opts.quiet || m.aux !== undefined) continue;
    if (m.id === 'Total') continue;
    const text = m.id ? `${m.id}: ${m.status ?? ''}${tty && m.progress ? ' ' + m.progress : ''}` : (m.status ?? '');
    if (!tty) {
      // Plain output: one line per state change, no progress bars.
      if (m.progressDetail?.current !== undefined) continue;
      ctx.out.write(text + '\n');
      continue;
    }
    if (m.id) {
      lines.set(m.id, text);
      // Redraw the block of per-layer lines in place.
      if (drawn > 0) ctx.out.write(`\x1b[${drawn}A`);
      for (const l of lines.values()) ctx.out.write(`\x1b[2K${l}\n`);
      drawn = lines.size;
    } else {
      ctx.out.write(text + '\n');
      lines.clear();
      drawn = 0;
    }
  }
  return EXIT.ok;
}
