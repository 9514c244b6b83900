// The pure translation from a Docker container create request (Config +
// HostConfig, merged with the image's config) to an OCI runtime spec
// (config.json) for runc/crun, with the defaults Docker 20.10 (balenaEngine's
// base) uses: mounts, capabilities, masked paths, device rules, namespaces,
// resources.
//
// Nothing here touches the host: whatever needs it (the user's ids from the
// image's /etc/passwd, device numbers, volume paths, the daemon's capability
// bounding set and rlimits) is resolved by the caller and passed in.
//
// Flow: validateHostConfig(raw) at create (refuses what skiff does not
// implement), mergeConfig(image, create, {id}) at create (what inspect shows),
// then at start volumeRequests() -> resolve volumes, resolveUser() (user.ts),
// buildSpec(...) and specToJSON() to write config.json.
import { posix } from 'node:path';
import { LOG_DRIVERS } from './logdriver.js';
import { InvalidParameter, SystemError } from '../errors.js';
import type { ContainerConfig as ImageContainerConfig, HealthConfig } from '../pull/manifest.js';

export type { HealthConfig };

// ---------------------------------------------------------------------------
// Docker API types

/** JSON `{}` as used by ExposedPorts and Volumes. */
export type EmptyObject = Record<string, never>;

/**
 * Docker's container `Config`, as the top level of the create body: the image
 * config's own type, except that the API also accepts a single string for Cmd
 * and Entrypoint (Docker's StrSlice); mergeConfig turns those into arrays.
 */
export interface ContainerConfig extends Omit<ImageContainerConfig, 'Cmd' | 'Entrypoint'> {
  Cmd?: string[] | string | null;
  Entrypoint?: string[] | string | null;
}

/** The `config` part of an image's configuration. */
export type ImageConfig = ImageContainerConfig;

export interface RestartPolicy {
  Name?: string;
  MaximumRetryCount?: number;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer?: string;
  CgroupPermissions?: string;
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface MountSpec {
  Type: string;
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean } | null;
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string> | null;
    DriverConfig?: { Name?: string; Options?: Record<string, string> | null } | null;
  } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export interface LogConfig {
  Type?: string;
  Config?: Record<string, string> | null;
}

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** Docker's `HostConfig`, restricted to what validateHostConfig lets through. */
export interface HostConfig {
  Binds?: string[] | null;
  ContainerIDFile?: string;
  LogConfig?: LogConfig | null;
  NetworkMode?: string;
  PortBindings?: Record<string, PortBinding[] | null> | null;
  RestartPolicy?: RestartPolicy | null;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  ConsoleSize?: [number, number] | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  CgroupnsMode?: string;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  ExtraHosts?: string[] | null;
  GroupAdd?: string[] | null;
  IpcMode?: string;
  OomScoreAdj?: number;
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[] | null;
  Tmpfs?: Record<string, string> | null;
  UTSMode?: string;
  UsernsMode?: string;
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  Runtime?: string;
  Isolation?: string;
  CpuShares?: number;
  Memory?: number;
  NanoCpus?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: DeviceMapping[] | null;
  DeviceCgroupRules?: string[] | null;
  MemoryReservation?: number;
  MemorySwap?: number;
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean | null;
  PidsLimit?: number | null;
  Ulimits?: Ulimit[] | null;
  Mounts?: MountSpec[] | null;
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
  Init?: boolean | null;
  /** balenaEngine: add `<ContainerIDEnv>=<container id>` to the environment. */
  ContainerIDEnv?: string;
}

// ---------------------------------------------------------------------------
// OCI runtime spec (the subset skiff writes)

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciRlimit {
  type: string;
  /** RLIM_INFINITY (2^64 as a double) = unlimited: write the spec with specToJSON. */
  hard: number;
  soft: number;
}

export interface OciDevice {
  path: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export interface OciDeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access: string;
}

export interface OciResources {
  devices: OciDeviceCgroup[];
  memory?: { limit?: number; reservation?: number; swap?: number; swappiness?: number; disableOOMKiller?: boolean };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    consoleSize?: { height: number; width: number };
    user: { uid: number; gid: number; additionalGids: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective?: string[]; permitted?: string[] };
    rlimits?: OciRlimit[];
    noNewPrivileges?: boolean;
    oomScoreAdj: number;
  };
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: {
    sysctl: Record<string, string>;
    resources: OciResources;
    cgroupsPath: string;
    namespaces: Array<{ type: string; path?: string }>;
    devices: OciDevice[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    rootfsPropagation?: string;
    // No `seccomp`: skiff does not ship a seccomp profile yet, so containers run
    // unconfined by seccomp (as with `--security-opt seccomp=unconfined`).
  };
}

// ---------------------------------------------------------------------------
// Constants (Docker 20.10's defaults)

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
const CPU_PERIOD_US = 100_000;
const MIN_MEMORY = 6 * 1024 * 1024;
const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';

/** Linux capabilities by number (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** The 14 capabilities a Docker container gets by default, in Docker's order. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * Docker's device cgroup rules: deny everything, then allow zero, null, urandom,
 * random, tty and console, and deny fuse. runc appends its own always-allowed
 * set after these (full, ptmx, /dev/pts/*, tun...) and creates the standard
 * nodes (null zero full random urandom tty, console, ptmx) itself.
 */
export const DEFAULT_DEVICE_RULES: readonly OciDeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
  { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
];

function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777'] },
  ];
}

/** Docker's ulimit names and the rlimit each maps to. */
const RLIMITS: Record<string, string> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK', msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO', rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK', as: 'RLIMIT_AS',
};

// ---------------------------------------------------------------------------
// HostConfig validation

/** HostConfig fields skiff implements (in the spec built here or elsewhere in the daemon). */
export const SUPPORTED_HOST_CONFIG_FIELDS: readonly string[] = [
  'AutoRemove', 'Binds', 'CapAdd', 'CapDrop', 'CgroupnsMode', 'ConsoleSize', 'ContainerIDEnv', 'ContainerIDFile',
  'CpuPeriod', 'CpuQuota', 'CpuShares', 'CpusetCpus', 'CpusetMems', 'DeviceCgroupRules', 'Devices', 'GroupAdd',
  'Init', 'IpcMode', 'Isolation', 'LogConfig', 'MaskedPaths', 'Memory', 'MemoryReservation', 'MemorySwap',
  'MemorySwappiness', 'Mounts', 'NanoCpus', 'OomKillDisable', 'OomScoreAdj', 'PidMode', 'PidsLimit', 'Privileged',
  'ReadonlyPaths', 'ReadonlyRootfs', 'RestartPolicy', 'Runtime', 'SecurityOpt', 'ShmSize', 'Sysctls', 'Tmpfs',
  'Ulimits', 'UsernsMode', 'UTSMode', 'VolumeDriver',
];

/**
 * Fields accepted here but owned by another module, which must check their
 * values itself: networking (NetworkMode, PortBindings, PublishAllPorts, Dns*,
 * ExtraHosts), logging options (LogConfig.Config) and the runtime name.
 */
export const DELEGATED_HOST_CONFIG_FIELDS: readonly string[] = [
  'Dns', 'DnsOptions', 'DnsSearch', 'ExtraHosts', 'NetworkMode', 'PortBindings', 'PublishAllPorts',
];

