// The daemon's configuration: flags merged with daemon.json, validated the
// way dockerd validates them (unknown keys and flag/file conflicts are errors,
// so a typo in a fleet-wide config fails loudly at boot instead of being ignored).
import { LOG_DRIVERS, validateLogConfig } from '../exec/logdriver.js';
import { readFileSync } from 'node:fs';
import { errnoCode, InvalidParameter } from '../errors.js';
import { isLogLevel, type LogLevel } from '../log/logger.js';
import type { NetConfig } from '../net/types.js';

export interface RuntimeSpec {
  path: string;
  runtimeArgs: string[];
}

/** The network settings (bridge, bip, fixed-cidr, iptables, ip-forward, dns*) are the network service's own NetConfig. */
export interface DaemonConfig extends NetConfig {
  dataRoot: string;
  /** Another skiff data root, read only, where delta bases are also looked up (balena's --delta-data-root). */
  deltaDataRoot: string | undefined;
  hosts: string[];
  group: string;
  pidfile: string;
  logLevel: LogLevel;
  experimental: boolean;
  insecureRegistries: string[];
  registryMirrors: string[];
  maxConcurrentDownloads: number;
  maxConcurrentUploads: number;
  maxDownloadAttempts: number;
  logDriver: string;
  logOpts: Record<string, string>;
  defaultRuntime: string;
  runtimes: Record<string, RuntimeSpec>;
  liveRestore: boolean;
  /** The file the settings came from, if any (for messages). */
  configFile: string | undefined;
}

export const DEFAULT_CONFIG_FILE = '/etc/skiff/daemon.json';
export const DEFAULT_HOST = 'unix:///var/run/skiff.sock';

export function defaultConfig(): DaemonConfig {
  return {
    dataRoot: '/var/lib/skiff',
    deltaDataRoot: undefined,
    hosts: [DEFAULT_HOST],
    group: 'skiff',
    pidfile: '/var/run/skiff.pid',
    logLevel: 'info',
    experimental: false,
    insecureRegistries: [],
    registryMirrors: [],
    maxConcurrentDownloads: 3,
    maxConcurrentUploads: 5,
    maxDownloadAttempts: 5,
    logDriver: 'json-file',
    logOpts: {},
    defaultRuntime: 'runc',
    runtimes: {
      runc: { path: 'runc', runtimeArgs: [] },
      crun: { path: 'crun', runtimeArgs: [] },
    },
    liveRestore: false,
    bridge: 'skiff0',
    bip: undefined,
    fixedCidr: undefined,
    iptables: true,
    ipForward: true,
    dns: [],
    dnsSearch: [],
    dnsOpts: [],
    configFile: undefined,
  };
}

/** Log drivers skiff writes itself (balenaEngine ships json-file, local, journald). */
const BUILTIN_RUNTIMES = ['runc', 'crun'];

/** Values that came from command-line flags, keyed by daemon.json key. */
export type FlagSettings = Partial<Record<ConfigKey, unknown>>;

type ConfigKey =
  | 'data-root'
  | 'delta-data-root'
  | 'hosts'
  | 'group'
  | 'pidfile'
  | 'log-level'
  | 'debug'
  | 'experimental'
  | 'insecure-registries'
  | 'registry-mirrors'
  | 'max-concurrent-downloads'
  | 'max-concurrent-uploads'
  | 'max-download-attempts'
  | 'log-driver'
  | 'log-opts'
  | 'default-runtime'
  | 'runtimes'
  | 'live-restore'
  | 'bridge'
  | 'bip'
  | 'fixed-cidr'
  | 'iptables'
  | 'ip-forward'
  | 'dns'
  | 'dns-search'
  | 'dns-opts';

const KEYS: readonly ConfigKey[] = [
  'data-root',
  'delta-data-root',
  'hosts',
  'group',
  'pidfile',
  'log-level',
  'debug',
  'experimental',
  'insecure-registries',
  'registry-mirrors',
  'max-concurrent-downloads',
  'max-concurrent-uploads',
  'max-download-attempts',
  'log-driver',
  'log-opts',
  'default-runtime',
  'runtimes',
  'live-restore',
  'bridge',
  'bip',
  'fixed-cidr',
  'iptables',
  'ip-forward',
  'dns',
  'dns-search',
  'dns-opts',
];

/**
 * Reads daemon.json. A missing file is fine only when it is the default path
 * (dockerd behaves the same); an explicit --config-file must exist.
 */
