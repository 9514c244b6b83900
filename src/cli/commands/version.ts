import { EXIT, type Command } from '../command.js';
import { API_VERSION, BUILD_TIME, GIT_COMMIT, VERSION } from '../../version.js';
import { goArch } from '../../system/host.js';
import type { VersionInfo } from '../../system/info.js';
import { FORMAT_FLAG, reportError, table, wantsJson } from '../format.js';

export const versionCommand: Command = {
  name: 'version',
  summary: 'Show the skiff version information',
  usage: 'skiff version [OPTIONS]',
  flags: [FORMAT_FLAG],
  async run(ctx) {
    const json = wantsJson(ctx, 'version');
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
    if (json) {
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
      reportError(ctx, failure);
      return EXIT.failure;
    }
    return EXIT.ok;
  },
};