/** Fields the docker CLI always sends that skiff refuses unless they hold their zero value. */
export const REFUSED_HOST_CONFIG_FIELDS: readonly string[] = [
  'Annotations', 'BlkioDeviceReadBps', 'BlkioDeviceReadIOps', 'BlkioDeviceWriteBps', 'BlkioDeviceWriteIOps',
  'BlkioWeight', 'BlkioWeightDevice', 'Capabilities', 'Cgroup', 'CgroupParent', 'CpuCount', 'CpuPercent',
  'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'DeviceRequests', 'IOMaximumBandwidth', 'IOMaximumIOps',
  'KernelMemory', 'KernelMemoryTCP', 'Links', 'StorageOpt', 'VolumesFrom',
];

/** null, undefined, false, 0, '' and arrays/objects made only of those. */
function isZero(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.every(isZero);
  if (typeof v === 'object') return Object.values(v).every(isZero);
  return false;
}

type Checker = (v: unknown, field: string) => void;

function bad(field: string, what: string): never {
  throw new InvalidParameter(`invalid HostConfig.${field}: expected ${what}`);
}
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const bool: Checker = (v, f) => {
  if (v !== undefined && v !== null && typeof v !== 'boolean') bad(f, 'a boolean');
};
const int: Checker = (v, f) => {
  if (v !== undefined && v !== null && !Number.isSafeInteger(v)) bad(f, 'an integer');
};
const str: Checker = (v, f) => {
  if (v !== undefined && v !== null && typeof v !== 'string') bad(f, 'a string');
};
const strList: Checker = (v, f) => {
  if (v !== undefined && v !== null && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) bad(f, 'an array of strings');
};
const strMap: Checker = (v, f) => {
  if (v !== undefined && v !== null && !(isObj(v) && Object.values(v).every((x) => typeof x === 'string'))) {
    bad(f, 'an object of strings');
  }
};
const objList: Checker = (v, f) => {
  if (v !== undefined && v !== null && !(Array.isArray(v) && v.every(isObj))) bad(f, 'an array of objects');
};
const obj: Checker = (v, f) => {
  if (v !== undefined && v !== null && !isObj(v)) bad(f, 'an object');
};
const oneOf =
  (...allowed: string[]): Checker =>
  (v, f) => {
    str(v, f);
    if (typeof v === 'string' && !allowed.includes(v)) {
      throw new InvalidParameter(`invalid HostConfig.${f} "${v}": skiff supports ${allowed.map((a) => `"${a}"`).join(', ')}`);
    }
  };

const CHECKS: Record<string, Checker> = {
  AutoRemove: bool,
  Binds: strList,
  CapAdd: strList,
  CapDrop: strList,
  CgroupnsMode: oneOf('', 'host', 'private'),
  ConsoleSize: (v, f) => {
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 2 && v.every((x) => Number.isSafeInteger(x) && x >= 0))) {
      bad(f, 'an array [height, width]');
    }
  },
  ContainerIDEnv: str,
  ContainerIDFile: str,
  CpuPeriod: int,
  CpuQuota: int,
  CpuShares: int,
  CpusetCpus: str,
  CpusetMems: str,
  DeviceCgroupRules: strList,
  Devices: objList,
  Dns: strList,
  DnsOptions: strList,
  DnsSearch: strList,
  ExtraHosts: strList,
  GroupAdd: strList,
  Init: bool,
  IpcMode: oneOf('', 'private', 'shareable', 'host', 'none'),
  Isolation: oneOf('', 'default'),
  LogConfig: obj,
  MaskedPaths: strList,
  Memory: int,
  MemoryReservation: int,
  MemorySwap: int,
  MemorySwappiness: int,
  Mounts: objList,
  NanoCpus: int,
  NetworkMode: str,
  OomKillDisable: bool,
  OomScoreAdj: int,
  PidMode: oneOf('', 'host'),
  PidsLimit: int,
  PortBindings: obj,
  Privileged: bool,
  PublishAllPorts: bool,
  ReadonlyPaths: strList,
  ReadonlyRootfs: bool,
  RestartPolicy: obj,
  Runtime: str,
  SecurityOpt: strList,
  ShmSize: int,
  Sysctls: strMap,
  Tmpfs: strMap,
  Ulimits: objList,
  UsernsMode: oneOf('', 'host'),
  UTSMode: oneOf('', 'host'),
  VolumeDriver: oneOf('', 'local'),
};

export interface ValidateOptions {
  /** Whether the daemon has an init binary for `Init: true` (docker-init/tini). Default false. */
  init?: boolean;
}

/**
 * Checks a create request's raw HostConfig and returns it typed. Every field
 * skiff does not implement is refused with a 400 naming it, unless it holds
 * its zero value (the docker CLI sends every field); unknown fields likewise.
 */
export function validateHostConfig(raw: unknown, options: ValidateOptions = {}): HostConfig {
  if (raw === undefined || raw === null) return {};
  if (!isObj(raw)) throw new InvalidParameter('invalid HostConfig: expected an object');
  const supported = `skiff supports HostConfig fields ${[...SUPPORTED_HOST_CONFIG_FIELDS, ...DELEGATED_HOST_CONFIG_FIELDS].sort().join(', ')}`;
  for (const [field, value] of Object.entries(raw)) {
    const check = CHECKS[field];
    if (check) {
      check(value, field);
      continue;
    }
    if (isZero(value)) continue;
    if (REFUSED_HOST_CONFIG_FIELDS.includes(field)) {
      throw new InvalidParameter(`HostConfig.${field} is not supported by skiff (${supported})`);
    }
    throw new InvalidParameter(`unknown HostConfig field ${field} (${supported})`);
  }
  const hc = raw as HostConfig;

  // Values of supported fields that skiff does not (yet) handle.
  if (hc.Init === true && !options.init) throw new InvalidParameter('HostConfig.Init is not supported by skiff: it has no init binary');
  if (hc.MemorySwappiness !== undefined && hc.MemorySwappiness !== null && hc.MemorySwappiness !== -1) {
    if (hc.MemorySwappiness < 0 || hc.MemorySwappiness > 100) {
      throw new InvalidParameter(`Invalid value: ${hc.MemorySwappiness}, valid memory swappiness range is 0-100`);
    }
  }
  const lc = hc.LogConfig;
  if (lc) {
    str(lc.Type, 'LogConfig.Type');
    strMap(lc.Config, 'LogConfig.Config');
    if (lc.Type && !LOG_DRIVERS.includes(lc.Type)) {
      throw new InvalidParameter(`HostConfig.LogConfig.Type "${lc.Type}" is not supported by skiff (log drivers: ${LOG_DRIVERS.join(', ')})`);
    }
  }
  validateRestartPolicy(hc);
  validateResources(hc);
  for (const b of hc.Binds ?? []) parseBind(b);
  for (const m of hc.Mounts ?? []) parseMountSpec(m);
  for (const [dest, opts] of Object.entries(hc.Tmpfs ?? {})) parseTmpfs(dest, opts);
  for (const d of hc.Devices ?? []) checkDeviceMapping(d);
  for (const r of hc.DeviceCgroupRules ?? []) parseDeviceCgroupRule(r);
  normalizeCapabilities(hc.CapAdd ?? []);
  normalizeCapabilities(hc.CapDrop ?? []);
  parseSecurityOpt(hc.SecurityOpt ?? []);
  for (const u of hc.Ulimits ?? []) checkUlimit(u);
  for (const name of Object.keys(hc.Sysctls ?? {})) {
    checkSysctl(name, { hostNetwork: hc.NetworkMode === 'host', hostIpc: hc.IpcMode === 'host', hostUts: hc.UTSMode === 'host' });
  }
  for (const p of [...(hc.MaskedPaths ?? []), ...(hc.ReadonlyPaths ?? [])]) {
    if (!p.startsWith('/')) throw new InvalidParameter(`invalid masked or read-only path "${p}": it must be absolute`);
  }
  return hc;
}

