import { ConnectError } from '../client.js';
import { EXIT, type Command } from '../command.js';
import { str } from '../flags.js';
import { API_VERSION, BUILD_TIME, GIT_COMMIT, VERSION } from '../../version.js';
import { goArch } from '../../system/host.js';
import type { VersionInfo } from '../../system/info.js';
import { table } from '../format.js';

export const versionCommand: Command = {
  name: 'version',
  summary: 'Show the skiff version information',
  usage: 'skiff version [OPTIONS]',
  flags: [{ name: 'format', short: 'f', type: 'string', value: 'json', description: 'Print as JSON instead of a table' }],
  async run(ctx) {
    const format = str(ctx.flags, 'format');
    if (format !== undefined && format !== 'json') {
      ctx.err.write(`skiff: unsupported format "${format}" (only "json")\n`);
      return EXIT.usage;
    }
    const client = {
      Version: VERSION,
      ApiVersion: API_VERSION,
      GitCommit: GIT_COMMIT,
      BuildTime: BUILD_TIME,
      NodeVersion: process.version,
      Os: 'linux',
      Arch: goArch(),
    };
    let server: VersionInfo | undefined;
    let failure: Error | undefined;
    try {
      server = await ctx.client().json<VersionInfo>('GET', '/version');
    } catch (err) {
      failure = err as Error;
    }
    if (format === 'json') {
      ctx.out.write(JSON.stringify({ Client: client, Server: server ?? null }) + '\n');
    } else {
      ctx.out.write(
        'Client:\n' +
          table([
            ['Version:', client.Version],
            ['API version:', client.ApiVersion],
            ['Node version:', client.NodeVersion],
            ['Git commit:', client.GitCommit],
            ['Built:', client.BuildTime],
            ['OS/Arch:', `${client.Os}/${client.Arch}`],
          ], ' '),
      );
      if (server) {
        const engine = server.Components.find((c) => c.Name === 'Engine')?.Details ?? {};
        ctx.out.write(
          `\nServer: ${server.Platform.Name}\n Engine:\n` +
            table([
              ['Version:', server.Version],
              ['API version:', `${server.ApiVersion} (minimum version ${server.MinAPIVersion})`],
              ['Node version:', server.GoVersion],
              ['Git commit:', server.GitCommit],
              ['Built:', server.BuildTime],
              ['OS/Arch:', `${server.Os}/${server.Arch}`],
              ['Kernel:', server.KernelVersion],
              ['Experimental:', engine.Experimental ?? 'false'],
            ], '  '),
        );
      }
    }
    if (failure) {
      ctx.err.write(`${failure instanceof ConnectError ? '' : 'Error response from daemon: '}${failure.message}\n`);
      return EXIT.failure;
    }
    return EXIT.ok;
  },
};
