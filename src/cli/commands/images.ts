// skiff pull / images / rmi / tag / check: thin clients of the image API.
import { humanSize } from '../../api/jsonstream.js';
import { printJsonMessages } from '../progress.js';
import type { DeleteItem, ImageSummary } from '../../images/types.js';
import { EXIT, type Command } from '../command.js';
import { bool, str } from '../flags.js';
import { columns, qs, reportError } from '../format.js';
import { canonicalString, parseReference, withDefaultTag } from '../../pull/reference.js';

export const pullCommand: Command = {
  name: 'pull',
  summary: 'Download an image from a registry',
  usage: 'skiff pull [OPTIONS] NAME[:TAG|@DIGEST]',
  args: { min: 1, max: 1 },
  flags: [
    { name: 'platform', type: 'string', value: 'os/arch[/variant]', description: 'Platform to pull for a multi-platform image' },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only the image reference' },
  ],
  async run(ctx) {
    const name = ctx.flags.args[0] as string;
    try {
      const res = await ctx.client().stream('POST', `/images/create${qs({ fromImage: name, platform: str(ctx.flags, 'platform') })}`);
      if ((await printJsonMessages(ctx, res, { quiet: bool(ctx.flags, 'quiet') })) !== EXIT.ok) return EXIT.failure;
      // Like docker: the fully qualified reference that was pulled.
      ctx.out.write(`${canonicalString(withDefaultTag(parseReference(name)))}\n`);
      return EXIT.ok;
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};

function ago(unix: number): string {
  const s = Math.max(0, Math.floor(Date.now() / 1000) - unix);
  const units: Array<[number, string]> = [[31536000, 'year'], [2592000, 'month'], [604800, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']];
  for (const [n, u] of units) if (s >= n) return `${Math.floor(s / n)} ${u}${Math.floor(s / n) === 1 ? '' : 's'} ago`;
  return 'Less than a second ago';
}

export const imagesCommand: Command = {
  name: 'images',
  summary: 'List images',
  usage: 'skiff images [OPTIONS] [REPOSITORY[:TAG]]',
  args: { min: 0, max: 1 },
  flags: [
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Only show image IDs' },
    { name: 'digests', type: 'boolean', description: 'Show digests' },
    { name: 'no-trunc', type: 'boolean', description: "Don't truncate output" },
  ],
  async run(ctx) {
    const ref = ctx.flags.args[0];
    let list: ImageSummary[];
    try {
      list = await ctx.client().json<ImageSummary[]>('GET', `/images/json${qs({ filters: ref ? JSON.stringify({ reference: { [ref]: true } }) : undefined })}`);
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
    const full = bool(ctx.flags, 'no-trunc');
    const id = (i: ImageSummary) => (full ? i.Id : i.Id.slice(7, 19));
    if (bool(ctx.flags, 'quiet')) {
      ctx.out.write([...new Set(list.map(id))].map((x) => x + '\n').join(''));
      return EXIT.ok;
    }
    const digests = bool(ctx.flags, 'digests');
    const rows: string[][] = [['REPOSITORY', 'TAG', ...(digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE']];
    for (const img of list) {
      const tagged = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      // An untagged image that keeps a digest shows its repository, as docker does.
      const fromDigests = (img.RepoDigests ?? []).filter((d) => d !== '<none>@<none>').map((d) => `${d.split('@')[0]}:<none>`);
      const tags = tagged.length ? tagged : fromDigests.length ? [...new Set(fromDigests)] : ['<none>:<none>'];
      for (const t of tags) {
        const i = t.lastIndexOf(':');
        const repo = t.slice(0, i);
        const digest = (img.RepoDigests ?? []).find((d) => d.startsWith(repo + '@'))?.split('@')[1] ?? '<none>';
        rows.push([repo, t.slice(i + 1), ...(digests ? [digest] : []), id(img), ago(img.Created), humanSize(img.Size, 3)]);
      }
    }
    ctx.out.write(columns(rows));
    return EXIT.ok;
  },
};

export const rmiCommand: Command = {
  name: 'rmi',
  summary: 'Remove one or more images',
  usage: 'skiff rmi [OPTIONS] IMAGE [IMAGE...]',
  args: { min: 1, max: Infinity },
  flags: [
    { name: 'force', short: 'f', type: 'boolean', description: 'Force removal of the image' },
    { name: 'no-prune', type: 'boolean', description: 'Do not delete untagged parents' },
  ],
  async run(ctx) {
    let code: number = EXIT.ok;
    for (const name of ctx.flags.args) {
      try {
        const items = await ctx.client().json<DeleteItem[]>('DELETE', `/images/${name}${qs({ force: bool(ctx.flags, 'force') ? '1' : undefined, noprune: bool(ctx.flags, 'no-prune') ? '1' : undefined })}`);
        for (const it of items) ctx.out.write('Untagged' in it ? `Untagged: ${it.Untagged}\n` : `Deleted: ${it.Deleted}\n`);
      } catch (err) {
        // Like docker: -f makes a missing image a message, not a failure.
        reportError(ctx, err);
        if (!(bool(ctx.flags, 'force') && (err as { status?: number }).status === 404)) code = EXIT.failure;
      }
    }
    return code;
  },
};

export const tagCommand: Command = {
  name: 'tag',
  summary: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
  usage: 'skiff tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
  args: { min: 2, max: 2 },
  flags: [],
  async run(ctx) {
    const [source, target] = ctx.flags.args as [string, string];
    const lastSlash = target.lastIndexOf('/');
    const colon = target.lastIndexOf(':');
    const repo = colon > lastSlash ? target.slice(0, colon) : target;
    const tag = colon > lastSlash ? target.slice(colon + 1) : undefined;
    try {
      await ctx.client().json<unknown>('POST', `/images/${source}/tag${qs({ repo, tag })}`);
      return EXIT.ok;
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};

export const checkCommand: Command = {
  name: 'check',
  summary: 'Verify every stored layer by rebuilding its tar and comparing it with its DiffID',
  usage: 'skiff check',
  flags: [],
  async run(ctx) {
    try {
      const results = await ctx.client().json<Array<{ chainId: string; diffId: string; ok: boolean; actual: string }>>('POST', '/skiff/check');
      let bad = 0;
      for (const r of results) {
        ctx.out.write(`${r.ok ? 'ok     ' : 'BROKEN '} ${r.diffId}${r.ok ? '' : ` (rebuilt: ${r.actual})`}\n`);
        if (!r.ok) bad++;
      }
      ctx.out.write(`${results.length} layers checked, ${bad} broken\n`);
      return bad > 0 ? EXIT.failure : EXIT.ok;
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};
