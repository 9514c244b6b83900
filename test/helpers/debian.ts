// Fixture images made of Debian's busybox-static packages, one per
// architecture, with nothing from the internet but Debian's own archive
// (apt-get with the system's sources list and a private state directory, so
// the system's apt configuration and lists are never touched). The .debs are
// cached under ${SKIFF_FIXTURE_CACHE:-$HOME/.cache/skiff-fixtures}, so only the
// first run needs the network. A failed download is an error with a clear
// message, never a silent skip.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { makeLayer, type Layer, type LayerEntry, type Platform, type PushedImage, type Pusher } from './registry.js';

export type DebianArch = 'amd64' | 'arm64' | 'armhf' | 'armel';

export interface ArchInfo {
  deb: DebianArch;
  /** The platform of the image (as in Docker's official busybox list: arm64 carries variant v8). */
  platform: Platform;
  /** The platform string to ask for with `--platform`. */
  pullPlatform: string;
  /** ELF e_machine of bin/busybox: 62 x86-64, 183 AArch64, 40 ARM. */
  elfMachine: number;
  /** ELF class: 2 for 64-bit, 1 for 32-bit. */
  elfClass: 1 | 2;
}

export const DEBIAN_ARCHES: readonly ArchInfo[] = [
  { deb: 'amd64', platform: { os: 'linux', architecture: 'amd64' }, pullPlatform: 'linux/amd64', elfMachine: 62, elfClass: 2 },
  { deb: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, pullPlatform: 'linux/arm64', elfMachine: 183, elfClass: 2 },
  { deb: 'armhf', platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, pullPlatform: 'linux/arm/v7', elfMachine: 40, elfClass: 1 },
  { deb: 'armel', platform: { os: 'linux', architecture: 'arm', variant: 'v6' }, pullPlatform: 'linux/arm/v6', elfMachine: 40, elfClass: 1 },
];

/** The applets linked to bin/busybox (symlinks `bin/<applet> -> busybox`). */
export const APPLETS = [
  'sh', 'ash', 'ls', 'cat', 'echo', 'true', 'false', 'env', 'id', 'uname', 'hostname', 'mkdir', 'rm', 'rmdir',
  'cp', 'mv', 'ln', 'chmod', 'chown', 'touch', 'sleep', 'ps', 'kill', 'grep', 'sed', 'awk', 'head', 'tail',
  'wc', 'sort', 'uniq', 'tr', 'cut', 'find', 'xargs', 'tar', 'gzip', 'gunzip', 'wget', 'vi', 'date', 'df',
  'du', 'mount', 'umount', 'ping', 'test', '[', '[[', 'printf', 'pwd', 'which', 'whoami', 'yes', 'top',
] as const;

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'bin:x:2:2:bin:/bin:/bin/false',
  'sys:x:3:3:sys:/dev:/bin/false',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
  '',
].join('\n');

const GROUP = ['root:x:0:', 'daemon:x:1:', 'bin:x:2:', 'sys:x:3:', 'tty:x:5:', 'wheel:x:10:root', 'nogroup:x:65534:', ''].join('\n');

export function fixtureCacheDir(): string {
  return process.env.SKIFF_FIXTURE_CACHE ?? join(homedir(), '.cache', 'skiff-fixtures');
}

function aptOptions(cache: string, arch: DebianArch): string[] {
  const state = join(cache, 'apt', arch);
  return [
    '-q',
    '-o', `APT::Architecture=${arch}`,
    '-o', `APT::Architectures::=${arch}`,
    '-o', `Dir::State::Lists=${join(state, 'lists')}`,
    '-o', `Dir::Cache=${join(state, 'cache')}`,
    // A private directory owned by root: no _apt sandbox (its warning is noise).
    '-o', 'APT::Sandbox::User=root',
  ];
}

