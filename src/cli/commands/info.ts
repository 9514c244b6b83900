import { EXIT, type Command } from '../command.js';
import { bytesIEC, FORMAT_FLAG, reportError, wantsJson } from '../format.js';

type Info = Record<string, unknown> & {
  DriverStatus?: Array<[string, string]>;
  Runtimes?: Record<string, unknown>;
  RegistryConfig?: { InsecureRegistryCIDRs?: string[]; IndexConfigs?: Record<string, { Secure?: boolean }>; Mirrors?: string[] };
  Warnings?: string[] | null;
};

export const infoCommand: Command = {
  name: 'info',
  summary: 'Display system-wide information',
  usage: 'skiff info [OPTIONS]',
  flags: [FORMAT_FLAG],
  async run(ctx) {
    const json = wantsJson(ctx, 'info');
    let info: Info;
    try {
      info = await ctx.client().json<Info>('GET', '/info');
    } catch (err) {
      reportError(ctx, err);
      return EXIT.failure;
    }
    if (json) {
      ctx.out.write(JSON.stringify(info) + '\n');
      return EXIT.ok;
    }
    const s = (k: string) => String(info[k] ?? '');
    const lines: string[] = [
      'Server:',
      ` Containers: ${s('Containers')}`,
      `  Running: ${s('ContainersRunning')}`,
      `  Paused: ${s('ContainersPaused')}`,
      `  Stopped: ${s('ContainersStopped')}`,
      ` Images: ${s('Images')}`,
      ` Server Version: ${s('ServerVersion')}`,
      ` Storage Driver: ${s('Driver')}`,
      ...(info.DriverStatus ?? []).map(([k, v]) => `  ${k}: ${v}`),
      ` Logging Driver: ${s('LoggingDriver')}`,
      ` Cgroup Driver: ${s('CgroupDriver')}`,
      ` Cgroup Version: ${s('CgroupVersion')}`,
      ` Runtimes: ${Object.keys(info.Runtimes ?? {}).sort().join(' ')}`,
      ` Default Runtime: ${s('DefaultRuntime')}`,
      ` Kernel Version: ${s('KernelVersion')}`,
      ` Operating System: ${s('OperatingSystem')}`,
      ` OSType: ${s('OSType')}`,
      ` Architecture: ${s('Architecture')}`,
      ` CPUs: ${s('NCPU')}`,
      ` Total Memory: ${bytesIEC(Number(info.MemTotal ?? 0))}`,
      ` Name: ${s('Name')}`,
      ` ID: ${s('ID')}`,
      ` Skiff Root Dir: ${s('DockerRootDir')}`,
      ` Debug Mode: ${s('Debug')}`,
      ` Experimental: ${s('ExperimentalBuild')}`,
      ' Insecure Registries:',
      ...Object.entries(info.RegistryConfig?.IndexConfigs ?? {})
        .filter(([, c]) => c.Secure === false)
        .map(([name]) => `  ${name}`),
      ...(info.RegistryConfig?.InsecureRegistryCIDRs ?? []).map((c) => `  ${c}`),
    ];
    const mirrors = info.RegistryConfig?.Mirrors ?? [];
    if (mirrors.length > 0) lines.push(' Registry Mirrors:', ...mirrors.map((m) => `  ${m}`));
    lines.push(` Live Restore Enabled: ${s('LiveRestoreEnabled')}`);
    ctx.out.write(lines.join('\n') + '\n');
    for (const w of info.Warnings ?? []) ctx.err.write(w + '\n');
    return EXIT.ok;
  },
};
