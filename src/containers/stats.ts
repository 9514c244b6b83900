// `docker stats`: a container's resource use read from its cgroup (v1, or v2
// when the host has it), in the Engine API's shape. The CLI computes CPU %
// from cpu_stats against precpu_stats, so samples carry both.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

const USER_HZ = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function num(path: string): number {
  const v = read(path)?.trim();
  return v && /^\d+$/.test(v) ? Number(v) : 0;
}

function keyed(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v && /^\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** Host CPU time in ns since boot, as Docker reports system_cpu_usage. */
function systemCpu(): number {
  const line = (read('/proc/stat') ?? '').split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const ticks = line.trim().split(/\s+/).slice(1, 8).reduce((n, v) => n + Number(v), 0);
  return (ticks * 1e9) / USER_HZ;
}

export interface CpuStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[]; usage_in_kernelmode: number; usage_in_usermode: number };
  system_cpu_usage: number;
  online_cpus: number;
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number };
}

export interface StatsSample {
  read: string;
  preread: string;
  pids_stats: { current?: number; limit?: number };
  blkio_stats: Record<string, null>;
  num_procs: number;
  storage_stats: Record<string, never>;
  cpu_stats: CpuStats;
  precpu_stats: CpuStats;
  memory_stats: { usage?: number; max_usage?: number; stats?: Record<string, number>; limit?: number };
  name: string;
  id: string;
}

function emptyCpu(): CpuStats {
  return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, system_cpu_usage: 0, online_cpus: 0, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
}

/** One sample of the container whose cgroup path (relative to each hierarchy) is `cgroup`. */
export function sample(id: string, name: string, cgroup: string, running: boolean, prev?: StatsSample): StatsSample {
  const now = new Date().toISOString();
  const base: StatsSample = {
    read: running ? now : '0001-01-01T00:00:00Z',
    preread: prev?.read ?? '0001-01-01T00:00:00Z',
    pids_stats: {},
    blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: emptyCpu(),
    precpu_stats: prev?.cpu_stats ?? emptyCpu(),
    memory_stats: {},
    name: `/${name}`,
    id,
  };
  if (!running) return base;
  const v2 = read(`/sys/fs/cgroup${cgroup}/cgroup.controllers`) !== undefined;
  if (v2) {
    const dir = `/sys/fs/cgroup${cgroup}`;
    const cpu = keyed(read(`${dir}/cpu.stat`));
    base.cpu_stats.cpu_usage = { total_usage: (cpu.usage_usec ?? 0) * 1000, usage_in_kernelmode: (cpu.system_usec ?? 0) * 1000, usage_in_usermode: (cpu.user_usec ?? 0) * 1000 };
    base.cpu_stats.throttling_data = { periods: cpu.nr_periods ?? 0, throttled_periods: cpu.nr_throttled ?? 0, throttled_time: (cpu.throttled_usec ?? 0) * 1000 };
    const max = read(`${dir}/memory.max`)?.trim();
    base.memory_stats = { usage: num(`${dir}/memory.current`), stats: keyed(read(`${dir}/memory.stat`)), ...(max && max !== 'max' ? { limit: Number(max) } : {}) };
    base.pids_stats = { current: num(`${dir}/pids.current`) };
  } else {
    const acct = `/sys/fs/cgroup/cpuacct${cgroup}`;
    const percpu = (read(`${acct}/cpuacct.usage_percpu`) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    const st = keyed(read(`${acct}/cpuacct.stat`));
    base.cpu_stats.cpu_usage = {
      total_usage: num(`${acct}/cpuacct.usage`),
      ...(percpu.length ? { percpu_usage: percpu } : {}),
      usage_in_kernelmode: ((st.system ?? 0) * 1e9) / USER_HZ,
      usage_in_usermode: ((st.user ?? 0) * 1e9) / USER_HZ,
    };
    const thr = keyed(read(`/sys/fs/cgroup/cpu${cgroup}/cpu.stat`));
    base.cpu_stats.throttling_data = { periods: thr.nr_periods ?? 0, throttled_periods: thr.nr_throttled ?? 0, throttled_time: thr.throttled_time ?? 0 };
    const mem = `/sys/fs/cgroup/memory${cgroup}`;
    base.memory_stats = { usage: num(`${mem}/memory.usage_in_bytes`), max_usage: num(`${mem}/memory.max_usage_in_bytes`), stats: keyed(read(`${mem}/memory.stat`)), limit: num(`${mem}/memory.limit_in_bytes`) };
    base.pids_stats = { current: num(`/sys/fs/cgroup/pids${cgroup}/pids.current`) };
  }
  base.cpu_stats.system_cpu_usage = systemCpu();
  base.cpu_stats.online_cpus = cpus().length;
  return base;
}
