// `skiff <command>`: global flags, then one subcommand. Usage mistakes exit 2,
// failures reported by the daemon exit 1, success exits 0.
import { VERSION, GIT_COMMIT } from '../version.js';
import { ApiClient, DEFAULT_CLIENT_HOST } from './client.js';
import { EXIT, type Command } from './command.js';
import { daemonCommand } from './commands/daemon.js';
import { imageCommand } from './commands/delta.js';
import { infoCommand } from './commands/info.js';
import { checkCommand, imagesCommand, pullCommand, rmiCommand, tagCommand } from './commands/images.js';
import { loadCommand, pushCommand, saveCommand } from './commands/transport.js';
import {
  execCommand,
  inspectCommand,
  killCommand,
  logsCommand,
  psCommand,
  restartCommand,
  rmCommand,
  runCommand,
  startCommand,
  stopCommand,
} from './commands/containers.js';
import { versionCommand } from './commands/version.js';
import { bool, flagHelp, parseFlags, str, UsageError, type FlagSpec } from './flags.js';

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'host', short: 'H', type: 'string', value: 'url', description: `Daemon socket to connect to (env SKIFF_HOST; default ${DEFAULT_CLIENT_HOST})` },
  { name: 'version', short: 'v', type: 'boolean', description: 'Print version information and quit' },
  { name: 'help', short: 'h', type: 'boolean', description: 'Print usage' },
];

const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', type: 'boolean', description: 'Print usage', hidden: true };

const helpCommand: Command = {
  name: 'help',
  summary: 'Show help for skiff or one of its commands',
  usage: 'skiff help [COMMAND]',
  flags: [],
  args: { min: 0, max: 1 },
  async run(ctx) {
    const name = ctx.flags.args[0];
    if (name === undefined) {
      ctx.out.write(mainHelp());
      return EXIT.ok;
    }
    const cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) throw new UsageError(`'${name}' is not a skiff command`, '');
    ctx.out.write(commandHelp(cmd));
    return EXIT.ok;
  },
};

const COMMANDS: Command[] = [
  daemonCommand,
  runCommand,
  psCommand,
  logsCommand,
  execCommand,
  startCommand,
  stopCommand,
  restartCommand,
  killCommand,
  rmCommand,
  inspectCommand,
  pullCommand,
  imagesCommand,
  tagCommand,
  rmiCommand,
  imageCommand,
  checkCommand,
  pushCommand,
  saveCommand,
  loadCommand,
  infoCommand,
  versionCommand,
  helpCommand,
];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3;
  return (
    'Usage:  skiff [OPTIONS] COMMAND\n\n' +
    'A Docker-compatible container engine for IoT devices\n\n' +
    'Options:\n' +
    flagHelp(GLOBAL_FLAGS) +
    '\n\nCommands:\n' +
    COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n') +
    "\n\nRun 'skiff COMMAND --help' for more information on a command.\n"
  );
}

function commandHelp(cmd: Command): string {
  const flags = flagHelp(cmd.flags);
  return `Usage:  ${cmd.usage}\n\n${cmd.summary}\n` + (flags ? `\nOptions:\n${flags}\n` : '');
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    const global = parseFlags(argv, GLOBAL_FLAGS, '', { stopEarly: true });
    if (bool(global, 'version')) {
      process.stdout.write(`skiff version ${VERSION}, build ${GIT_COMMIT}\n`);
      return EXIT.ok;
    }
    const [name, ...rest] = global.args;
    if (name === undefined || bool(global, 'help')) {
      process.stdout.write(mainHelp());
      return name === undefined && !bool(global, 'help') ? EXIT.usage : EXIT.ok;
    }
    const cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) throw new UsageError(`'${name}' is not a skiff command`, '');
    const flags = parseFlags(rest, [...cmd.flags, HELP_FLAG], cmd.name, { stopEarly: cmd.stopEarly === true });
    if (bool(flags, 'help')) {
      process.stdout.write(commandHelp(cmd));
      return EXIT.ok;
    }
    const args = cmd.args ?? { min: 0, max: 0 };
    const n = flags.args.length;
    if (n < args.min || n > args.max) {
      const count = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
      throw new UsageError(
        args.max === 0
          ? `"skiff ${cmd.name}" accepts no arguments`
          : args.min === args.max
            ? `"skiff ${cmd.name}" requires exactly ${count(args.min)}`
            : n < args.min
              ? `"skiff ${cmd.name}" requires at least ${count(args.min)}`
              : `"skiff ${cmd.name}" accepts at most ${count(args.max)}`,
        cmd.name,
      );
    }
    const host = str(global, 'host') ?? process.env.SKIFF_HOST ?? DEFAULT_CLIENT_HOST;
    let client: ApiClient | undefined;
    return await cmd.run({
      flags,
      client: () => (client ??= new ApiClient(host)),
      out: process.stdout,
      err: process.stderr,
    });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`skiff: ${err.message}\nSee 'skiff ${err.command ? err.command + ' ' : ''}--help'.\n`);
      return EXIT.usage;
    }
    throw err;
  }
}
