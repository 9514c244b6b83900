// Platforms ("linux/arm/v7"): parsing, normalising and choosing a manifest-list entry, with the
// rules of containerd's platforms package as dockerd uses them when it pulls.
//
// Normal form (what every function here returns, and what matching compares):
//   - os and architecture lowercase; aliases mapped (aarch64 → arm64, x86_64 / x86-64 → amd64,
//     i386 → 386, armhf → arm/v7, armel → arm/v6, macos → darwin);
//   - arm always has a variant: none, "7" → v7; "5", "6", "8" → v5, v6, v8;
//   - arm64 never carries the baseline variant: "8", "v8", "v8.0" → none; "9", "9.0", "v9.0" → v9;
//   - amd64 "v1" (the baseline) → none.
// So `linux/arm64/v8` and `linux/arm64` are the same platform, formatted `linux/arm64`, and
// `linux/arm` is formatted `linux/arm/v7`.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { InvalidParameter } from '../errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux',
  'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos',
]);

const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64',
  'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64',
  's390', 's390x', 'sparc', 'sparc64', 'wasm',
]);

const OS_COMPONENT_RE = /^[A-Za-z0-9_-]+$/;
const COMPONENT_RE = /^[A-Za-z0-9_.-]+$/;

function invalid(message: string): InvalidParameter {
  // containerd wraps its errdefs.ErrInvalidArgument, whose text is "invalid argument".
  return new InvalidParameter(`${message}: invalid argument`);
}

function normalizeOS(value: string): string {
  const v = value.toLowerCase();
  return v === 'macos' ? 'darwin' : v;
}

function normalizeArch(arch: string, variant: string): { architecture: string; variant: string } {
  let a = arch.toLowerCase();
  let v = variant.toLowerCase();
  switch (a) {
    case 'i386':
      a = '386';
      v = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      a = 'amd64';
      if (v === 'v1') v = '';
      break;
    case 'aarch64':
    case 'arm64':
      a = 'arm64';
      if (v === '8' || v === 'v8' || v === 'v8.0') v = '';
      else if (v === '9' || v === '9.0' || v === 'v9.0') v = 'v9';
      break;
    case 'armhf':
      a = 'arm';
      v = 'v7';
      break;
    case 'armel':
      a = 'arm';
      v = 'v6';
      break;
    case 'arm':
      if (v === '' || v === '7') v = 'v7';
      else if (v === '5' || v === '6' || v === '8') v = `v${v}`;
      break;
  }
  return { architecture: a, variant: v };
}

function make(osName: string, architecture: string, variant: string): Platform {
  return variant === '' ? { os: osName, architecture } : { os: osName, architecture, variant };
}

/** Brings a platform (from a manifest list, a config, a flag) to the normal form described above. */
export function normalizePlatform(p: Platform): Platform {
  const { architecture, variant } = normalizeArch(p.architecture, p.variant ?? '');
  return make(normalizeOS(p.os), architecture, variant);
}

/**
 * Parses a `--platform` / `?platform=` value: `os`, `arch`, `os/arch` or `os/arch/variant`.
 * A lone OS takes the host's architecture, a lone architecture the host's OS (`host` defaults to
 * hostPlatform()). Errors carry containerd's messages, as dockerd returns them.
 */
export function parsePlatform(s: string, host?: Platform): Platform {
  if (s.includes('*')) throw invalid(`${JSON.stringify(s)}: wildcards not yet supported`);
  const parts = splitN(s, '/', 4);
  const first = parts[0] ?? '';
  if (!OS_COMPONENT_RE.test(first)) {
    throw invalid(
      `${JSON.stringify(first)} is an invalid OS component of ${JSON.stringify(s)}: ` +
        `OSAndVersion specifier component must match ${JSON.stringify(OS_COMPONENT_RE.source)}`,
    );
  }
  for (const part of parts.slice(1)) {
    if (!COMPONENT_RE.test(part)) {
      throw invalid(
        `${JSON.stringify(part)} is an invalid component of ${JSON.stringify(s)}: ` +
          `platform specifier component must match ${JSON.stringify(COMPONENT_RE.source)}`,
      );
    }
  }
  const osName = normalizeOS(first);
  switch (parts.length) {
    case 1: {
      const h = host ?? hostPlatform();
      if (KNOWN_OS.has(osName)) return make(osName, h.architecture, h.variant ?? '');
      const { architecture, variant } = normalizeArch(first, '');
      if (KNOWN_ARCH.has(architecture)) return make(h.os, architecture, variant);
      throw invalid(`${JSON.stringify(s)}: unknown operating system or architecture`);
    }
    case 2: {
      const { architecture, variant } = normalizeArch(parts[1] ?? '', '');
      return make(osName, architecture, variant);
    }
    case 3: {
      const { architecture, variant } = normalizeArch(parts[1] ?? '', parts[2] ?? '');
      return make(osName, architecture, variant);
    }
    default:
      throw invalid(`${JSON.stringify(s)}: cannot parse platform specifier`);
  }
}

/** Go's strings.SplitN. */
function splitN(s: string, sep: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (out.length < n - 1) {
    const i = rest.indexOf(sep);
    if (i < 0) break;
    out.push(rest.slice(0, i));
    rest = rest.slice(i + sep.length);
  }
  out.push(rest);
  return out;
}

/** `linux/arm/v7`, `linux/arm64`; `unknown` without an OS (like containerd's Format). */
export function formatPlatform(p: Platform): string {
  if (p.os === '') return 'unknown';
  return [p.os, p.architecture, p.variant ?? ''].filter((x) => x !== '').join('/');
}

// --- the host ---------------------------------------------------------------------------------

function goOS(platform: string): string {
  switch (platform) {
    case 'win32':
      return 'windows';
    case 'sunos':
      return 'solaris';
    default:
      return platform; // linux, darwin, freebsd, openbsd, aix, android
  }
}

