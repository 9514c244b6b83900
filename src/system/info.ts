// `GET /version` and `GET /info` bodies in Docker's shapes. The figures come
// from the host, the daemon's configuration and the stores' counts.
import os from 'node:os';
import type { DaemonConfig } from '../daemon/config.js';
import { API_VERSION, BUILD_TIME, GIT_COMMIT, MIN_API_VERSION, VERSION } from '../version.js';
import * as host from './host.js';

export interface VersionComponent {
  Name: string;
  Version: string;
  Details?: Record<string, string>;
}

export interface VersionInfo {
  Platform: { Name: string };
  Components: VersionComponent[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  Experimental?: boolean;
  BuildTime: string;
  /** balenaEngine's extra field; balena-supervisor checks it to use deltas. */
  Engine: string;
}

export interface Counts {
  containers: { running: number; paused: number; stopped: number };
  images: number;
}

export type SystemInfo = Record<string, unknown>;

const RUNTIME_VERSION = `node${process.versions.node}`;

export function versionInfo(experimental: boolean): VersionInfo {
  // The same facts appear top-level and in the Engine component, as in moby.
  const facts = {
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: GIT_COMMIT,
    GoVersion: RUNTIME_VERSION,
    Os: 'linux',
    Arch: host.goArch(),
    KernelVersion: os.release(),
    BuildTime: BUILD_TIME,
  };
  const v: VersionInfo = {
    Platform: { Name: `skiff ${VERSION}` },
    Components: [
      { Name: 'Engine', Version: VERSION, Details: { ...facts, Experimental: String(experimental) } },
      { Name: 'skiff', Version: VERSION, Details: { GitCommit: GIT_COMMIT, Node: process.version } },
    ],
    Version: VERSION,
    ...facts,
    Engine: 'balena-engine',
  };
  if (experimental) v.Experimental = true;
  return v;
}

export interface InfoInput {
  config: DaemonConfig;
  dataRoot: string;
  engineId: string;
  counts: Counts;
  eventListeners: number;
}

export function systemInfo(input: InfoInput): SystemInfo {
  const { config, counts } = input;
  const rel = host.osRelease();
  const c = counts.containers;
  const insecureCidrs = ['127.0.0.0/8', ...config.insecureRegistries.filter((r) => r.includes('/'))];
  const indexConfigs: Record<string, unknown> = {
    'docker.io': { Name: 'docker.io', Mirrors: config.registryMirrors, Secure: true, Official: true },
  };
  for (const r of config.insecureRegistries.filter((r) => !r.includes('/'))) {
    indexConfigs[r] = { Name: r, Mirrors: [], Secure: false, Official: false };
  }
  const runtimes: Record<string, unknown> = {};
  for (const [name, r] of Object.entries(config.runtimes)) {
    runtimes[name] = r.runtimeArgs.length > 0 ? { path: r.path, runtimeArgs: r.runtimeArgs } : { path: r.path };
  }
  const memoryLimit = host.memoryCgroup();
  const swapLimit = host.swapLimit();
  const warnings: string[] = [];
  if (!memoryLimit) warnings.push('WARNING: No memory limit support');
  if (!swapLimit) warnings.push('WARNING: No swap limit support');

  return {
    ID: input.engineId,
    Containers: c.running + c.paused + c.stopped,
    ContainersRunning: c.running,
    ContainersPaused: c.paused,
    ContainersStopped: c.stopped,
    Images: counts.images,
    Driver: 'overlay2',
    DriverStatus: [
      ['Backing Filesystem', host.filesystemType(input.dataRoot)],
      ['Supports d_type', 'true'],
      ['Native Overlay Diff', 'true'],
      ['userxattr', 'false'],
    ],
    Plugins: {
      Volume: ['local'],
      Network: ['bridge', 'host', 'null'],
      Authorization: null,
      Log: ['json-file', 'local'],
    },
    MemoryLimit: memoryLimit,
    SwapLimit: swapLimit,
    KernelMemory: false,
    KernelMemoryTCP: false,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: host.ipv4Forwarding(),
    BridgeNfIptables: false,
    BridgeNfIp6tables: false,
    Debug: config.logLevel === 'debug',
    NFd: host.openFds(),
    OomKillDisable: false,
    NGoroutines: process.getActiveResourcesInfo().length,
    SystemTime: host.rfc3339Nano(),
    LoggingDriver: config.logDriver,
    CgroupDriver: 'cgroupfs',
    CgroupVersion: host.cgroupVersion(),
    NEventsListener: input.eventListeners,
    KernelVersion: os.release(),
    OperatingSystem: rel.prettyName,
    OSVersion: rel.versionId,
    OSType: 'linux',
    Architecture: host.machine(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: {
      AllowNondistributableArtifactsCIDRs: [],
      AllowNondistributableArtifactsHostnames: [],
      InsecureRegistryCIDRs: insecureCidrs,
      IndexConfigs: indexConfigs,
      Mirrors: config.registryMirrors,
    },
    NCPU: host.cpuCount(),
    MemTotal: os.totalmem(),
    GenericResources: null,
    DockerRootDir: input.dataRoot,
    HttpProxy: process.env.HTTP_PROXY ?? process.env.http_proxy ?? '',
    HttpsProxy: process.env.HTTPS_PROXY ?? process.env.https_proxy ?? '',
    NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? '',
    Name: os.hostname(),
    Labels: [],
    ExperimentalBuild: config.experimental,
    ServerVersion: VERSION,
    Runtimes: runtimes,
    DefaultRuntime: config.defaultRuntime,
    Swarm: {
      NodeID: '',
      NodeAddr: '',
      LocalNodeState: 'inactive',
      ControlAvailable: false,
      Error: '',
      RemoteManagers: null,
    },
    LiveRestoreEnabled: config.liveRestore,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: 'N/A', Expected: 'N/A' },
    RuncCommit: { ID: 'N/A', Expected: 'N/A' },
    InitCommit: { ID: 'N/A', Expected: 'N/A' },
    SecurityOptions: [],
    Warnings: warnings,
  };
}