const RESTART_POLICIES = ['', 'no', 'always', 'on-failure', 'unless-stopped'];

function validateRestartPolicy(hc: HostConfig): void {
  const rp = hc.RestartPolicy;
  if (!rp) return;
  str(rp.Name, 'RestartPolicy.Name');
  int(rp.MaximumRetryCount, 'RestartPolicy.MaximumRetryCount');
  const name = rp.Name ?? '';
  if (!RESTART_POLICIES.includes(name)) throw new InvalidParameter(`invalid restart policy '${name}'`);
  const max = rp.MaximumRetryCount ?? 0;
  if (max < 0) throw new InvalidParameter('maximum retry count cannot be negative');
  if (max !== 0 && name !== 'on-failure') throw new InvalidParameter(`maximum retry count cannot be used with restart policy '${name}'`);
  if (hc.AutoRemove && name !== '' && name !== 'no') {
    throw new InvalidParameter("can't create 'AutoRemove' container with restart policy");
  }
}

function validateResources(hc: HostConfig): void {
  const memory = hc.Memory ?? 0;
  const swap = hc.MemorySwap ?? 0;
  const reservation = hc.MemoryReservation ?? 0;
  if (memory !== 0 && memory < MIN_MEMORY) throw new InvalidParameter('Minimum memory limit allowed is 6MB');
  if (memory > 0 && swap > 0 && swap < memory) {
    throw new InvalidParameter('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (memory === 0 && swap > 0) throw new InvalidParameter('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (reservation > 0 && reservation < MIN_MEMORY) throw new InvalidParameter('Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > 0 && memory < reservation) {
    throw new InvalidParameter('Minimum memory limit can not be less than memory reservation limit, see usage');
  }
  const nano = hc.NanoCpus ?? 0;
  const period = hc.CpuPeriod ?? 0;
  const quota = hc.CpuQuota ?? 0;
  if (nano < 0) throw new InvalidParameter('NanoCpus can not be negative');
  if (nano > 0 && period > 0) throw new InvalidParameter('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano > 0 && quota > 0) throw new InvalidParameter('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (period !== 0 && (period < 1000 || period > 1_000_000)) {
    throw new InvalidParameter('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  }
  if (quota > 0 && quota < 1000) throw new InvalidParameter('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if ((hc.CpuShares ?? 0) < 0) throw new InvalidParameter('shares: invalid argument');
  for (const [f, v] of [['CpusetCpus', hc.CpusetCpus], ['CpusetMems', hc.CpusetMems]] as const) {
    if (v && !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw new InvalidParameter(`invalid HostConfig.${f} "${v}": expected a list like 0-2,4`);
  }
  if ((hc.ShmSize ?? 0) < 0) throw new InvalidParameter('SHM size can not be less than 0');
  const oom = hc.OomScoreAdj ?? 0;
  if (oom < -1000 || oom > 1000) throw new InvalidParameter(`Invalid value ${oom}, range for oom score adj is [-1000, 1000]`);
}

// ---------------------------------------------------------------------------
// Config merge and environment

function strSlice(v: string[] | string | null | undefined): string[] | null | undefined {
  return typeof v === 'string' ? [v] : v;
}

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i < 0 ? e : e.slice(0, i);
}

/** Docker's ReplaceOrAppendEnvValues: override by key, append new keys; a bare `KEY` unsets. */
export function replaceOrAppendEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const out: Array<string | undefined> = [...defaults];
  const index = new Map<string, number>();
  out.forEach((e, i) => index.set(envKey(e ?? ''), i));
  for (const o of overrides) {
    const i = index.get(envKey(o));
    if (!o.includes('=')) {
      if (i !== undefined) out[i] = undefined;
      continue;
    }
    if (i !== undefined) out[i] = o;
    else {
      index.set(envKey(o), out.length);
      out.push(o);
    }
  }
  return out.filter((e): e is string => e !== undefined);
}

export interface MergeOptions {
  /** The container's full id: the default Hostname is its first 12 characters. */
  id?: string;
  hostConfig?: HostConfig;
  /** The host's name, the default Hostname with NetworkMode "host". */
  hostHostname?: string;
}

/**
 * Fills a create request's Config from the image's config with Docker's
 * rules, giving the Config as Docker stores it (what inspect shows): image
 * Env entries whose key the request does not set are appended; Labels,
 * ExposedPorts and Volumes are unions; User, WorkingDir, StopSignal and
 * Healthcheck fields default to the image's; a non-empty Entrypoint in the
 * request drops the image's Cmd and Entrypoint, and Entrypoint `[""]` means
 * "no entrypoint". balenaEngine's ContainerIDEnv adds `<name>=<id>`.
 * PATH/HOSTNAME/TERM are not stored: containerEnv() adds them at start, as Docker does.
 */
export function mergeConfig(image: ImageConfig | null | undefined, create: ContainerConfig, options: MergeOptions = {}): ContainerConfig {
  const img: ImageConfig = image ?? {};
  // The create body is Config with HostConfig and NetworkingConfig beside it: keep only the Config.
  const { HostConfig: _hc, NetworkingConfig: _nc, ...config } = create as ContainerConfig & { HostConfig?: unknown; NetworkingConfig?: unknown };
  const c: ContainerConfig = config;
  let cmd = strSlice(create.Cmd);
  let entrypoint = strSlice(create.Entrypoint);

  if (!c.User) c.User = img.User ?? '';
  c.ExposedPorts = { ...(img.ExposedPorts ?? {}), ...(create.ExposedPorts ?? {}) };

  const env = [...(create.Env ?? [])];
  const keys = new Set(env.map(envKey));
  for (const e of img.Env ?? []) if (!keys.has(envKey(e))) env.push(e);
  c.Env = env;

  c.Labels = { ...(img.Labels ?? {}), ...(create.Labels ?? {}) };

  if (!entrypoint || entrypoint.length === 0) {
    if (!cmd || cmd.length === 0) cmd = img.Cmd ?? cmd;
    if (entrypoint === null || entrypoint === undefined) entrypoint = img.Entrypoint ?? entrypoint;
  }
  if (entrypoint && entrypoint.length === 1 && entrypoint[0] === '') entrypoint = null;
  c.Cmd = cmd ?? null;
  c.Entrypoint = entrypoint ?? null;
  if ((c.Entrypoint ?? []).length === 0 && (c.Cmd ?? []).length === 0) throw new InvalidParameter('No command specified');

  if (img.Healthcheck) {
    const u = create.Healthcheck;
    c.Healthcheck = u
      ? {
          ...u,
          Test: u.Test && u.Test.length > 0 ? u.Test : img.Healthcheck.Test,
          Interval: u.Interval || img.Healthcheck.Interval,
          Timeout: u.Timeout || img.Healthcheck.Timeout,
          StartPeriod: u.StartPeriod || img.Healthcheck.StartPeriod,
          Retries: u.Retries || img.Healthcheck.Retries,
        }
      : { ...img.Healthcheck };
  }
  if (!c.WorkingDir) c.WorkingDir = img.WorkingDir ?? '';
  if (c.WorkingDir && !c.WorkingDir.startsWith('/')) {
    throw new InvalidParameter(`the working directory '${c.WorkingDir}' is invalid, it needs to be an absolute path`);
  }
  c.Volumes = { ...(create.Volumes ?? {}), ...(img.Volumes ?? {}) };
  if (!c.StopSignal && img.StopSignal) c.StopSignal = img.StopSignal;

  const hc = options.hostConfig ?? {};
  if (!c.Hostname) {
    if (hc.NetworkMode === 'host') c.Hostname = options.hostHostname ?? '';
    else if (options.id) c.Hostname = options.id.slice(0, 12);
  }
  if (hc.ContainerIDEnv && options.id) c.Env = replaceOrAppendEnv(c.Env, [`${hc.ContainerIDEnv}=${options.id}`]);
  return c;
}

/** The process environment: PATH (default unless set), HOSTNAME, TERM=xterm with a tty, then Config.Env. */
export function containerEnv(config: ContainerConfig): string[] {
  const base = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${config.Hostname ?? ''}`];
  if (config.Tty) base.push('TERM=xterm');
  return replaceOrAppendEnv(base, config.Env ?? []);
}

// ---------------------------------------------------------------------------
// Capabilities

/** Upper-cases, adds the CAP_ prefix; `ALL` stays. Unknown names are a 400. */
export function normalizeCapabilities(caps: readonly string[]): string[] {
  return caps.map((raw) => {
    let c = raw.toUpperCase();
    if (c === 'ALL') return c;
    if (!c.startsWith('CAP_')) c = `CAP_${c}`;
    if (!ALL_CAPABILITIES.includes(c)) throw new InvalidParameter(`unknown capability: "${c}"`);
    return c;
  });
}

/**
 * Docker's rules: privileged = every capability; CapAdd ALL = every capability
 * but CapDrop; CapDrop ALL = only CapAdd; otherwise the defaults minus CapDrop
 * plus CapAdd. "Every capability" is limited to the daemon's bounding set
 * (a runtime cannot grant more); a capability named in CapAdd outside that set
 * is a 400 rather than a failed start.
 */
export function computeCapabilities(hc: HostConfig, boundingCaps: readonly string[]): string[] {
  const bounding = new Set(boundingCaps);
  const inBounding = (c: string): boolean => bounding.has(c);
  if (hc.Privileged) return ALL_CAPABILITIES.filter(inBounding);
  const add = normalizeCapabilities(hc.CapAdd ?? []);
  const drop = normalizeCapabilities(hc.CapDrop ?? []);
  for (const c of add) {
    if (c !== 'ALL' && !bounding.has(c)) {
      throw new InvalidParameter(`capability ${c} is not available: it is not in the skiff daemon's bounding set`);
    }
  }
  let caps: string[];
  if (add.includes('ALL')) caps = ALL_CAPABILITIES.filter((c) => !drop.includes(c));
  else if (drop.includes('ALL')) caps = add;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c)), ...add];
  return [...new Set(caps)].filter(inBounding);
}

