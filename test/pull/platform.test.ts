import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidParameter } from '../../src/errors.js';
import {
  formatPlatform,
  hostPlatform,
  matches,
  normalizePlatform,
  parsePlatform,
  selectPlatform,
  type Platform,
} from '../../src/pull/platform.js';

const ARMV6_HOST: Platform = { os: 'linux', architecture: 'arm', variant: 'v6' };
const AMD64_HOST: Platform = { os: 'linux', architecture: 'amd64' };

function fails(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidParameter, `expected InvalidParameter, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

test('parsePlatform normalises like containerd', () => {
  const cases: [string, string][] = [
    // input → formatted normal form
    ['linux/arm/v7', 'linux/arm/v7'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/arm/v5', 'linux/arm/v5'],
    ['linux/arm/8', 'linux/arm/v8'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/arm64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm64/8', 'linux/arm64'],
    ['linux/arm64/v8.0', 'linux/arm64'],
    ['linux/arm64/v8.2', 'linux/arm64/v8.2'],
    ['linux/arm64/9', 'linux/arm64/v9'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/x86-64', 'linux/amd64'],
    ['linux/amd64/v1', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'],
    ['linux/i386', 'linux/386'],
    ['linux/386', 'linux/386'],
    ['linux/riscv64', 'linux/riscv64'],
    ['linux/s390x', 'linux/s390x'],
    ['LINUX/AMD64', 'linux/amd64'],
    ['Linux/ARM/V7', 'linux/arm/v7'],
    ['macos/arm64', 'darwin/arm64'],
    ['windows/amd64', 'windows/amd64'],
    // os/arch pairs are not checked against a list, as in containerd.
    ['foo/bar', 'foo/bar'],
    // A lone architecture takes the host's OS.
    ['arm64', 'linux/arm64'],
    ['aarch64', 'linux/arm64'],
    ['amd64', 'linux/amd64'],
    ['x86_64', 'linux/amd64'],
    ['arm', 'linux/arm/v7'],
    ['armhf', 'linux/arm/v7'],
    ['armel', 'linux/arm/v6'],
    ['i386', 'linux/386'],
  ];
  for (const [input, want] of cases) {
    assert.equal(formatPlatform(parsePlatform(input, AMD64_HOST)), want, input);
  }
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
});

test('a lone OS takes the host architecture and variant', () => {
  assert.deepEqual(parsePlatform('linux', ARMV6_HOST), ARMV6_HOST);
  assert.deepEqual(parsePlatform('linux', AMD64_HOST), AMD64_HOST);
  assert.deepEqual(parsePlatform('windows', AMD64_HOST), { os: 'windows', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('amd64', { os: 'freebsd', architecture: 'arm64' }), { os: 'freebsd', architecture: 'amd64' });
  // Without a host given, the real host is used.
  assert.deepEqual(parsePlatform('linux'), hostPlatform());
});

test('invalid platforms are refused with containerd\'s messages', () => {
  const cases: [string, string][] = [
    ['foo', '"foo": unknown operating system or architecture: invalid argument'],
    ['armv9', '"armv9": unknown operating system or architecture: invalid argument'],
    ['foo/bar/baz/qux', '"foo/bar/baz/qux": cannot parse platform specifier: invalid argument'],
    // Like Go's SplitN(s, "/", 4): the fourth part keeps its slashes and fails the component check.
    ['linux/arm/v7/extra/more', '"extra/more" is an invalid component of "linux/arm/v7/extra/more": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument'],
    ['linux/*', '"linux/*": wildcards not yet supported: invalid argument'],
    ['', '"" is an invalid OS component of "": OSAndVersion specifier component must match "^[A-Za-z0-9_-]+$": invalid argument'],
    ['li.nux/amd64', '"li.nux" is an invalid OS component of "li.nux/amd64": OSAndVersion specifier component must match "^[A-Za-z0-9_-]+$": invalid argument'],
    ['linux/', '"" is an invalid component of "linux/": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument'],
    ['linux//v7', '"" is an invalid component of "linux//v7": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument'],
    ['linux/arm!', '"arm!" is an invalid component of "linux/arm!": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument'],
    ['linux/arm/v 7', '"v 7" is an invalid component of "linux/arm/v 7": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument'],
  ];
  for (const [input, message] of cases) fails(() => parsePlatform(input, AMD64_HOST), message);
});

test('formatPlatform', () => {
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64' }), 'linux/arm64');
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: '' }), 'linux/arm64');
  assert.equal(formatPlatform({ os: '', architecture: 'amd64' }), 'unknown');
});

test('normalizePlatform', () => {
  assert.deepEqual(normalizePlatform({ os: 'Linux', architecture: 'AArch64', variant: 'V8' }), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'i386', variant: 'whatever' }), { os: 'linux', architecture: '386' });
  const p: Platform = { os: 'LINUX', architecture: 'x86_64' };
  normalizePlatform(p);
  assert.deepEqual(p, { os: 'LINUX', architecture: 'x86_64' }, 'the argument is not modified');
});

const PI4_32BIT = `processor\t: 0
model name\t: ARMv7 Processor rev 3 (v7l)
BogoMIPS\t: 108.00
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2711
Revision\t: c03111
`;

const PI_ZERO = `processor\t: 0
model name\t: ARMv6-compatible processor rev 7 (v6l)
BogoMIPS\t: 697.95
Features\t: half thumb fastmult vfp edsp java tls
CPU implementer\t: 0x41
CPU architecture: 7
CPU variant\t: 0x0
CPU part\t: 0xb76
CPU revision\t: 7
`;

test('hostPlatform reads the ARM variant from /proc/cpuinfo like containerd', () => {
  const arm = (cpuinfo: string, machine = 'armv7l') => formatPlatform(hostPlatform(cpuinfo, 'arm', machine));
  const os = hostPlatform().os;
  assert.equal(arm(PI4_32BIT), `${os}/arm/v7`);
  assert.equal(arm(PI_ZERO, 'armv6l'), `${os}/arm/v6`, 'an ARMv6-compatible model name wins over architecture 7');
  assert.equal(arm('CPU architecture: 6\n'), `${os}/arm/v6`);
  assert.equal(arm('CPU architecture: 5TEJ\n'), `${os}/arm/v5`);
  assert.equal(arm('cpu architecture : 7\n'), `${os}/arm/v7`, 'the key is matched in any case');
  // A 32-bit userland on an ARMv8 CPU (a Pi 3/4 with a 32-bit OS): arm/v8, served v8 then v7 images.
  assert.equal(arm('CPU architecture: 8\n', 'armv8l'), `${os}/arm/v8`);
  // No "CPU architecture" line: uname -m decides.
  assert.equal(arm('', 'armv6l'), `${os}/arm/v6`);
  assert.equal(arm('', 'armv7l'), `${os}/arm/v7`);
  assert.equal(arm('', 'aarch64'), `${os}/arm/v8`);
  // Nothing useful at all: v7, the default of the arm architecture.
  assert.equal(arm('', 'unknown'), `${os}/arm/v7`);
  assert.equal(arm('CPU architecture: banana\n'), `${os}/arm/v7`);

  assert.deepEqual(hostPlatform('CPU architecture: 8\n', 'arm64', 'aarch64'), { os, architecture: 'arm64' });
  assert.deepEqual(hostPlatform('', 'x64'), { os, architecture: 'amd64' });
  assert.deepEqual(hostPlatform('', 'ia32'), { os, architecture: '386' });
  assert.deepEqual(hostPlatform('', 'riscv64'), { os, architecture: 'riscv64' });
});

test('hostPlatform() describes this machine', () => {
  const h = hostPlatform();
  const want = { x64: 'amd64', ia32: '386' }[process.arch as string] ?? process.arch;
  assert.equal(h.architecture, want);
  assert.equal(h.os, process.platform === 'win32' ? 'windows' : process.platform);
  assert.deepEqual(hostPlatform(), h, 'stable between calls');
});

test('matches: same OS and architecture, arm variants downwards only', () => {
  const p = (s: string) => parsePlatform(s, AMD64_HOST);
  const cases: [string, Platform, boolean][] = [
    ['linux/arm/v7', p('linux/arm/v7'), true],
    ['linux/arm/v7', p('linux/arm/v6'), true],
    ['linux/arm/v7', p('linux/arm/v5'), true],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm' }, true],
    ['linux/arm/v7', p('linux/arm/v8'), false],
    ['linux/arm/v6', p('linux/arm/v7'), false],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm' }, false],
    ['linux/arm/v6', p('linux/arm/v5'), true],
    ['linux/arm/v8', p('linux/arm/v7'), true],
    ['linux/arm/v8', p('linux/arm/v8'), true],
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, true],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64' }, true],
    ['linux/arm64', { os: 'Linux', architecture: 'aarch64' }, true],
    ['linux/arm64', p('linux/arm/v7'), false],
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8.2' }, false],
    ['linux/amd64', { os: 'linux', architecture: 'x86_64' }, true],
    ['linux/amd64', p('linux/386'), false],
    ['linux/amd64', p('linux/amd64/v2'), false],
    ['linux/amd64/v3', p('linux/amd64/v2'), true],
    ['linux/amd64/v3', p('linux/amd64'), true],
    ['linux/amd64/v2', p('linux/amd64/v3'), false],
    ['linux/amd64', p('windows/amd64'), false],
    ['linux/amd64', { os: 'unknown', architecture: 'unknown' }, false],
  ];
  for (const [want, candidate, ok] of cases) {
    assert.equal(matches(p(want), candidate), ok, `${want} takes ${JSON.stringify(candidate)}`);
  }
});

interface Entry {
  name: string;
  platform?: Platform;
}

test('selectPlatform picks the best entry in Docker\'s order', () => {
  const list: Entry[] = [
    { name: 'no platform' },
    { name: 'amd64', platform: { os: 'linux', architecture: 'amd64' } },
    { name: 'arm-v5', platform: { os: 'linux', architecture: 'arm', variant: 'v5' } },
    { name: 'arm-v6', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { name: 'arm-v7', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { name: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { name: 'ppc64le', platform: { os: 'linux', architecture: 'ppc64le' } },
    { name: 'attestation', platform: { os: 'unknown', architecture: 'unknown' } },
  ];
  const pick = (entries: Entry[], want: string) => selectPlatform(entries, parsePlatform(want, AMD64_HOST))?.name;
  assert.equal(pick(list, 'linux/arm/v7'), 'arm-v7');
  assert.equal(pick(list, 'linux/arm/v6'), 'arm-v6');
  assert.equal(pick(list, 'linux/arm/v5'), 'arm-v5');
  assert.equal(pick(list, 'linux/arm/v8'), 'arm-v7');
  assert.equal(pick(list, 'linux/arm64'), 'arm64');
  assert.equal(pick(list, 'linux/arm64/v8'), 'arm64');
  assert.equal(pick(list, 'linux/amd64'), 'amd64');
  assert.equal(pick(list, 'linux/ppc64le'), 'ppc64le');
  assert.equal(pick(list, 'linux/s390x'), undefined);
  assert.equal(pick(list, 'windows/amd64'), undefined);

  // Lower variants in descending order, whatever the list order.
  const low: Entry[] = [
    { name: 'v5', platform: { os: 'linux', architecture: 'arm', variant: 'v5' } },
    { name: 'v6', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
  ];
  assert.equal(pick(low, 'linux/arm/v7'), 'v6');
  assert.equal(pick(low.slice(0, 1), 'linux/arm/v7'), 'v5');
  assert.equal(pick([{ name: 'v7', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }], 'linux/arm/v6'), undefined);
  // An arm entry without a variant is arm/v7.
  assert.equal(pick([{ name: 'arm', platform: { os: 'linux', architecture: 'arm' } }], 'linux/arm/v7'), 'arm');
  assert.equal(pick([{ name: 'arm', platform: { os: 'linux', architecture: 'arm' } }], 'linux/arm/v6'), undefined);
  // arm64 boards do not fall back to arm, amd64 hosts not to 386.
  assert.equal(pick(low, 'linux/arm64'), undefined);
  assert.equal(pick([{ name: '386', platform: { os: 'linux', architecture: '386' } }], 'linux/amd64'), undefined);
  // Equally good entries: the first one wins.
  const twins: Entry[] = [
    { name: 'first', platform: { os: 'linux', architecture: 'arm64' } },
    { name: 'second', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ];
  assert.equal(pick(twins, 'linux/arm64'), 'first');
  // Aliases in the list are understood.
  assert.equal(pick([{ name: 'x', platform: { os: 'Linux', architecture: 'x86_64' } }], 'linux/amd64'), 'x');
  assert.equal(pick([], 'linux/amd64'), undefined);
  assert.equal(pick([{ name: 'none' }], 'linux/amd64'), undefined);
});
