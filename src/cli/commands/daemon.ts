import { buildConfig, DEFAULT_CONFIG_FILE, parseAddRuntime, parseKeyValues, readConfigFile, type FlagSettings } from '../../daemon/config.js';
import { SkiffError } from '../../errors.js';
import { createLogger, type LogLevel } from '../../log/logger.js';
import { EXIT, type Command } from '../command.js';
import { bool, int, list, str, type ParsedFlags } from '../flags.js';

/** Settings given as flags, keyed like daemon.json so conflicts can be found. */
function flagSettings(f: ParsedFlags): FlagSettings {
  const s: FlagSettings = {};
  const given = (name: string) => f.given.has(name);
  if (given('data-root')) s['data-root'] = str(f, 'data-root');
  if (given('delta-data-root')) s['delta-data-root'] = str(f, 'delta-data-root');
  if (given('host')) s.hosts = list(f, 'host');
  if (given('group')) s.group = str(f, 'group');
  if (given('pidfile')) s.pidfile = str(f, 'pidfile');
  if (given('log-level')) s['log-level'] = str(f, 'log-level');
  if (given('debug')) s.debug = bool(f, 'debug');
  if (given('experimental')) s.experimental = bool(f, 'experimental');
  if (given('insecure-registry')) s['insecure-registries'] = list(f, 'insecure-registry');
  if (given('registry-mirror')) s['registry-mirrors'] = list(f, 'registry-mirror');
  if (given('max-concurrent-downloads')) s['max-concurrent-downloads'] = int(f, 'max-concurrent-downloads');
  if (given('max-concurrent-uploads')) s['max-concurrent-uploads'] = int(f, 'max-concurrent-uploads');
  if (given('max-download-attempts')) s['max-download-attempts'] = int(f, 'max-download-attempts');
  if (given('log-driver')) s['log-driver'] = str(f, 'log-driver');
  if (given('log-opt')) s['log-opts'] = parseKeyValues(list(f, 'log-opt'), 'log-opt');
  if (given('default-runtime')) s['default-runtime'] = str(f, 'default-runtime');
  if (given('add-runtime')) s.runtimes = parseAddRuntime(list(f, 'add-runtime'));
  if (given('live-restore')) s['live-restore'] = bool(f, 'live-restore');
  if (given('bridge')) s.bridge = str(f, 'bridge');
  if (given('bip')) s.bip = str(f, 'bip');
  if (given('fixed-cidr')) s['fixed-cidr'] = str(f, 'fixed-cidr');
  if (given('iptables')) s.iptables = bool(f, 'iptables');
  if (given('ip-forward')) s['ip-forward'] = bool(f, 'ip-forward');
  if (given('dns')) s.dns = list(f, 'dns');
  if (given('dns-search')) s['dns-search'] = list(f, 'dns-search');
  if (given('dns-opt')) s['dns-opts'] = list(f, 'dns-opt');
  return s;
}

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'Run the skiff daemon (the Docker Engine API server)',
  usage: 'skiff daemon [OPTIONS]',
  flags: [
    { name: 'data-root', type: 'string', value: 'path', description: 'Root directory of persistent state', default: '/var/lib/skiff' },
    { name: 'delta-data-root', type: 'string', value: 'path', description: 'Another data root, read only, searched for delta base images' },
    { name: 'host', short: 'H', type: 'list', value: 'list', description: 'Daemon socket(s) to listen on: unix:///path, fd://, tcp://addr:port (default unix:///var/run/skiff.sock)' },
    { name: 'config-file', type: 'string', value: 'path', description: 'Daemon configuration file', default: DEFAULT_CONFIG_FILE },
    { name: 'group', short: 'G', type: 'string', value: 'name', description: 'Group owning the unix socket(s)', default: 'skiff' },
    { name: 'pidfile', short: 'p', type: 'string', value: 'path', description: 'Path of the daemon PID file', default: '/var/run/skiff.pid' },
    { name: 'log-level', short: 'l', type: 'string', value: 'level', description: 'debug, info, warn, error or fatal', default: 'info' },
    { name: 'debug', short: 'D', type: 'boolean', description: 'Enable debug logging' },
    { name: 'experimental', type: 'boolean', description: 'Enable experimental features' },
    { name: 'insecure-registry', type: 'list', value: 'host[:port]', description: 'Registry reachable over plain HTTP (repeatable)' },
    { name: 'registry-mirror', type: 'list', value: 'url', description: 'Preferred mirror for docker.io (repeatable)' },
    { name: 'max-concurrent-downloads', type: 'int', value: 'n', description: 'Layers downloaded at once', default: 3 },
    { name: 'max-concurrent-uploads', type: 'int', value: 'n', description: 'Layers uploaded at once', default: 5 },
    { name: 'max-download-attempts', type: 'int', value: 'n', description: 'Attempts per layer before a pull fails', default: 5 },
    { name: 'log-driver', type: 'string', value: 'name', description: 'Default container log driver', default: 'json-file' },
    { name: 'log-opt', type: 'list', value: 'key=value', description: 'Default log driver options (repeatable)' },
    { name: 'default-runtime', type: 'string', value: 'name', description: 'Default OCI runtime for containers', default: 'runc' },
    { name: 'add-runtime', type: 'list', value: 'name=path', description: 'Register an additional OCI runtime (repeatable)' },
    { name: 'live-restore', type: 'boolean', description: 'Keep containers running while the daemon is down' },
    { name: 'bridge', short: 'b', type: 'string', value: 'name', description: "The default bridge network's device ('none': no default bridge)", default: 'skiff0' },
    { name: 'bip', type: 'string', value: 'addr/prefix', description: "The default bridge's gateway address and network" },
    { name: 'fixed-cidr', type: 'string', value: 'cidr', description: 'Addresses for containers on the default bridge' },
    { name: 'iptables', type: 'boolean', description: 'Let skiff add iptables rules (--iptables=false: none)', default: true },
    { name: 'ip-forward', type: 'boolean', description: 'Enable net.ipv4.ip_forward', default: true },
    { name: 'dns', type: 'list', value: 'ip', description: 'DNS server for containers (repeatable)' },
    { name: 'dns-search', type: 'list', value: 'domain', description: 'DNS search domain for containers (repeatable)' },
    { name: 'dns-opt', type: 'list', value: 'option', description: 'DNS resolver option for containers (repeatable)' },
  ],
  async run(ctx) {
    const f = ctx.flags;
    const bootLogger = createLogger((str(f, 'log-level') as LogLevel | undefined) ?? 'info');
    try {
      const explicit = f.given.has('config-file');
      const path = str(f, 'config-file') ?? DEFAULT_CONFIG_FILE;
      const file = readConfigFile(path, explicit);
      const config = buildConfig(flagSettings(f), file, path);
      const logger = createLogger(config.logLevel);
      // Loaded on demand: the daemon's modules (undici above all) would
      // otherwise slow every client command's start-up.
      const { runDaemon } = await import('../../daemon/daemon.js');
      const code = await runDaemon({ config, logger, groupExplicit: f.given.has('group') || file?.group !== undefined });
      // Containers left running (live-restore) keep handles to their monitors and
      // FIFOs open: the daemon's work is done, so leave without waiting for them.
      process.exit(code);
    } catch (err) {
      // Start-up failures are reported as one fatal log line, as init
      // systems collect them; the stack only matters for unexpected errors.
      const e = err as Error;
      bootLogger.fatal(e.message, err instanceof SkiffError ? undefined : { stack: e.stack });
      return EXIT.failure;
    }
  },
};
