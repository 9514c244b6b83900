// skiff image delta BASE TARGET [-t TAG]: balenaEngine's `image delta`, a thin client of POST /images/delta.
import { readJsonMessages } from '../../api/jsonstream.js';
import { EXIT, type Command } from '../command.js';
import { str, UsageError } from '../flags.js';
import { qs, reportError } from '../format.js';

export const imageCommand: Command = {
  name: 'image',
  summary: 'Manage images (skiff image delta BASE TARGET: create a delta image)',
  usage: 'skiff image delta [OPTIONS] BASE TARGET',
  args: { min: 3, max: 3 },
  flags: [{ name: 'tag', short: 't', type: 'string', value: 'name:tag', description: 'Name and tag of the delta image' }],
  async run(ctx) {
    const [sub, base, target] = ctx.flags.args as [string, string, string];
    if (sub !== 'delta') throw new UsageError(`'${sub}' is not a skiff image command (only: delta)`, 'image');
    try {
      const res = await ctx.client().stream('POST', `/images/delta${qs({ src: base, dest: target, t: str(ctx.flags, 'tag') })}`);
      for await (const m of readJsonMessages(res)) {
        if (m.errorDetail || m.error) {
          ctx.err.write(`${m.errorDetail?.message ?? m.error}\n`);
          return EXIT.failure;
        }
        ctx.out.write(m.id ? `${m.id}: ${m.status ?? ''}\n` : `${m.status ?? ''}\n`);
      }
      return EXIT.ok;
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};
