// skiff run / ps / logs / stop / rm / inspect / exec: for boards without a
// docker CLI. Thin clients of the same Engine API the docker CLI uses.
import { demux } from '../../api/stdcopy.js';
import { readJsonMessages } from '../../api/jsonstream.js';
import type { ContainerSummary } from '../../containers/types.js';
import { DaemonError } from '../client.js';
import { EXIT, type Command, type CommandContext } from '../command.js';
import { bool, int, list, str } from '../flags.js';
import { columns, qs, reportError } from '../format.js';
import type { IncomingMessage } from 'node:http';

async function copyOutput(ctx: CommandContext, res: IncomingMessage, tty: boolean): Promise<void> {
  if (tty) {
    for await (const chunk of res) ctx.out.write(chunk as Buffer);
    return;
  }
  for await (const f of demux(res)) (f.stream === 2 ? ctx.err : ctx.out).write(f.payload);
}

/** Docker's run exit codes for a failed start: 127 not found, 126 not executable, 125 otherwise. */
function startFailureCode(message: string): number {
  if (/executable file not found|no such file or directory/.test(message)) return 127;
  if (/permission denied/.test(message)) return 126;
  return 125;
}

export const runCommand: Command = {
  name: 'run',
  summary: 'Create and run a new container from an image',
  usage: 'skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  args: { min: 1, max: Infinity },
  stopEarly: true,
  flags: [
    { name: 'detach', short: 'd', type: 'boolean', description: 'Run in the background and print the container ID' },
    { name: 'rm', type: 'boolean', description: 'Remove the container when it exits' },
    { name: 'name', type: 'string', value: 'name', description: 'Container name' },
    { name: 'env', short: 'e', type: 'list', value: 'KEY=value', description: 'Set environment variables' },
    { name: 'volume', short: 'v', type: 'list', value: 'src:dst[:ro]', description: 'Bind mount a volume' },
    { name: 'workdir', short: 'w', type: 'string', value: 'dir', description: 'Working directory inside the container' },
    { name: 'user', short: 'u', type: 'string', value: 'user[:group]', description: 'User to run as' },
    { name: 'entrypoint', type: 'string', value: 'cmd', description: 'Override the image entrypoint' },
    { name: 'network', type: 'string', value: 'mode', description: 'Network: default, host or none' },
    { name: 'restart', type: 'string', value: 'policy', description: 'Restart policy: no, always, unless-stopped, on-failure[:N]' },
    { name: 'label', short: 'l', type: 'list', value: 'k=v', description: 'Container labels' },
    { name: 'privileged', type: 'boolean', description: 'Give extended privileges to the container' },
    { name: 'read-only', type: 'boolean', description: 'Mount the root filesystem read-only' },
    { name: 'device', type: 'list', value: 'host[:ctr[:perms]]', description: 'Add a host device' },
    { name: 'memory', short: 'm', type: 'string', value: 'bytes', description: 'Memory limit (e.g. 64m)' },
    { name: 'runtime', type: 'string', value: 'name', description: 'OCI runtime (runc, crun)' },
  ],
  async run(ctx) {
    const [image, ...cmd] = ctx.flags.args as [string, ...string[]];
    const f = ctx.flags;
    const restart = str(f, 'restart');
    const [rName, rCount] = (restart ?? 'no').split(':');
    const memory = str(f, 'memory');
    const body: Record<string, unknown> = {
      Image: image,
      Env: list(f, 'env'),
      Labels: Object.fromEntries(list(f, 'label').map((l) => [l.split('=')[0], l.slice(l.indexOf('=') + 1)])),
      AttachStdout: !bool(f, 'detach'),
      AttachStderr: !bool(f, 'detach'),
      HostConfig: {
        Binds: list(f, 'volume'),
        AutoRemove: bool(f, 'rm'),
        NetworkMode: str(f, 'network') ?? 'default',
        RestartPolicy: { Name: rName, MaximumRetryCount: Number(rCount ?? 0) },
        Privileged: bool(f, 'privileged'),
        ReadonlyRootfs: bool(f, 'read-only'),
        Devices: list(f, 'device').map((d) => {
          const [host, ctr, perms] = d.split(':');
          return { PathOnHost: host, PathInContainer: ctr ?? host, CgroupPermissions: perms ?? 'rwm' };
        }),
        ...(memory ? { Memory: parseBytes(memory) } : {}),
        ...(str(f, 'runtime') ? { Runtime: str(f, 'runtime') } : {}),
      },
    };
    if (cmd.length) body.Cmd = cmd;
    if (str(f, 'workdir')) body.WorkingDir = str(f, 'workdir');
    if (str(f, 'user')) body.User = str(f, 'user');
    if (str(f, 'entrypoint') !== undefined) body.Entrypoint = [str(f, 'entrypoint')];
    const client = ctx.client();
    const create = () => client.json<{ Id: string }>('POST', `/containers/create${qs({ name: str(f, 'name') })}`, body);
    let id: string;
    try {
      try {
        id = (await create()).Id;
      } catch (err) {
        if (!(err instanceof DaemonError) || err.status !== 404 || !/No such image/.test(err.message)) throw err;
        ctx.err.write(`Unable to find image '${image}' locally\n`);
        const res = await client.stream('POST', `/images/create${qs({ fromImage: image })}`);
        for await (const m of readJsonMessages(res)) {
          if (m.error) throw new Error(m.error);
          if (m.status && m.progressDetail?.current === undefined) ctx.err.write(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
        }
        id = (await create()).Id;
      }
      if (bool(f, 'detach')) {
        await client.json<unknown>('POST', `/containers/${id}/start`).catch((err: Error) => {
          throw Object.assign(err, { startFailed: true });
        });
        ctx.out.write(`${id}\n`);
        return EXIT.ok;
      }
      // Like docker: output and the wait are set up before the start.
      const attached = client.stream('POST', `/containers/${id}/attach${qs({ stream: '1', stdout: '1', stderr: '1' })}`);
      const waited = client.stream('POST', `/containers/${id}/wait${qs({ condition: bool(f, 'rm') ? 'removed' : 'next-exit' })}`);
      const [out, wait] = await Promise.all([attached, waited]);
      try {
        await client.json<unknown>('POST', `/containers/${id}/start`).catch(async (err: Error) => {
          throw Object.assign(err, { startFailed: true });
        });
      } catch (err) {
        out.destroy();
        wait.destroy();
        throw err;
      }
      await copyOutput(ctx, out, false);
      let text = '';
      for await (const chunk of wait) text += (chunk as Buffer).toString();
      const result = JSON.parse(text) as { StatusCode: number };
      return result.StatusCode;
    } catch (err) {
      reportError(ctx, err);
      return (err as { startFailed?: boolean }).startFailed ? startFailureCode((err as Error).message) : 125;
    }
  },
};

function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(s);
  if (!m) throw new Error(`invalid size: ${s}`);
  return Math.floor(Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[(m[2] as string).toLowerCase()]!);
}