/** The capability names in a /proc/<pid>/status `CapBnd:` hex mask. */
export function capabilitiesFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

// ---------------------------------------------------------------------------
// Security options, ulimits, sysctls

export interface SecurityOptions {
  noNewPrivileges: boolean;
}

/**
 * `no-new-privileges[=bool]` is honoured; `seccomp=unconfined`,
 * `apparmor=unconfined` and `label=disable` (or `label:disable`) are accepted
 * as no-ops because skiff applies no seccomp, AppArmor or SELinux profile; any
 * other option (a profile it cannot apply) is refused.
 */
export function parseSecurityOpt(opts: readonly string[]): SecurityOptions {
  let noNewPrivileges = false;
  for (const opt of opts) {
    if (opt === 'no-new-privileges') {
      noNewPrivileges = true;
      continue;
    }
    if (opt === 'disable') continue;
    const m = /^([a-z-]+)[=:](.*)$/.exec(opt);
    if (!m) throw new InvalidParameter(`invalid --security-opt 1: "${opt}"`);
    const [, key = '', value = ''] = m;
    if (key === 'no-new-privileges') {
      if (/^(1|t|true|TRUE|True)$/.test(value)) noNewPrivileges = true;
      else if (/^(0|f|false|FALSE|False)$/.test(value)) noNewPrivileges = false;
      else throw new InvalidParameter(`invalid --security-opt 2: "${opt}"`);
    } else if ((key === 'seccomp' || key === 'apparmor') && value === 'unconfined') {
      continue;
    } else if (key === 'label' && value === 'disable') {
      continue;
    } else if (key === 'seccomp' || key === 'apparmor' || key === 'label') {
      throw new InvalidParameter(`security option "${opt}" is not supported by skiff (it applies no ${key} profile)`);
    } else {
      throw new InvalidParameter(`invalid --security-opt 2: "${opt}"`);
    }
  }
  return { noNewPrivileges };
}

function checkUlimit(u: Ulimit): void {
  if (typeof u.Name !== 'string' || !Number.isSafeInteger(u.Soft) || !Number.isSafeInteger(u.Hard)) {
    throw new InvalidParameter('invalid HostConfig.Ulimits: expected {Name, Soft, Hard}');
  }
  if (!(u.Name in RLIMITS)) throw new InvalidParameter(`invalid ulimit type: ${u.Name}`);
  const soft = u.Soft < 0 ? RLIM_INFINITY : u.Soft;
  const hard = u.Hard < 0 ? RLIM_INFINITY : u.Hard;
  if (soft > hard) throw new InvalidParameter(`ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
}

/**
 * "Unlimited" in rlimits. A JS number cannot hold 2^64-1, so this is 2^64: specToJSON
 * writes it as 18446744073709551615; plain JSON.stringify would write a number
 * that runc refuses loudly (rather than a silent null = 0).
 */
export const RLIM_INFINITY = 2 ** 64;

/** The host's limits by Docker ulimit name (`nofile`...): [soft, hard], RLIM_INFINITY for unlimited. */
export type HostRlimits = Partial<Record<string, readonly [number, number]>>;

const PROC_LIMITS: Record<string, string> = {
  'Max cpu time': 'cpu', 'Max file size': 'fsize', 'Max data size': 'data', 'Max stack size': 'stack',
  'Max core file size': 'core', 'Max resident set': 'rss', 'Max processes': 'nproc', 'Max open files': 'nofile',
  'Max locked memory': 'memlock', 'Max address space': 'as', 'Max file locks': 'locks',
  'Max pending signals': 'sigpending', 'Max msgqueue size': 'msgqueue', 'Max nice priority': 'nice',
  'Max realtime priority': 'rtprio', 'Max realtime timeout': 'rttime',
};

/** Parses /proc/<pid>/limits into HostRlimits (Node has no getrlimit). */
export function parseProcLimits(text: string): HostRlimits {
  const out: HostRlimits = {};
  for (const line of text.split('\n')) {
    const m = /^(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    const name = m?.[1] !== undefined ? PROC_LIMITS[m[1]] : undefined;
    if (!m || !name) continue;
    const num = (s: string | undefined): number => (s === 'unlimited' ? RLIM_INFINITY : Number(s));
    out[name] = [num(m[2]), num(m[3])];
  }
  return out;
}

/** Only what Ulimits asks for (Docker sets no rlimit otherwise), each capped at the host's hard limit. */
export function buildRlimits(ulimits: readonly Ulimit[], host: HostRlimits): OciRlimit[] {
  return ulimits.map((u) => {
    checkUlimit(u);
    let hard = u.Hard < 0 ? RLIM_INFINITY : u.Hard;
    let soft = u.Soft < 0 ? RLIM_INFINITY : u.Soft;
    const cap = host[u.Name]?.[1];
    if (cap !== undefined) hard = Math.min(hard, cap);
    soft = Math.min(soft, hard);
    return { type: RLIMITS[u.Name] ?? '', hard, soft };
  });
}

const IPC_SYSCTLS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** Only namespaced sysctls, and only for a namespace the container has of its own (as runc checks). */
function checkSysctl(name: string, ns: { hostNetwork: boolean; hostIpc: boolean; hostUts: boolean }): void {
  let owner: 'ipc' | 'net' | 'uts' | undefined;
  if (IPC_SYSCTLS.includes(name) || name.startsWith('fs.mqueue.')) owner = 'ipc';
  else if (name.startsWith('net.')) owner = 'net';
  else if (name === 'kernel.domainname' || name === 'kernel.hostname') owner = 'uts';
  if (!owner) throw new InvalidParameter(`sysctl "${name}" is not allowed in a container: it is not namespaced`);
  if ((owner === 'net' && ns.hostNetwork) || (owner === 'ipc' && ns.hostIpc) || (owner === 'uts' && ns.hostUts)) {
    throw new InvalidParameter(`sysctl "${name}" is not allowed with the host's ${owner === 'net' ? 'network' : owner} namespace`);
  }
}