export function readConfigFile(path: string, explicit: boolean): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && !explicit) return undefined;
    throw new InvalidParameter(`unable to configure the skiff daemon with file ${path}: ${(err as Error).message}`);
  }
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidParameter(`unable to configure the skiff daemon with file ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidParameter(`unable to configure the skiff daemon with file ${path}: the file must hold a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

export function buildConfig(flags: FlagSettings, file: Record<string, unknown> | undefined, filePath: string | undefined): DaemonConfig {
  const where = `unable to configure the skiff daemon with file ${filePath ?? '(none)'}`;
  if (file) {
    const unknown = Object.keys(file).filter((k) => !(KEYS as readonly string[]).includes(k));
    if (unknown.length > 0) {
      throw new InvalidParameter(`${where}: the following directives don't match any configuration option: ${unknown.join(', ')}`);
    }
    const both = KEYS.filter((k) => k in file && flags[k] !== undefined);
    if (both.length > 0) {
      const detail = both.map((k) => `${k}: (from flag: ${show(flags[k])}, from file: ${show(file[k])})`).join(', ');
      throw new InvalidParameter(
        `${where}: the following directives are specified both as a flag and in the configuration file: ${detail}`,
      );
    }
  }
  const merged: Record<string, unknown> = { ...(file ?? {}) };
  for (const k of KEYS) if (flags[k] !== undefined) merged[k] = flags[k];
  const src = (k: ConfigKey) => (flags[k] !== undefined ? `flag --${k}` : `${filePath}: "${k}"`);

  const c = defaultConfig();
  c.configFile = file ? filePath : undefined;
  const get = <T>(k: ConfigKey, check: (v: unknown) => v is T, expected: string): T | undefined => {
    const v = merged[k];
    if (v === undefined) return undefined;
    if (!check(v)) throw new InvalidParameter(`invalid value for ${src(k)}: expected ${expected}, got ${show(v)}`);
    return v;
  };

  const dataRoot = get('data-root', isString, 'a path');
  if (dataRoot !== undefined) {
    if (!dataRoot.startsWith('/')) throw new InvalidParameter(`invalid value for ${src('data-root')}: must be an absolute path`);
    c.dataRoot = dataRoot.replace(/\/+$/, '') || '/';
  }
  const deltaRoot = get('delta-data-root', isString, 'a path');
  if (deltaRoot !== undefined && deltaRoot !== '') {
    if (!deltaRoot.startsWith('/')) throw new InvalidParameter(`invalid value for ${src('delta-data-root')}: must be an absolute path`);
    c.deltaDataRoot = deltaRoot.replace(/\/+$/, '') || '/';
  }
  const hosts = get('hosts', isStringArray, 'a list of strings');
  if (hosts !== undefined && hosts.length > 0) c.hosts = hosts;
  for (const h of c.hosts) validateHost(h);
  c.group = get('group', isString, 'a group name or id') ?? c.group;
  c.pidfile = get('pidfile', isString, 'a path') ?? c.pidfile;

  const level = get('log-level', isString, 'a log level');
  if (level !== undefined) {
    const l = level === 'warning' ? 'warn' : level;
    if (!isLogLevel(l)) throw new InvalidParameter(`unable to parse logging level: ${level}`);
    c.logLevel = l;
  }
  if (get('debug', isBoolean, 'true or false') === true) c.logLevel = 'debug';
  c.experimental = get('experimental', isBoolean, 'true or false') ?? c.experimental;

  c.insecureRegistries = get('insecure-registries', isStringArray, 'a list of strings') ?? [];
  for (const r of c.insecureRegistries) validateRegistry(r, src('insecure-registries'));
  c.registryMirrors = (get('registry-mirrors', isStringArray, 'a list of URLs') ?? []).map((m) =>
    validateMirror(m, src('registry-mirrors')),
  );

  const mcd = get('max-concurrent-downloads', isInteger, 'an integer');
  if (mcd !== undefined) {
    if (mcd < 1) throw new InvalidParameter(`invalid max concurrent downloads: ${mcd}`);
    c.maxConcurrentDownloads = mcd;
  }
  const mcu = get('max-concurrent-uploads', isInteger, 'an integer');
  if (mcu !== undefined) {
    if (mcu < 1) throw new InvalidParameter(`invalid max concurrent uploads: ${mcu}`);
    c.maxConcurrentUploads = mcu;
  }
  const mda = get('max-download-attempts', isInteger, 'an integer');
  if (mda !== undefined) {
    if (mda < 1) throw new InvalidParameter(`invalid max download attempts: ${mda}`);
    c.maxDownloadAttempts = mda;
  }

  const driver = get('log-driver', isString, 'a log driver name');
  if (driver !== undefined) {
    if (!LOG_DRIVERS.includes(driver)) {
      throw new InvalidParameter(`logger: no log driver named '${driver}' is registered (skiff supports ${LOG_DRIVERS.join(', ')})`);
    }
    c.logDriver = driver;
  }
  c.logOpts = get('log-opts', isStringRecord, 'an object of strings') ?? {};
  // dockerd refuses to start with options its default driver does not know.
  validateLogConfig({ Type: c.logDriver, Config: c.logOpts });

  const runtimes = get('runtimes', isObject, 'an object');
  if (runtimes !== undefined) {
    for (const [name, spec] of Object.entries(runtimes)) {
      if (BUILTIN_RUNTIMES.includes(name)) {
        // dockerd refuses to redefine the built-in runtime names; so do we.
        throw new InvalidParameter(`runtime name '${name}' is reserved`);
      }
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new InvalidParameter(`invalid runtime name: ${name}`);
      if (!isObject(spec) || !isString(spec.path) || spec.path === '') {
        throw new InvalidParameter(`runtime ${name}: "path" must be a non-empty string`);
      }
      const args = spec.runtimeArgs ?? [];
      if (!isStringArray(args)) throw new InvalidParameter(`runtime ${name}: "runtimeArgs" must be a list of strings`);
      c.runtimes[name] = { path: spec.path, runtimeArgs: args };
    }
  }
  const def = get('default-runtime', isString, 'a runtime name');
  if (def !== undefined) {
    if (!(def in c.runtimes)) throw new InvalidParameter(`specified default runtime '${def}' does not exist`);
    c.defaultRuntime = def;
  }
  c.liveRestore = get('live-restore', isBoolean, 'true or false') ?? c.liveRestore;

  const bridge = get('bridge', isString, 'a bridge device name');
  if (bridge !== undefined && bridge !== '') {
    if (bridge.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridge)) throw new InvalidParameter(`invalid value for ${src('bridge')}: not a valid interface name: ${bridge}`);
    c.bridge = bridge;
  }
  c.bip = checkCidr(get('bip', isString, 'an address with prefix'), src('bip'));
  c.fixedCidr = checkCidr(get('fixed-cidr', isString, 'a CIDR'), src('fixed-cidr'));
  if (c.bridge === 'none' && (c.bip || c.fixedCidr)) throw new InvalidParameter('You specified --bridge=none together with --bip or --fixed-cidr');
  c.iptables = get('iptables', isBoolean, 'true or false') ?? c.iptables;
  c.ipForward = get('ip-forward', isBoolean, 'true or false') ?? c.ipForward;
  c.dns = get('dns', isStringArray, 'a list of IP addresses') ?? [];
  for (const d of c.dns) if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(d) && !d.includes(':')) throw new InvalidParameter(`invalid value for ${src('dns')}: ${d} is not an ip address`);
  c.dnsSearch = get('dns-search', isStringArray, 'a list of domains') ?? [];
  c.dnsOpts = get('dns-opts', isStringArray, 'a list of resolver options') ?? [];
  return c;
}