export const psCommand: Command = {
  name: 'ps',
  summary: 'List containers',
  usage: 'skiff ps [OPTIONS]',
  flags: [
    { name: 'all', short: 'a', type: 'boolean', description: 'Show all containers (default shows just running)' },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Only display container IDs' },
    { name: 'no-trunc', type: 'boolean', description: "Don't truncate output" },
  ],
  async run(ctx) {
    try {
      const list = await ctx.client().json<ContainerSummary[]>('GET', `/containers/json${qs({ all: bool(ctx.flags, 'all') ? '1' : undefined })}`);
      const full = bool(ctx.flags, 'no-trunc');
      if (bool(ctx.flags, 'quiet')) {
        ctx.out.write(list.map((c) => (full ? c.Id : c.Id.slice(0, 12)) + '\n').join(''));
        return EXIT.ok;
      }
      const rows = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'STATUS', 'NAMES']];
      for (const c of list) {
        const command = full ? c.Command : c.Command.length > 20 ? `${c.Command.slice(0, 19)}…` : c.Command;
        rows.push([full ? c.Id : c.Id.slice(0, 12), c.Image, `"${command}"`, c.Status, c.Names.map((n) => n.slice(1)).join(',')]);
      }
      ctx.out.write(columns(rows));
      return EXIT.ok;
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};