// ---------------------------------------------------------------------------
// Mounts

export interface ParsedMount {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind), volume name ('' = anonymous volume), or 'tmpfs'. */
  source: string;
  destination: string;
  readOnly: boolean;
  /** rprivate unless asked otherwise. */
  propagation: string;
  nonRecursive: boolean;
  noCopy: boolean;
  /** tmpfs only: the options after Docker's defaults were merged in. */
  tmpfsOptions: string[];
}

const PROPAGATIONS = ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'];
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

function cleanDestination(dest: string, spec: string): string {
  if (!dest.startsWith('/')) throw new InvalidParameter(`invalid mount config: mount path must be absolute: "${dest}" in '${spec}'`);
  const clean = posix.normalize(dest).replace(/(.)\/+$/, '$1');
  if (clean === '/') throw new InvalidParameter(`invalid specification: destination can't be '/' in '${spec}'`);
  return clean;
}

function mountBase(type: ParsedMount['type'], source: string, destination: string): ParsedMount {
  return { type, source, destination, readOnly: false, propagation: 'rprivate', nonRecursive: false, noCopy: false, tmpfsOptions: [] };
}

/** Parses one `HostConfig.Binds` entry: `/host:/ctr[:mode]`, `name:/ctr[:mode]` or `/ctr` (anonymous volume). */
export function parseBind(spec: string): ParsedMount {
  const parts = spec.split(':');
  let source = '';
  let dest: string;
  let mode = '';
  if (parts.length === 1) dest = parts[0] ?? '';
  else if (parts.length === 2 || parts.length === 3) {
    source = parts[0] ?? '';
    dest = parts[1] ?? '';
    mode = parts[2] ?? '';
    if (source === '') throw new InvalidParameter(`invalid volume specification: '${spec}'`);
  } else throw new InvalidParameter(`invalid volume specification: '${spec}'`);

  const isBind = source.startsWith('/');
  if (source !== '' && !isBind && !VOLUME_NAME.test(source)) {
    throw new InvalidParameter(
      `"${source}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
  const m = mountBase(isBind ? 'bind' : 'volume', isBind ? posix.normalize(source) : source, cleanDestination(dest, spec));
  const seen = new Set<string>();
  for (const opt of mode === '' ? [] : mode.split(',')) {
    let kind: string;
    if (opt === 'ro' || opt === 'rw') {
      kind = 'rw';
      m.readOnly = opt === 'ro';
    } else if (PROPAGATIONS.includes(opt)) {
      kind = 'propagation';
      m.propagation = opt;
    } else if (opt === 'z' || opt === 'Z') {
      kind = 'label'; // SELinux relabelling: skiff applies no SELinux labels.
    } else if (opt === 'nocopy') {
      kind = 'copy';
      m.noCopy = true;
    } else if (opt === 'consistent' || opt === 'cached' || opt === 'delegated') {
      kind = 'consistency';
    } else throw new InvalidParameter(`invalid mode: ${mode} in '${spec}'`);
    if (seen.has(kind)) throw new InvalidParameter(`invalid mode: ${mode} in '${spec}'`);
    seen.add(kind);
  }
  if (isBind && m.noCopy) throw new InvalidParameter(`invalid mode: ${mode} in '${spec}': nocopy applies to volumes only`);
  if (!isBind && m.propagation !== 'rprivate' && seen.has('propagation')) {
    throw new InvalidParameter(`invalid mode: ${mode} in '${spec}': propagation applies to bind mounts only`);
  }
  return m;
}

const TMPFS_FLAG_GROUPS: Record<string, string> = {
  exec: 'exec', noexec: 'exec', suid: 'suid', nosuid: 'suid', dev: 'dev', nodev: 'dev', ro: 'rw', rw: 'rw',
  atime: 'atime', noatime: 'atime', relatime: 'atime', strictatime: 'atime', norelatime: 'atime',
  diratime: 'diratime', nodiratime: 'diratime', sync: 'sync', async: 'sync', dirsync: 'dirsync',
  mand: 'mand', nomand: 'mand',
  shared: 'propagation', rshared: 'propagation', slave: 'propagation', rslave: 'propagation', private: 'propagation', rprivate: 'propagation',
};
const TMPFS_KEYS = ['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol', 'huge', 'inode64', 'noswap'];

/** Docker's defaults (noexec,nosuid,nodev,rprivate) overridden by the given options; the last of a kind wins. */
function mergeTmpfsOptions(given: readonly string[], spec: string): string[] {
  const all = ['noexec', 'nosuid', 'nodev', 'rprivate', ...given];
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const opt = all[i] ?? '';
    const eq = opt.indexOf('=');
    let kind: string | undefined;
    if (eq > 0) kind = TMPFS_KEYS.includes(opt.slice(0, eq)) ? `key:${opt.slice(0, eq)}` : undefined;
    else kind = TMPFS_FLAG_GROUPS[opt];
    if (kind === undefined) throw new InvalidParameter(`invalid tmpfs option "${opt}" in '${spec}'`);
    if (seen.has(kind)) continue;
    seen.add(kind);
    out.unshift(opt);
  }
  return out;
}

function parseTmpfs(destination: string, options: string): ParsedMount {
  const spec = `${destination}:${options}`;
  const m = mountBase('tmpfs', 'tmpfs', cleanDestination(destination, spec));
  m.tmpfsOptions = mergeTmpfsOptions(options === '' ? [] : options.split(','), spec);
  m.readOnly = m.tmpfsOptions.includes('ro');
  return m;
}

function sizeOption(bytes: number): string {
  for (const [unit, n] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) {
    if (bytes % n === 0) return `size=${bytes / n}${unit}`;
  }
  return `size=${bytes}`;
}

/** Parses one `HostConfig.Mounts` entry (`--mount`): bind, volume or tmpfs. */
export function parseMountSpec(ms: MountSpec): ParsedMount {
  if (!isObj(ms) || typeof ms.Target !== 'string') throw new InvalidParameter('invalid mount config: Target must be a string');
  const spec = `type=${ms.Type},target=${ms.Target}`;
  const source = ms.Source ?? '';
  const readOnly = ms.ReadOnly === true;
  switch (ms.Type) {
    case 'bind': {
      if (ms.VolumeOptions || ms.TmpfsOptions) throw new InvalidParameter(`invalid mount config for type "bind": only BindOptions apply (${spec})`);
      if (!source.startsWith('/')) throw new InvalidParameter(`invalid mount config for type "bind": invalid mount path: '${source}' mount path must be absolute`);
      const m = mountBase('bind', posix.normalize(source), cleanDestination(ms.Target, spec));
      m.readOnly = readOnly;
      const prop = ms.BindOptions?.Propagation ?? '';
      if (prop !== '') {
        if (!PROPAGATIONS.includes(prop)) throw new InvalidParameter(`invalid mount config for type "bind": invalid propagation mode: ${prop}`);
        m.propagation = prop;
      }
      m.nonRecursive = ms.BindOptions?.NonRecursive === true;
      return m;
    }
    case 'volume': {
      if (ms.BindOptions || ms.TmpfsOptions) throw new InvalidParameter(`invalid mount config for type "volume": only VolumeOptions apply (${spec})`);
      if (source !== '' && !VOLUME_NAME.test(source)) throw new InvalidParameter(`invalid mount config for type "volume": invalid volume name "${source}"`);
      const driver = ms.VolumeOptions?.DriverConfig?.Name ?? '';
      if (driver !== '' && driver !== 'local') throw new InvalidParameter(`volume driver "${driver}" is not supported by skiff (only "local")`);
      const m = mountBase('volume', source, cleanDestination(ms.Target, spec));
      m.readOnly = readOnly;
      m.noCopy = ms.VolumeOptions?.NoCopy === true;
      return m;
    }
    case 'tmpfs': {
      if (source !== '') throw new InvalidParameter('invalid mount config for type "tmpfs": Source must not be specified');
      if (ms.BindOptions || ms.VolumeOptions) throw new InvalidParameter(`invalid mount config for type "tmpfs": only TmpfsOptions apply (${spec})`);
      const opts: string[] = [];
      if (readOnly) opts.push('ro');
      const size = ms.TmpfsOptions?.SizeBytes ?? 0;
      if (!Number.isSafeInteger(size) || size < 0) throw new InvalidParameter('invalid mount config for type "tmpfs": invalid SizeBytes');
      if (size > 0) opts.push(sizeOption(size));
      const mode = ms.TmpfsOptions?.Mode ?? 0;
      if (!Number.isSafeInteger(mode) || mode < 0 || mode > 0o7777) throw new InvalidParameter('invalid mount config for type "tmpfs": invalid Mode');
      if (mode !== 0) opts.push(`mode=${mode.toString(8)}`);
      const m = mountBase('tmpfs', 'tmpfs', cleanDestination(ms.Target, spec));
      m.tmpfsOptions = mergeTmpfsOptions(opts, spec);
      m.readOnly = readOnly;
      return m;
    }
    default:
      throw new InvalidParameter(`mount type "${String(ms.Type)}" is not supported by skiff (bind, volume, tmpfs)`);
  }
}

/** Every mount the request asks for, parsed: Binds, then Mounts, then Tmpfs. */
export function requestedMounts(hc: HostConfig): ParsedMount[] {
  return [
    ...(hc.Binds ?? []).map(parseBind),
    ...(hc.Mounts ?? []).map(parseMountSpec),
    ...Object.entries(hc.Tmpfs ?? {}).map(([d, o]) => parseTmpfs(d, o)),
  ];
}

export interface VolumeRequest {
  /** '' for an anonymous volume (Config.Volumes, `-v /data`, a --mount volume without source). */
  name: string;
  destination: string;
  readOnly: boolean;
  noCopy: boolean;
}

/** The volumes the caller must create/find and hand to buildSpec as `volumes`, by destination. */
export function volumeRequests(config: ContainerConfig, hc: HostConfig): VolumeRequest[] {
  const mounts = requestedMounts(hc);
  const out: VolumeRequest[] = mounts
    .filter((m) => m.type === 'volume')
    .map((m) => ({ name: m.source, destination: m.destination, readOnly: m.readOnly, noCopy: m.noCopy }));
  const taken = new Set(mounts.map((m) => m.destination));
  for (const dest of Object.keys(config.Volumes ?? {})) {
    const d = cleanDestination(dest, dest);
    if (taken.has(d)) continue;
    taken.add(d);
    out.push({ name: '', destination: d, readOnly: false, noCopy: false });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Devices

export interface DeviceNode {
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/**
 * Stats a host device: one node, or for a directory (e.g. /dev/snd) every node
 * under it with its absolute host path. Throws (e.g. InvalidParameter
 * `error gathering device information while adding custom device "/dev/x": no such file or directory`) when missing.
 */
export type ResolveDevice = (hostPath: string) => DeviceNode | Array<DeviceNode & { path: string }>;

function checkDeviceMapping(d: DeviceMapping): void {
  if (typeof d.PathOnHost !== 'string' || !d.PathOnHost.startsWith('/')) throw new InvalidParameter(`invalid device: PathOnHost must be an absolute path`);
  str(d.PathInContainer, 'Devices.PathInContainer');
  str(d.CgroupPermissions, 'Devices.CgroupPermissions');
  const inCtr = d.PathInContainer || d.PathOnHost;
  if (!inCtr.startsWith('/')) throw new InvalidParameter(`invalid device: PathInContainer "${inCtr}" must be an absolute path`);
  const perms = d.CgroupPermissions || 'rwm';
  if (!/^[rwm]{1,3}$/.test(perms) || new Set(perms).size !== perms.length) {
    throw new InvalidParameter(`invalid device mode: ${perms} (for ${d.PathOnHost})`);
  }
}

/** `c 13:* rwm`, `b 8:0 r`, `a *:* rwm`. */
export function parseDeviceCgroupRule(rule: string): OciDeviceCgroup {
  const m = /^([acb]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(rule);
  if (!m) throw new InvalidParameter(`invalid device cgroup rule format: '${rule}'`);
  const [, type = 'a', major = '*', minor = '*', access = 'rwm'] = m;
  const r: OciDeviceCgroup = { allow: true, type: type as 'a' | 'b' | 'c', access };
  if (major !== '*') r.major = Number(major);
  if (minor !== '*') r.minor = Number(minor);
  return r;
}

function mappedDevices(d: DeviceMapping, resolve: ResolveDevice): OciDevice[] {
  checkDeviceMapping(d);
  const inCtr = d.PathInContainer || d.PathOnHost;
  const found = resolve(d.PathOnHost);
  const list = Array.isArray(found) ? found : [{ ...found, path: d.PathOnHost }];
  return list.map((n) => ({
    path: n.path === d.PathOnHost ? inCtr : posix.join(inCtr, posix.relative(d.PathOnHost, n.path)),
    type: n.type,
    major: n.major,
    minor: n.minor,
    fileMode: n.fileMode,
    uid: n.uid,
    gid: n.gid,
  }));
}

// ---------------------------------------------------------------------------
// The spec

export interface BuildSpecInput {
  id: string;
  name: string;
  /** The merged config (mergeConfig). */
  config: ContainerConfig;
  /** A validated HostConfig (validateHostConfig). */
  hostConfig: HostConfig;
  /** Absolute path of the mounted rootfs. */
  rootfs: string;
  /** From resolveUser (user.ts). */
  user: { uid: number; gid: number; additionalGids: number[] };
  /** A pre-created network namespace to join; 'host' for the host's; undefined for a new, empty one. */
  netnsPath?: string | 'host';
  /** Files bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf (skipped when undefined). */
  hostsPath?: string;
  hostnamePath?: string;
  resolvPath?: string;
  cgroupsPath: string;
  /**
   * The daemon's own capability bounding set (capabilitiesFromMask of /proc/self/status CapBnd).
   * Pass it: without it nothing is intersected, and on a host whose bounding set lacks a
   * capability (CAP_SYS_RESOURCE here) Privileged and CapAdd ALL fail in the runtime.
   */
  boundingCaps?: readonly string[];
  /** The daemon's rlimits (parseProcLimits of /proc/self/limits): ulimits are capped at their hard limits. Without it, no capping. */
  hostRlimits?: HostRlimits;
  /** Named and anonymous volumes resolved to host directories, one per volumeRequests() entry. */
  volumes?: ReadonlyArray<{ source: string; destination: string; readOnly: boolean; propagation?: string }>;
  /** Needed when HostConfig.Devices is not empty. */
  resolveDevice?: ResolveDevice;
  /** Privileged containers get these device nodes created (the host's /dev); none when undefined. */
  hostDevices?: ReadonlyArray<DeviceNode & { path: string }>;
  /** The init binary bind-mounted at /sbin/docker-init for `Init: true`. */
  initPath?: string;
  /** Whether a sysctl exists on this kernel (Docker's default net sysctls are only set when they do). Default: yes. */
  sysctlExists?: (name: string) => boolean;
}

function removeOption(m: OciMount, opt: string): void {
  m.options = m.options.filter((o) => o !== opt);
}

export function buildSpec(input: BuildSpecInput): OciSpec {
  const { config, hostConfig: hc } = input;
  if (!posix.isAbsolute(input.rootfs)) throw new SystemError(`rootfs path must be absolute: ${input.rootfs}`);
  const hostNet = input.netnsPath === 'host';
  const privileged = hc.Privileged === true;
  const ipcMode = hc.IpcMode ?? '';
  const pidPrivate = hc.PidMode !== 'host';
  const utsHost = hc.UTSMode === 'host';

  // process
  const entrypoint = strSlice(config.Entrypoint) ?? [];
  const cmd = strSlice(config.Cmd) ?? [];
  let args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new InvalidParameter('No command specified');
  const initMounts: OciMount[] = [];
  if (hc.Init === true && pidPrivate) {
    if (!input.initPath) throw new InvalidParameter('HostConfig.Init is not supported by skiff: it has no init binary');
    args = [INIT_PATH_IN_CONTAINER, '--', ...args];
    initMounts.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: input.initPath, options: ['bind', 'ro'] });
  }
  const caps = computeCapabilities(hc, input.boundingCaps ?? ALL_CAPABILITIES);
  const security = parseSecurityOpt(hc.SecurityOpt ?? []);
  const process: OciSpec['process'] = {
    terminal: config.Tty === true,
    user: { uid: input.user.uid, gid: input.user.gid, additionalGids: [...input.user.additionalGids] },
    args,
    env: containerEnv(config),
    cwd: config.WorkingDir || '/',
    // Like Docker since 20.10.14: no inheritable set; a non-root user gets only the
    // bounding set, so it has no capabilities, exactly as after execve of a non-root binary.
    capabilities: input.user.uid === 0 ? { bounding: caps, effective: [...caps], permitted: [...caps] } : { bounding: caps },
    oomScoreAdj: hc.OomScoreAdj ?? 0,
  };
  const [height = 0, width = 0] = hc.ConsoleSize ?? [];
  if (process.terminal && height > 0 && width > 0) process.consoleSize = { height, width };
  if (security.noNewPrivileges) process.noNewPrivileges = true;
  if ((hc.Ulimits ?? []).length > 0) process.rlimits = buildRlimits(hc.Ulimits ?? [], input.hostRlimits ?? {});

  // mounts: Docker's defaults, minus those a user mount replaces, then the
  // network files, then the user's mounts (parents first).
  type Pending = { mount: OciMount; propagation: string };
  const user: Pending[] = [];
  const bind = (source: string, destination: string, readOnly: boolean, propagation: string, nonRecursive = false): Pending => {
    const options = [nonRecursive ? 'bind' : 'rbind'];
    if (readOnly) options.push('ro');
    options.push(propagation);
    return { mount: { destination, type: 'bind', source, options }, propagation };
  };
  const addBind = (source: string, destination: string, readOnly: boolean, propagation: string, nonRecursive = false): void => {
    user.push(bind(source, destination, readOnly, propagation, nonRecursive));
  };
  const requested = requestedMounts(hc);
  for (const m of requested) {
    if (m.type === 'bind') addBind(m.source, m.destination, m.readOnly, m.propagation, m.nonRecursive);
    else if (m.type === 'tmpfs') user.push({ mount: { destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: m.tmpfsOptions }, propagation: 'rprivate' });
  }
  const volumes = input.volumes ?? [];
  for (const req of volumeRequests(config, hc)) {
    if (!volumes.some((v) => v.destination === req.destination)) {
      throw new SystemError(`volume ${req.name || '(anonymous)'} for ${req.destination} was not resolved`);
    }
  }
  for (const v of volumes) addBind(v.source, cleanDestination(v.destination, v.destination), v.readOnly, v.propagation ?? 'rprivate');
  const seen = new Set<string>();
  for (const { mount } of user) {
    if (seen.has(mount.destination)) throw new InvalidParameter(`Duplicate mount point: ${mount.destination}`);
    seen.add(mount.destination);
  }
  const networkFiles: Array<[string | undefined, string]> = [
    [input.resolvPath, '/etc/resolv.conf'],
    [input.hostnamePath, '/etc/hostname'],
    [input.hostsPath, '/etc/hosts'],
  ];
  const network: Pending[] = [];
  for (const [source, destination] of networkFiles) {
    if (source !== undefined && !seen.has(destination)) {
      network.push(bind(source, destination, hc.ReadonlyRootfs === true, 'rprivate'));
      seen.add(destination);
    }
  }
  for (const m of initMounts) {
    user.push({ mount: m, propagation: 'rprivate' });
    seen.add(m.destination);
  }
  // The network files first, then the user's mounts; a stable sort by depth
  // puts every mount after the ones it is nested in (a bind at /etc comes
  // before /etc/hosts, as with Docker's sort).
  const depth = (p: string): number => p.split('/').length;
  const userMounts = [...network, ...user]
    .map((u, i) => ({ ...u, i }))
    .sort((a, b) => depth(a.mount.destination) - depth(b.mount.destination) || a.i - b.i);

  const devMounted = seen.has('/dev');
  const mounts: OciMount[] = [];
  for (const m of defaultMounts()) {
    if (seen.has(m.destination)) continue;
    if (devMounted && m.destination.startsWith('/dev/')) continue;
    if (m.destination === '/dev/shm') {
      if (ipcMode === 'none' || ipcMode === 'host') continue;
      m.options.push(`size=${hc.ShmSize || DEFAULT_SHM_SIZE}`);
    }
    mounts.push(m);
  }
  if (ipcMode === 'host' && !seen.has('/dev/shm') && !devMounted) {
    // The host's IPC namespace comes with the host's /dev/shm, as with Docker.
    mounts.push({ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
  }
  let rootfsPropagation: string | undefined;
  for (const { mount, propagation } of userMounts) {
    mounts.push(mount);
    if (propagation === 'shared' || propagation === 'rshared') rootfsPropagation = 'shared';
    else if ((propagation === 'slave' || propagation === 'rslave') && rootfsPropagation !== 'shared') rootfsPropagation = 'rslave';
  }
  if (hc.ReadonlyRootfs) {
    for (const m of mounts) {
      if (['/proc', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev'].includes(m.destination) || seen.has(m.destination)) continue;
      if (!m.options.includes('ro')) m.options.push('ro');
    }
  }
  if (privileged) {
    for (const m of mounts) if (m.destination === '/sys' || m.type === 'cgroup') removeOption(m, 'ro');
  }

  // namespaces, in Docker's order
  const namespaces: OciSpec['linux']['namespaces'] = [{ type: 'mount' }];
  if (!hostNet) namespaces.push(input.netnsPath !== undefined ? { type: 'network', path: input.netnsPath } : { type: 'network' });
  if (!utsHost) namespaces.push({ type: 'uts' });
  if (pidPrivate) namespaces.push({ type: 'pid' });
  if (ipcMode !== 'host') namespaces.push({ type: 'ipc' });
  if (hc.CgroupnsMode === 'private') namespaces.push({ type: 'cgroup' });

  // sysctls: Docker's two network defaults in a private network namespace, then the request's
  const sysctl: Record<string, string> = {};
  if (config.Domainname && !utsHost) sysctl['kernel.domainname'] = config.Domainname;
  const exists = input.sysctlExists ?? (() => true);
  if (!hostNet) {
    if (exists('net.ipv4.ping_group_range')) sysctl['net.ipv4.ping_group_range'] = '0 2147483647';
    if (exists('net.ipv4.ip_unprivileged_port_start')) sysctl['net.ipv4.ip_unprivileged_port_start'] = '0';
  }
  for (const [k, v] of Object.entries(hc.Sysctls ?? {})) {
    checkSysctl(k, { hostNetwork: hostNet, hostIpc: ipcMode === 'host', hostUts: utsHost });
    sysctl[k] = v;
  }

  // devices
  const devices: OciDevice[] = [];
  let deviceRules: OciDeviceCgroup[];
  const resolve = (d: DeviceMapping): OciDevice[] => {
    if (!input.resolveDevice) throw new SystemError('buildSpec: HostConfig.Devices needs a resolveDevice callback');
    return mappedDevices(d, input.resolveDevice);
  };
  if (privileged) {
    for (const d of input.hostDevices ?? []) {
      devices.push({ path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid });
    }
    for (const d of hc.Devices ?? []) {
      // Already there when mapped at the same path (all host devices are).
      if (input.hostDevices && (d.PathInContainer || d.PathOnHost) === d.PathOnHost) continue;
      for (const dev of resolve(d)) if (!devices.some((x) => x.path === dev.path)) devices.push(dev);
    }
    deviceRules = [{ allow: true, access: 'rwm' }];
  } else {
    deviceRules = DEFAULT_DEVICE_RULES.map((r) => ({ ...r }));
    for (const d of hc.Devices ?? []) {
      for (const dev of resolve(d)) {
        devices.push(dev);
        if (dev.type !== 'p') deviceRules.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access: d.CgroupPermissions || 'rwm' });
      }
    }
    for (const r of hc.DeviceCgroupRules ?? []) deviceRules.push(parseDeviceCgroupRule(r));
  }

  // resources
  const resources: OciResources = { devices: deviceRules };
  const memory: NonNullable<OciResources['memory']> = {};
  if ((hc.Memory ?? 0) > 0) memory.limit = hc.Memory;
  if ((hc.MemoryReservation ?? 0) > 0) memory.reservation = hc.MemoryReservation;
  if ((hc.MemorySwap ?? 0) > 0) memory.swap = hc.MemorySwap;
  if (hc.MemorySwappiness !== undefined && hc.MemorySwappiness !== null && hc.MemorySwappiness >= 0) memory.swappiness = hc.MemorySwappiness;
  if (hc.OomKillDisable === true) memory.disableOOMKiller = true;
  if (Object.keys(memory).length > 0) resources.memory = memory;
  const cpu: NonNullable<OciResources['cpu']> = {};
  if ((hc.CpuShares ?? 0) > 0) cpu.shares = hc.CpuShares;
  if ((hc.NanoCpus ?? 0) > 0) {
    cpu.period = CPU_PERIOD_US;
    cpu.quota = Math.floor(((hc.NanoCpus ?? 0) * CPU_PERIOD_US) / 1e9);
  }
  if ((hc.CpuPeriod ?? 0) !== 0) cpu.period = hc.CpuPeriod;
  if ((hc.CpuQuota ?? 0) !== 0) cpu.quota = hc.CpuQuota;
  if (hc.CpusetCpus) cpu.cpus = hc.CpusetCpus;
  if (hc.CpusetMems) cpu.mems = hc.CpusetMems;
  if (Object.keys(cpu).length > 0) resources.cpu = cpu;
  // 0 or -1 mean "no limit": leave pids out (crun on cgroup v1 refuses to write -1 to pids.max).
  if (hc.PidsLimit !== undefined && hc.PidsLimit !== null && hc.PidsLimit > 0) resources.pids = { limit: hc.PidsLimit };

  const linux: OciSpec['linux'] = {
    sysctl,
    resources,
    cgroupsPath: input.cgroupsPath,
    namespaces,
    devices,
  };
  const masked = hc.MaskedPaths ?? (privileged ? [] : DEFAULT_MASKED_PATHS);
  const readonly = hc.ReadonlyPaths ?? (privileged ? [] : DEFAULT_READONLY_PATHS);
  if (masked.length > 0) linux.maskedPaths = [...masked];
  if (readonly.length > 0) linux.readonlyPaths = [...readonly];
  if (rootfsPropagation) linux.rootfsPropagation = rootfsPropagation;

  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process,
    root: { path: input.rootfs, readonly: hc.ReadonlyRootfs === true },
    mounts,
    linux,
  };
  if (!utsHost && config.Hostname) spec.hostname = config.Hostname;
  return spec;
}

const RLIM_INFINITY_MARK = '__skiff_RLIM_INFINITY__';

/** config.json text: JSON.stringify, except that RLIM_INFINITY is written exactly (18446744073709551615). */
export function specToJSON(spec: OciSpec, indent?: number): string {
  return JSON.stringify(spec, (_key, value: unknown) => (value === RLIM_INFINITY ? RLIM_INFINITY_MARK : value), indent)
    .split(`"${RLIM_INFINITY_MARK}"`)
    .join('18446744073709551615');
}