function runAsync(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, out: `${out}${err.message}\n` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const inflight = new Map<DebianArch, Promise<string>>();

/**
 * The path of Debian's busybox-static .deb for `arch`, from the cache or downloaded
 * with apt-get (system sources list, private lists/cache dirs). Throws a clear error
 * when Debian's archive cannot be reached.
 */
export function busyboxDeb(arch: DebianArch): Promise<string> {
  let p = inflight.get(arch);
  if (!p) {
    p = downloadDeb(arch);
    inflight.set(arch, p);
    p.catch(() => inflight.delete(arch));
  }
  return p;
}

async function downloadDeb(arch: DebianArch): Promise<string> {
  const cache = fixtureCacheDir();
  const final = join(cache, `busybox-static_${arch}.deb`);
  if (existsSync(final)) return final;
  const state = join(cache, 'apt', arch);
  const work = join(state, `download-${process.pid}`);
  for (const d of [join(state, 'lists', 'partial'), join(state, 'cache', 'archives', 'partial'), work]) mkdirSync(d, { recursive: true });
  const opts = aptOptions(cache, arch);
  const fail = (step: string, r: { code: number | null; out: string }): Error =>
    new Error(
      `cannot download Debian's busybox-static for ${arch} (\`apt-get ${step}\` exited ${r.code}). ` +
        `The busybox e2e fixtures need Debian's package archive (the system's apt sources), or the .debs ` +
        `already cached as ${cache}/busybox-static_<arch>.deb (set SKIFF_FIXTURE_CACHE to use another directory).\n` +
        r.out.trim(),
    );
  try {
    // One failed index (a mirror mid-sync, say bookworm-security's) makes `update` exit 100 even
    // though main's list arrived: retry once, then let `download` decide.
    let update = await runAsync('apt-get', [...opts, 'update'], work, 180_000);
    if (update.code !== 0) update = await runAsync('apt-get', [...opts, 'update'], work, 180_000);
    const dl = await runAsync('apt-get', [...opts, 'download', 'busybox-static'], work, 180_000);
    const deb = readdirSync(work).find((n) => n.startsWith('busybox-static_') && n.endsWith('.deb'));
    if (dl.code !== 0 || !deb) {
      const out = `apt-get update (exit ${update.code}):\n${update.out.trim().split('\n').slice(-6).join('\n')}\napt-get download:\n${dl.out}${deb ? '' : 'no .deb was written'}`;
      throw fail('download busybox-static', { code: dl.code, out });
    }
    renameSync(join(work, deb), final);
    return final;
  } finally {
    rmSync(work, { recursive: true, force: true });
    // The package lists (~20 MB an architecture) are only needed to download once.
    if (existsSync(final)) {
      rmSync(state, { recursive: true, force: true });
      try {
        rmdirSync(join(cache, 'apt'));
      } catch {
        // another architecture is still downloading
      }
    }
  }
}

/** Version and Architecture fields of a .deb. */
export function debFields(deb: string): { version: string; architecture: string } {
  const r = spawnSync('dpkg-deb', ['-f', deb, 'Version', 'Architecture'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dpkg-deb -f ${deb}: ${r.stderr || r.error?.message}`);
  const get = (k: string) => new RegExp(`^${k}: (.*)$`, 'm').exec(r.stdout)?.[1]?.trim() ?? '';
  return { version: get('Version'), architecture: get('Architecture') };
}

/** bin/busybox of a busybox-static .deb (dpkg-deb --fsys-tarfile read with tar-stream). */
export async function extractBusybox(deb: string): Promise<Buffer> {
  const r = spawnSync('dpkg-deb', ['--fsys-tarfile', deb], { maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`dpkg-deb --fsys-tarfile ${deb}: ${r.stderr?.toString() || r.error?.message}`);
  const ex = extract();
  let found: Buffer | undefined;
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      const isBusybox = header.type === 'file' && header.name.replace(/^\.?\//, '') === 'bin/busybox';
      stream.on('data', (c: unknown) => {
        if (isBusybox) chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        if (isBusybox) found = Buffer.concat(chunks);
        next();
      });
      stream.on('error', reject);
    });
    ex.on('finish', () => resolve());
    ex.on('error', reject);
  });
  ex.end(r.stdout);
  await done;
  if (!found) throw new Error(`${deb} has no bin/busybox`);
  return found;
}

/** ELF class (1 = 32-bit, 2 = 64-bit) and e_machine of an executable's first bytes. */
export function elfHeader(buf: Buffer): { elfClass: number; machine: number } {
  if (buf.length < 20 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  const le = buf[5] === 1;
  return { elfClass: buf[4] as number, machine: le ? buf.readUInt16LE(18) : buf.readUInt16BE(18) };
}

/** The rootfs entries of a busybox image around the given binary (deterministic). */
export function busyboxEntries(busybox: Buffer): LayerEntry[] {
  return [
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', data: busybox, mode: 0o755 },
    ...APPLETS.map((a): LayerEntry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/group', data: GROUP },
    { name: 'etc/passwd', data: PASSWD },
    { name: 'home/', type: 'directory' },
    { name: 'root/', type: 'directory', mode: 0o700 },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'usr/', type: 'directory' },
    { name: 'usr/sbin/', type: 'directory' },
    { name: 'var/', type: 'directory' },
    { name: 'var/spool/', type: 'directory' },
    { name: 'var/spool/mail/', type: 'directory' },
    { name: 'var/www/', type: 'directory' },
  ];
}

/**
 * What Docker's overlay2 reports as a layer's size (moby pkg/directory.Size over the
 * unpacked diff: every non-directory's lstat size, hard links once, so a symlink counts
 * the length of its target).
 */
export function dockerLayerSize(entries: LayerEntry[]): number {
  let n = 0;
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') n += Buffer.from(e.data ?? '').length;
    else if (type === 'symlink') n += Buffer.byteLength(e.linkname ?? '');
  }
  return n;
}

/** Sum of the regular files only (what a tool that ignores symlinks would report). */
export function regularFilesSize(entries: LayerEntry[]): number {
  return entries.filter((e) => (e.type ?? 'file') === 'file').reduce((n, e) => n + Buffer.from(e.data ?? '').length, 0);
}

export interface BusyboxArch extends ArchInfo {
  deb_path: string;
  /** Debian's package version, e.g. 1:1.35.0-4+deb12u1+b1. */
  version: string;
  busybox: Buffer;
  entries: LayerEntry[];
  layer: Layer;
}

const built = new Map<DebianArch, Promise<BusyboxArch>>();

/** The .deb (cached or downloaded), its bin/busybox and the rootfs layer for one architecture. */
export function busyboxArch(arch: DebianArch): Promise<BusyboxArch> {
  let p = built.get(arch);
  if (!p) {
    p = (async () => {
      const info = DEBIAN_ARCHES.find((a) => a.deb === arch);
      if (!info) throw new Error(`unknown Debian architecture ${arch}`);
      const deb = await busyboxDeb(arch);
      const fields = debFields(deb);
      if (fields.architecture !== arch) throw new Error(`${deb} is for ${fields.architecture}, not ${arch}`);
      const busybox = await extractBusybox(deb);
      const elf = elfHeader(busybox);
      if (elf.machine !== info.elfMachine || elf.elfClass !== info.elfClass) {
        throw new Error(`${deb}: bin/busybox is ELF class ${elf.elfClass} machine ${elf.machine}, expected ${info.elfClass}/${info.elfMachine}`);
      }
      const entries = busyboxEntries(busybox);
      return { ...info, deb_path: deb, version: fields.version, busybox, entries, layer: await makeLayer(entries) };
    })();
    built.set(arch, p);
    p.catch(() => built.delete(arch));
  }
  return p;
}

export interface DebianBusyboxImage extends PushedImage {
  arch: BusyboxArch;
}

export interface DebianBusybox {
  repo: string;
  tag: string;
  /** The manifest list (Docker schema 2 list) pushed as repo:tag. */
  list: { digest: string; body: Buffer; mediaType: string };
  /** Per platform string (`linux/amd64`, `linux/arm64`, `linux/arm/v7`, `linux/arm/v6`), in list order. */
  images: Map<string, DebianBusyboxImage>;
}

export interface PushDebianBusyboxOptions {
  repo?: string;
  tag?: string;
  /** Also tag every per-arch image as `<tag>-<debian arch>` (e.g. latest-arm64). */
  archTags?: boolean;
  labels?: Record<string, string>;
}

/**
 * Pushes one image per architecture (untagged unless `archTags`) and a manifest list
 * `test/busybox:latest` over them (linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6).
 */
export async function pushDebianBusybox(reg: Pusher, opts: PushDebianBusyboxOptions = {}): Promise<DebianBusybox> {
  const repo = opts.repo ?? 'test/busybox';
  const tag = opts.tag ?? 'latest';
  // Download all four in parallel (each is an `apt-get update` + `download`): a few seconds cold.
  const arches = await Promise.all(DEBIAN_ARCHES.map((a) => busyboxArch(a.deb)));
  const images = new Map<string, DebianBusyboxImage>();
  for (const arch of arches) {
    const pushed = await reg.pushImage(repo, opts.archTags ? `${tag}-${arch.deb}` : undefined, [arch.layer], arch.platform, {
      config: { cmd: ['sh'], ...(opts.labels ? { labels: opts.labels } : {}) },
    });
    images.set(arch.pullPlatform, { ...pushed, arch });
  }
  const list = await reg.pushIndex(repo, tag, [...images.values()]);
  return { repo, tag, list, images };
}
