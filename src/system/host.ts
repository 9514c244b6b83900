// Facts about the host that `docker info` and `docker version` report.
// Read from /proc, /sys and /etc so the figures are real on every board.
import { readdirSync, readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function osRelease(): { prettyName: string; versionId: string } {
  const text = readText('/etc/os-release') ?? readText('/usr/lib/os-release') ?? '';
  const get = (k: string) => {
    const m = new RegExp(`^${k}=(.*)$`, 'm').exec(text);
    return m ? (m[1] as string).replace(/^"(.*)"$/, '$1') : '';
  };
  return { prettyName: get('PRETTY_NAME') || 'Linux', versionId: get('VERSION_ID') };
}

/** uname -m: x86_64, aarch64, armv7l, armv6l (qemu-user reports the emulated CPU). */
export function machine(): string {
  return os.machine();
}

/** Go's GOARCH names, which Docker reports as Arch. */
export function goArch(): string {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    default:
      return process.arch;
  }
}

const FS_MAGIC: Record<number, string> = {
  0xef53: 'extfs',
  0x01021994: 'tmpfs',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0xf2f52010: 'f2fs',
  0x794c7630: 'overlayfs',
  0x73717368: 'squashfs',
  0x6969: 'nfs',
  0x65735546: 'fuse',
  0x4d44: 'msdos',
  0x858458f6: 'ramfs',
  0x63677270: 'cgroup2',
  0x27e0eb: 'cgroup',
};

export function filesystemType(path: string): string {
  try {
    const t = statfsSync(path).type;
    return FS_MAGIC[t >>> 0] ?? `0x${(t >>> 0).toString(16)}`;
  } catch {
    return 'unknown';
  }
}

export function cgroupVersion(): '1' | '2' {
  return filesystemType('/sys/fs/cgroup') === 'cgroup2' ? '2' : '1';
}

/** Whether the memory controller exists: Docker's MemoryLimit. */
export function memoryCgroup(): boolean {
  if (cgroupVersion() === '2') return (readText('/sys/fs/cgroup/cgroup.controllers') ?? '').split(/\s+/).includes('memory');
  return readText('/sys/fs/cgroup/memory/memory.limit_in_bytes') !== undefined;
}

export function swapLimit(): boolean {
  if (cgroupVersion() === '2') return readText('/sys/fs/cgroup/init.scope/memory.swap.max') !== undefined || memoryCgroup();
  return readText('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes') !== undefined;
}

export function ipv4Forwarding(): boolean {
  return (readText('/proc/sys/net/ipv4/ip_forward') ?? '0').trim() === '1';
}

export function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

export function cpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** RFC 3339 with nanoseconds and the local offset, as Go prints SystemTime. */
export function rfc3339Nano(d: Date = new Date()): string {
  const off = -d.getTimezoneOffset();
  const pad = (n: number, w = 2) => String(Math.trunc(Math.abs(n))).padStart(w, '0');
  const base =
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}000000`;
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${pad(off / 60)}:${pad(off % 60)}`;
  return base + zone;
}