export const logsCommand: Command = {
  name: 'logs',
  summary: 'Fetch the logs of a container',
  usage: 'skiff logs [OPTIONS] CONTAINER',
  args: { min: 1, max: 1 },
  flags: [
    { name: 'follow', short: 'f', type: 'boolean', description: 'Follow log output' },
    { name: 'timestamps', short: 't', type: 'boolean', description: 'Show timestamps' },
    { name: 'tail', short: 'n', type: 'string', value: 'n', description: 'Number of lines from the end (default all)' },
  ],
  async run(ctx) {
    const name = ctx.flags.args[0] as string;
    try {
      const info = await ctx.client().json<{ Id: string; Config: { Tty?: boolean } }>('GET', `/containers/${name}/json`);
      const res = await ctx.client().stream(
        'GET',
        `/containers/${info.Id}/logs${qs({ stdout: '1', stderr: '1', follow: bool(ctx.flags, 'follow') ? '1' : undefined, timestamps: bool(ctx.flags, 'timestamps') ? '1' : undefined, tail: str(ctx.flags, 'tail') ?? 'all' })}`,
      );
      await copyOutput(ctx, res, info.Config.Tty === true);
      return EXIT.ok;
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
  },
};

function eachContainer(name: string, summary: string, verb: (ctx: CommandContext, id: string) => Promise<void>, flags: Command['flags'] = []): Command {
  return {
    name,
    summary,
    usage: `skiff ${name} [OPTIONS] CONTAINER [CONTAINER...]`,
    args: { min: 1, max: Infinity },
    flags,
    async run(ctx) {
      let code: number = EXIT.ok;
      for (const id of ctx.flags.args) {
        try {
          await verb(ctx, id);
          ctx.out.write(`${id}\n`);
        } catch (err) {
          reportError(ctx, err);
          code = EXIT.failure;
        }
      }
      return code;
    },
  };
}

/** A call whose answer has no body to show; errors carry the daemon's message. */
async function call(ctx: CommandContext, method: string, path: string): Promise<void> {
  await ctx.client().json<unknown>(method, path);
}

export const stopCommand = eachContainer(
  'stop',
  'Stop one or more running containers',
  (ctx, id) => call(ctx, 'POST', `/containers/${id}/stop${qs({ t: int(ctx.flags, 'time')?.toString() })}`),
  [{ name: 'time', short: 't', type: 'int', value: 'seconds', description: 'Seconds to wait before killing it' }],
);
export const startCommand = eachContainer('start', 'Start one or more stopped containers', (ctx, id) => call(ctx, 'POST', `/containers/${id}/start`));
export const restartCommand = eachContainer('restart', 'Restart one or more containers', (ctx, id) => call(ctx, 'POST', `/containers/${id}/restart`));
export const killCommand = eachContainer(
  'kill',
  'Kill one or more running containers',
  (ctx, id) => call(ctx, 'POST', `/containers/${id}/kill${qs({ signal: str(ctx.flags, 'signal') })}`),
  [{ name: 'signal', short: 's', type: 'string', value: 'signal', description: 'Signal to send (default KILL)' }],
);
export const rmCommand = eachContainer(
  'rm',
  'Remove one or more containers',
  (ctx, id) => call(ctx, 'DELETE', `/containers/${id}${qs({ force: bool(ctx.flags, 'force') ? '1' : undefined, v: bool(ctx.flags, 'volumes') ? '1' : undefined })}`),
  [
    { name: 'force', short: 'f', type: 'boolean', description: 'Force the removal of a running container' },
    { name: 'volumes', short: 'v', type: 'boolean', description: 'Remove anonymous volumes too' },
  ],
);

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Return low-level information on containers or images',
  usage: 'skiff inspect NAME|ID [NAME|ID...]',
  args: { min: 1, max: Infinity },
  flags: [],
  async run(ctx) {
    const out: unknown[] = [];
    let code: number = EXIT.ok;
    for (const name of ctx.flags.args) {
      try {
        out.push(await ctx.client().json<unknown>('GET', `/containers/${name}/json`));
      } catch (err) {
        if (!(err instanceof DaemonError) || err.status !== 404) {
          reportError(ctx, err);
          code = EXIT.failure;
          continue;
        }
        try {
          out.push(await ctx.client().json<unknown>('GET', `/images/${name}/json`));
        } catch {
          ctx.err.write(`Error: No such object: ${name}\n`);
          code = EXIT.failure;
        }
      }
    }
    ctx.out.write(JSON.stringify(out, null, 4) + '\n');
    return code;
  },
};

export const execCommand: Command = {
  name: 'exec',
  summary: 'Run a command in a running container',
  usage: 'skiff exec [OPTIONS] CONTAINER COMMAND [ARG...]',
  args: { min: 2, max: Infinity },
  stopEarly: true,
  flags: [
    { name: 'detach', short: 'd', type: 'boolean', description: 'Run the command in the background' },
    { name: 'env', short: 'e', type: 'list', value: 'KEY=value', description: 'Set environment variables' },
    { name: 'user', short: 'u', type: 'string', value: 'user[:group]', description: 'User to run as' },
    { name: 'workdir', short: 'w', type: 'string', value: 'dir', description: 'Working directory inside the container' },
    { name: 'privileged', type: 'boolean', description: 'Give extended privileges to the command' },
  ],
  async run(ctx) {
    const [name, ...cmd] = ctx.flags.args as [string, ...string[]];
    const f = ctx.flags;
    const client = ctx.client();
    try {
      const detach = bool(f, 'detach');
      const { Id } = await client.json<{ Id: string }>('POST', `/containers/${name}/exec`, {
        Cmd: cmd,
        Env: list(f, 'env'),
        User: str(f, 'user') ?? '',
        WorkingDir: str(f, 'workdir') ?? '',
        Privileged: bool(f, 'privileged'),
        AttachStdout: !detach,
        AttachStderr: !detach,
        Tty: false,
      });
      const res = await client.stream('POST', `/exec/${Id}/start`, {}, { Detach: detach, Tty: false });
      if (detach) {
        res.resume();
        return EXIT.ok;
      }
      await copyOutput(ctx, res, false);
      const info = await client.json<{ ExitCode: number | null }>('GET', `/exec/${Id}/json`);
      return info.ExitCode ?? EXIT.failure;
    } catch (err) {
      reportError(ctx, err);
      return 126;
    }
  },
};
