// skiff push / save / load: thin clients of the transport API.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { canonicalName, familiarString, parseReference, withDefaultTag } from '../../pull/reference.js';
import { EXIT, type Command } from '../command.js';
import { bool, str, UsageError } from '../flags.js';
import { qs, reportError } from '../format.js';
import { printJsonMessages } from '../progress.js';

export const pushCommand: Command = {
  name: 'push',
  summary: 'Upload an image to a registry',
  usage: 'skiff push [OPTIONS] NAME[:TAG]',
  args: { min: 1, max: 1 },
  flags: [
    { name: 'all-tags', short: 'a', type: 'boolean', description: 'Push all tags of the repository' },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Suppress verbose output' },
  ],
  async run(ctx) {
    const ref = parseReference(ctx.flags.args[0] as string);
    const all = bool(ctx.flags, 'all-tags');
    if (all && ref.tag) throw new UsageError('tag can\'t be used with --all-tags/-a', 'push');
    const tag = all ? undefined : (ref.tag ?? 'latest');
    try {
      // The docker CLI's call: the repository in the path, the tag as a parameter.
      const res = await ctx.client().stream('POST', `/images/${canonicalName(ref)}/push${qs({ tag })}`, { 'X-Registry-Auth': 'e30=' });
      const code = await printJsonMessages(ctx, res, { quiet: bool(ctx.flags, 'quiet') });
      if (code === EXIT.ok && bool(ctx.flags, 'quiet')) ctx.out.write(`${familiarString(withDefaultTag(ref))}\n`);
      return code;
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};

export const saveCommand: Command = {
  name: 'save',
  summary: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  usage: 'skiff save [OPTIONS] IMAGE [IMAGE...]',
  args: { min: 1, max: Infinity },
  flags: [{ name: 'output', short: 'o', type: 'string', value: 'string', description: 'Write to a file, instead of STDOUT' }],
  async run(ctx) {
    const file = str(ctx.flags, 'output');
    if (!file && (ctx.out as NodeJS.WriteStream).isTTY) {
      ctx.err.write('cowardly refusing to save to a terminal. Use the -o flag or redirect\n');
      return EXIT.failure;
    }
    const q = new URLSearchParams();
    for (const n of ctx.flags.args) q.append('names', n);
    const tmp = file ? `${file}.skiff-tmp-${process.pid}` : undefined;
    try {
      const res = await ctx.client().stream('GET', `/images/get?${q}`);
      // A file appears only when the whole archive arrived.
      await pipeline(res, tmp ? createWriteStream(tmp) : ctx.out);
      if (!res.complete) throw new Error('the archive stream ended early');
      if (tmp && file) await rename(tmp, file);
      return EXIT.ok;
    } catch (err) {
      if (tmp) await rm(tmp, { force: true });
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};

export const loadCommand: Command = {
  name: 'load',
  summary: 'Load an image from a tar archive or STDIN',
  usage: 'skiff load [OPTIONS]',
  flags: [
    { name: 'input', short: 'i', type: 'string', value: 'string', description: 'Read from tar archive file, instead of STDIN' },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Suppress the load output' },
  ],
  async run(ctx) {
    const file = str(ctx.flags, 'input');
    if (!file && process.stdin.isTTY) {
      ctx.err.write('requested load from stdin, but stdin is empty\n');
      return EXIT.failure;
    }
    const quiet = bool(ctx.flags, 'quiet') || !(ctx.out as NodeJS.WriteStream).isTTY;
    try {
      const body = file ? createReadStream(file) : process.stdin;
      const res = await ctx.client().stream('POST', `/images/load${qs({ quiet: quiet ? '1' : '0' })}`, { 'Content-Type': 'application/x-tar' }, undefined, body);
      return await printJsonMessages(ctx, res, { quiet: false });
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};