function goArch(nodeArch: string): string {
  switch (nodeArch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'mipsel':
      return 'mipsle';
    case 'ppc64':
      return os.endianness() === 'LE' ? 'ppc64le' : 'ppc64';
    default:
      return nodeArch; // arm, arm64, riscv64, s390x, loong64, mips, ppc, s390
  }
}

/** The value of the first `key : value` line of /proc/cpuinfo whose key matches (any case). */
function cpuinfoField(text: string, key: string): string | undefined {
  for (const line of text.split('\n')) {
    const parts = line.split(':');
    if (parts.length > 1 && (parts[0] ?? '').trim().toLowerCase() === key.toLowerCase()) {
      return (parts[1] ?? '').trim();
    }
  }
  return undefined;
}

/** containerd's reading of uname -m when /proc/cpuinfo has no "CPU architecture" line. */
function variantFromMachine(machine: string): string | undefined {
  const m = machine.toLowerCase();
  if (m === 'aarch64') return '8';
  if (m.startsWith('armv') && m.length >= 5) return m.slice(4, 5);
  return undefined;
}

/** The ARM architecture revision of the CPU, as a variant (v5 ... v8); v7 when it cannot tell. */
function armVariant(cpuinfo: string, nodeArch: string, machine: () => string): string {
  let raw = cpuinfoField(cpuinfo, 'CPU architecture') ?? variantFromMachine(machine()) ?? '';
  // Raspberry Pi OS on an ARMv6 board (Pi Zero / 1) can report architecture 7; the model
  // name tells the truth, and containerd believes it.
  if (nodeArch === 'arm' && raw === '7') {
    const model = cpuinfoField(cpuinfo, 'model name');
    if (model !== undefined && model.toLowerCase().startsWith('armv6-compatible')) raw = '6';
  }
  switch (raw.toLowerCase()) {
    case '8':
    case 'aarch64':
      return 'v8';
    case '7':
    case '7m':
    case '?(12)':
    case '?(13)':
    case '?(14)':
    case '?(15)':
    case '?(16)':
    case '?(17)':
      return 'v7';
    case '6':
    case '6tej':
      return 'v6';
    case '5':
    case '5t':
    case '5te':
    case '5tej':
      return 'v5';
    default:
      return 'v7';
  }
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

let cachedHost: Platform | undefined;

/**
 * The platform this process runs on, in normal form: process.arch mapped to Go's names, and for
 * 32-bit ARM the variant read from /proc/cpuinfo like containerd does ("CPU architecture: 7" →
 * v7, an ARMv6-compatible model name → v6, "8" → v8: a 32-bit userland on an ARMv8 CPU is
 * arm/v8, which selectPlatform serves with arm/v8, then arm/v7, v6, v5 images). arm64 needs no
 * variant. The parameters exist for tests; by default /proc/cpuinfo and uname -m are read.
 */
export function hostPlatform(cpuinfo?: string, nodeArch: string = process.arch, machine?: string): Platform {
  const defaults = cpuinfo === undefined && nodeArch === process.arch && machine === undefined;
  if (defaults && cachedHost !== undefined) return { ...cachedHost };
  const architecture = goArch(nodeArch);
  let variant = '';
  if (architecture === 'arm') {
    variant = armVariant(cpuinfo ?? readCpuinfo(), nodeArch, () => machine ?? os.machine());
  }
  const p = normalizePlatform(make(goOS(process.platform), architecture, variant));
  if (defaults) cachedHost = { ...p };
  return p;
}

// --- matching ---------------------------------------------------------------------------------

/**
 * The variants a host of this (normalised) platform runs, best first: arm/v8 → v8, v7, v6, v5;
 * arm/v7 → v7, v6, v5; arm/v6 → v6, v5; amd64/v3 → v3, v2, baseline. Anything else: itself.
 */
function acceptedVariants(want: Platform): string[] {
  const variant = want.variant ?? '';
  const n = /^v(\d+)$/.exec(variant);
  if (want.architecture === 'arm' && n !== null) {
    const out: string[] = [];
    for (let v = Number(n[1]); v >= 5; v--) out.push(`v${v}`);
    return out.length > 0 ? out : [variant];
  }
  if (want.architecture === 'amd64' && n !== null) {
    const out: string[] = [];
    for (let v = Number(n[1]); v >= 2; v--) out.push(`v${v}`);
    out.push('');
    return out;
  }
  return [variant];
}

/** Rank of `candidate` for a host wanting `want`: 0 is an exact match, -1 no match. */
function rank(want: Platform, candidate: Platform): number {
  const w = normalizePlatform(want);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return -1;
  return acceptedVariants(w).indexOf(c.variant ?? '');
}

/**
 * Whether an image built for `candidate` runs on `want`: same OS and architecture (after
 * normalisation), and the candidate's variant is want's or, for arm (and amd64 levels), a
 * lower one. arm/v6 does not take arm/v7; arm64 and arm64/v8 are the same.
 */
export function matches(want: Platform, candidate: Platform): boolean {
  return rank(want, candidate) >= 0;
}

/**
 * The entry of a manifest list / OCI index to pull for `want`: exact variant first, then lower
 * variants in descending order; entries without a platform are skipped; among equally good
 * entries the first in list order wins. Undefined when nothing matches.
 */
export function selectPlatform<T extends { platform?: Platform }>(entries: T[], want: Platform): T | undefined {
  let best: T | undefined;
  let bestRank = Infinity;
  for (const entry of entries) {
    if (entry.platform === undefined) continue;
    const r = rank(want, entry.platform);
    if (r >= 0 && r < bestRank) {
      best = entry;
      bestRank = r;
    }
  }
  return best;
}
