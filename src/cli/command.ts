import type { ApiClient } from './client.js';
import type { FlagSpec, ParsedFlags } from './flags.js';

export interface CommandContext {
  flags: ParsedFlags;
  /** The client for the daemon named by -H / SKIFF_HOST. */
  client(): ApiClient;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpec[];
  /** Most commands take no positional arguments; those that do say how many. */
  args?: { min: number; max: number };
  /** Flags end at the first argument (`run IMAGE CMD -flag`: the flags are the command's). */
  stopEarly?: boolean;
  /** Returns the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

/** Exit codes, kept across every subcommand. */
export const EXIT = {
  ok: 0,
  /** The daemon or the operation failed. */
  failure: 1,
  /** The command line was wrong. */
  usage: 2,
} as const;