/** `name=path` as given to --add-runtime. */
export function parseAddRuntime(values: string[]): Record<string, { path: string }> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, { path: string }> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0 || i === v.length - 1) throw new InvalidParameter(`invalid runtime: ${v} (expected name=path)`);
    const name = v.slice(0, i);
    if (BUILTIN_RUNTIMES.includes(name)) throw new InvalidParameter(`runtime name '${name}' is reserved`);
    out[name] = { path: v.slice(i + 1) };
  }
  return out;
}

/** `key=value` pairs as given to --log-opt. */
export function parseKeyValues(values: string[], flag: string): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new InvalidParameter(`invalid value "${v}" for flag --${flag}: expected key=value`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

export function validateHost(h: string): void {
  if (/^unix:\/\/\/./.test(h) || /^fd:\/\/(\d+)?$/.test(h) || /^tcp:\/\/[^/]+:\d+$/.test(h)) return;
  throw new InvalidParameter(`invalid host "${h}": use unix:///path, fd:// or tcp://address:port`);
}

function validateRegistry(r: string, where: string): void {
  if (/^[a-z]+:\/\//i.test(r)) throw new InvalidParameter(`invalid value for ${where}: insecure registry ${r} should not contain '://'`);
  if (!/^[A-Za-z0-9.\-[\]:]+(\/\d{1,3})?$/.test(r)) throw new InvalidParameter(`invalid value for ${where}: invalid registry ${r}`);
}

function validateMirror(m: string, where: string): string {
  let u: URL;
  try {
    u = new URL(m);
  } catch {
    throw new InvalidParameter(`invalid value for ${where}: invalid mirror: ${m} is not a valid URI`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new InvalidParameter(`invalid value for ${where}: invalid mirror: unsupported scheme "${u.protocol.slice(0, -1)}" in "${m}"`);
  }
  if (u.pathname !== '/' && u.pathname !== '') throw new InvalidParameter(`invalid value for ${where}: invalid mirror: path, query, or fragment at end of the URI "${m}"`);
  return `${u.protocol}//${u.host}/`;
}

function checkCidr(v: string | undefined, where: string): string | undefined {
  if (v === undefined || v === '') return undefined;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(v);
  if (!m || m.slice(1, 5).some((p) => Number(p) > 255) || Number(m[5]) > 32) throw new InvalidParameter(`invalid value for ${where}: invalid CIDR address: ${v}`);
  return v;
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
function isString(v: unknown): v is string {
  return typeof v === 'string';
}
function isBoolean(v: unknown): v is boolean {
  return typeof v === 'boolean';
}
function isInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}
function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every(isString);
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isStringRecord(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every(isString);
}
