// Docker create request -> OCI runtime spec: merge rules, user resolution,
// capabilities, mounts, devices, resources, the refusal of what skiff does not
// implement, and a check that real runc accepts and runs what buildSpec writes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { InvalidParameter } from '../../src/errors.js';
import {
  ALL_CAPABILITIES,
  DEFAULT_CAPABILITIES,
  DEFAULT_MASKED_PATHS,
  DEFAULT_PATH,
  DEFAULT_READONLY_PATHS,
  RLIM_INFINITY,
  buildRlimits,
  buildSpec,
  capabilitiesFromMask,
  computeCapabilities,
  containerEnv,
  mergeConfig,
  parseBind,
  parseProcLimits,
  specToJSON,
  validateHostConfig,
  volumeRequests,
  type BuildSpecInput,
  type ContainerConfig,
  type DeviceNode,
  type HostConfig,
  type ImageConfig,
  type OciSpec,
} from '../../src/exec/spec.js';
import { resolveUser } from '../../src/exec/user.js';

const ID = 'f00dbabe1234567890abcdef1234567890abcdef1234567890abcdef12345678';
/** This machine's bounding set: everything but CAP_SYS_RESOURCE. */
const BOUNDING = capabilitiesFromMask('000001fffeffffff');

function isInvalid(re: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof InvalidParameter, `expected InvalidParameter, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  };
}

function spec(hc: HostConfig = {}, extra: Partial<BuildSpecInput> = {}, config: ContainerConfig = {}): OciSpec {
  const merged = mergeConfig({ Cmd: ['/bin/sh'] }, config, { id: ID, hostConfig: hc });
  return buildSpec({
    id: ID,
    name: 'test',
    config: merged,
    hostConfig: validateHostConfig(hc, { init: true }),
    rootfs: '/var/lib/skiff/rootfs',
    user: { uid: 0, gid: 0, additionalGids: [0] },
    hostsPath: '/c/hosts',
    hostnamePath: '/c/hostname',
    resolvPath: '/c/resolv.conf',
    cgroupsPath: `/skiff/${ID}`,
    boundingCaps: BOUNDING,
    hostRlimits: { nofile: [20000, 20000] },
    ...extra,
  });
}

const mount = (s: OciSpec, dest: string) => s.mounts.find((m) => m.destination === dest);

describe('mergeConfig', () => {
  const image: ImageConfig = {
    Env: ['PATH=/opt/bin:/usr/bin:/bin', 'LANG=C.UTF-8', 'A=image'],
    Cmd: ['node', 'app.js'],
    Entrypoint: ['/entry.sh'],
    WorkingDir: '/app',
    User: 'node',
    Labels: { a: 'image', b: 'image' },
    ExposedPorts: { '80/tcp': {} },
    Volumes: { '/data': {} },
    StopSignal: 'SIGQUIT',
    Healthcheck: { Test: ['CMD', 'true'], Interval: 5e9, Retries: 3 },
  };
  const cases: Array<{ name: string; create: ContainerConfig; entrypoint: string[] | null; cmd: string[] | null }> = [
    { name: 'image Cmd and Entrypoint by default', create: {}, entrypoint: ['/entry.sh'], cmd: ['node', 'app.js'] },
    { name: 'Cmd replaces the image Cmd, keeps its Entrypoint', create: { Cmd: ['x'] }, entrypoint: ['/entry.sh'], cmd: ['x'] },
    { name: 'Cmd as a single string', create: { Cmd: 'x y' }, entrypoint: ['/entry.sh'], cmd: ['x y'] },
    { name: 'an Entrypoint resets the image Cmd', create: { Entrypoint: ['/bin/sh'] }, entrypoint: ['/bin/sh'], cmd: null },
    { name: 'Entrypoint and Cmd both given', create: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'x'] }, entrypoint: ['/bin/sh'], cmd: ['-c', 'x'] },
    { name: 'Entrypoint [""] means none', create: { Entrypoint: [''], Cmd: ['ls'] }, entrypoint: null, cmd: ['ls'] },
    { name: 'Entrypoint [] keeps the image Cmd but no entrypoint', create: { Entrypoint: [] }, entrypoint: [], cmd: ['node', 'app.js'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const m = mergeConfig(image, c.create);
      assert.deepEqual(m.Entrypoint, c.entrypoint);
      assert.deepEqual(m.Cmd, c.cmd);
    });
  }

  test('no command at all is a 400', () => {
    assert.throws(() => mergeConfig({}, {}), isInvalid(/^No command specified$/));
    assert.throws(() => mergeConfig(image, { Entrypoint: [''] }), isInvalid(/^No command specified$/));
  });

  test('Env merged by key (create wins), image-only keys appended', () => {
    const m = mergeConfig(image, { Env: ['A=create', 'B=create'] });
    assert.deepEqual(m.Env, ['A=create', 'B=create', 'PATH=/opt/bin:/usr/bin:/bin', 'LANG=C.UTF-8']);
  });

  test('other fields default to the image, maps are unions', () => {
    const m = mergeConfig(image, { Labels: { b: 'create', c: 'create' }, ExposedPorts: { '443/tcp': {} }, Volumes: { '/logs': {} } });
    assert.equal(m.User, 'node');
    assert.equal(m.WorkingDir, '/app');
    assert.equal(m.StopSignal, 'SIGQUIT');
    assert.deepEqual(m.Labels, { a: 'image', b: 'create', c: 'create' });
    assert.deepEqual(Object.keys(m.ExposedPorts ?? {}).sort(), ['443/tcp', '80/tcp']);
    assert.deepEqual(Object.keys(m.Volumes ?? {}).sort(), ['/data', '/logs']);
    assert.deepEqual(m.Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Retries: 3 });
    const o = mergeConfig(image, { User: '1000:1000', WorkingDir: '/srv', StopSignal: 'SIGTERM', Healthcheck: { Timeout: 2e9 } });
    assert.equal(o.User, '1000:1000');
    assert.equal(o.WorkingDir, '/srv');
    assert.equal(o.StopSignal, 'SIGTERM');
    assert.deepEqual(o.Healthcheck, { Test: ['CMD', 'true'], Interval: 5e9, Timeout: 2e9, StartPeriod: undefined, Retries: 3 });
  });

  test('the whole create body may be passed: HostConfig and NetworkingConfig are dropped', () => {
    const body = { Cmd: ['x'], HostConfig: { Privileged: true }, NetworkingConfig: { EndpointsConfig: {} } };
    const m = mergeConfig(image, body);
    assert.ok(!('HostConfig' in m) && !('NetworkingConfig' in m));
    assert.deepEqual(m.Cmd, ['x']);
  });

  test('a relative WorkingDir is a 400', () => {
    assert.throws(() => mergeConfig(image, { WorkingDir: 'app' }), isInvalid(/working directory 'app' is invalid/));
  });

  test('Hostname defaults to the short id, or the host name with host networking', () => {
    assert.equal(mergeConfig(image, {}, { id: ID }).Hostname, ID.slice(0, 12));
    assert.equal(mergeConfig(image, { Hostname: 'box' }, { id: ID }).Hostname, 'box');
    assert.equal(mergeConfig(image, {}, { id: ID, hostConfig: { NetworkMode: 'host' }, hostHostname: 'board' }).Hostname, 'board');
  });

  test("balena's ContainerIDEnv adds <name>=<id>", () => {
    const m = mergeConfig(image, { Env: ['X=1'] }, { id: ID, hostConfig: { ContainerIDEnv: 'MY_ID' } });
    assert.ok(m.Env?.includes(`MY_ID=${ID}`));
    assert.ok(m.Env?.includes('X=1'));
  });

  test('containerEnv: default PATH, HOSTNAME, TERM with a tty; the config overrides; bare KEY unsets', () => {
    assert.deepEqual(containerEnv({ Hostname: 'h', Env: ['A=1'] }), [`PATH=${DEFAULT_PATH}`, 'HOSTNAME=h', 'A=1']);
    assert.deepEqual(containerEnv({ Hostname: 'h', Tty: true, Env: ['PATH=/x', 'TERM=vt100'] }), ['PATH=/x', 'HOSTNAME=h', 'TERM=vt100']);
    assert.deepEqual(containerEnv({ Hostname: 'h', Tty: true, Env: ['HOSTNAME'] }), [`PATH=${DEFAULT_PATH}`, 'TERM=xterm']);
  });
});

describe('resolveUser', () => {
  const passwd = [
    'root:x:0:0:root:/root:/bin/sh',
    'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
    '',
    'node:x:1000:1000:Node:/home/node:/bin/sh',
    'nohome:x:1001:1001::',
  ].join('\n');
  const group = ['root:x:0:', 'dialout:x:20:node,other', 'audio:x:29:node', 'node:x:1000:', 'video:x:44:'].join('\n');
  const cases: Array<{ user: string; add?: string[]; want: { uid: number; gid: number; additionalGids: number[]; home: string } }> = [
    { user: '', want: { uid: 0, gid: 0, additionalGids: [0], home: '/root' } },
    { user: 'root', want: { uid: 0, gid: 0, additionalGids: [0], home: '/root' } },
    { user: 'node', want: { uid: 1000, gid: 1000, additionalGids: [1000, 20, 29], home: '/home/node' } },
    { user: '1000', want: { uid: 1000, gid: 1000, additionalGids: [1000, 20, 29], home: '/home/node' } },
    { user: 'node:video', want: { uid: 1000, gid: 44, additionalGids: [44], home: '/home/node' } },
    { user: 'node:44', want: { uid: 1000, gid: 44, additionalGids: [44], home: '/home/node' } },
    { user: '1234', want: { uid: 1234, gid: 0, additionalGids: [0], home: '/' } },
    { user: '1234:5678', want: { uid: 1234, gid: 5678, additionalGids: [5678], home: '/' } },
    { user: 'nohome', want: { uid: 1001, gid: 1001, additionalGids: [1001], home: '/' } },
    { user: 'node', add: ['video', '20', '4242'], want: { uid: 1000, gid: 1000, additionalGids: [1000, 20, 29, 44, 4242], home: '/home/node' } },
  ];
  for (const c of cases) {
    test(`${JSON.stringify(c.user)}${c.add ? ` + GroupAdd ${c.add.join(',')}` : ''}`, () => {
      assert.deepEqual(resolveUser(c.user, passwd, group, c.add), c.want);
    });
  }
  test('unknown names are 400s with Docker\'s messages', () => {
    assert.throws(() => resolveUser('foo', passwd, group), isInvalid(/^unable to find user foo: no matching entries in passwd file$/));
    assert.throws(() => resolveUser('node:nogroup', passwd, group), isInvalid(/^unable to find group nogroup: no matching entries in group file$/));
    assert.throws(() => resolveUser('node', passwd, group, ['wheel']), isInvalid(/unable to find group wheel/));
    assert.throws(() => resolveUser('99999999999', passwd, group), isInvalid(/range/));
  });
  test('an image without /etc/passwd and /etc/group', () => {
    assert.deepEqual(resolveUser('', undefined, undefined), { uid: 0, gid: 0, additionalGids: [0], home: '/' });
    assert.deepEqual(resolveUser('65534:65534', undefined, undefined), { uid: 65534, gid: 65534, additionalGids: [65534], home: '/' });
    assert.throws(() => resolveUser('nobody', undefined, undefined), isInvalid(/unable to find user nobody/));
  });
});

describe('capabilities', () => {
  const caps = (hc: HostConfig, bounding: readonly string[] = ALL_CAPABILITIES) => computeCapabilities(hc, bounding);
  test("Docker's 14 defaults", () => {
    assert.equal(DEFAULT_CAPABILITIES.length, 14);
    assert.deepEqual(caps({}), DEFAULT_CAPABILITIES);
  });
  const cases: Array<{ name: string; hc: HostConfig; want: string[] }> = [
    { name: 'add with and without prefix, any case', hc: { CapAdd: ['NET_ADMIN', 'cap_sys_ptrace'] }, want: [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE'] },
    { name: 'drop', hc: { CapDrop: ['chown', 'CAP_NET_RAW'] }, want: DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_NET_RAW') },
    { name: 'drop ALL, add some', hc: { CapDrop: ['ALL'], CapAdd: ['KILL', 'setuid'] }, want: ['CAP_KILL', 'CAP_SETUID'] },
    { name: 'add ALL, drop some', hc: { CapAdd: ['all'], CapDrop: ['SYS_ADMIN'] }, want: ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN') },
    { name: 'adding a default twice', hc: { CapAdd: ['CHOWN'] }, want: [...DEFAULT_CAPABILITIES] },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual(caps(c.hc), c.want));

  test('unknown capability is a 400', () => {
    assert.throws(() => caps({ CapAdd: ['FOO'] }), isInvalid(/^unknown capability: "CAP_FOO"$/));
    assert.throws(() => validateHostConfig({ CapDrop: ['cap_bar'] }), isInvalid(/^unknown capability: "CAP_BAR"$/));
  });

  test('privileged and ALL get every capability of the bounding set, nothing else', () => {
    assert.equal(BOUNDING.length, 40);
    assert.ok(!BOUNDING.includes('CAP_SYS_RESOURCE'));
    assert.deepEqual(caps({ Privileged: true }, BOUNDING), BOUNDING);
    assert.deepEqual(caps({ Privileged: true, CapDrop: ['ALL'] }, BOUNDING), BOUNDING);
    assert.deepEqual(caps({ CapAdd: ['ALL'] }, BOUNDING), BOUNDING);
    assert.throws(() => caps({ CapAdd: ['SYS_RESOURCE'] }, BOUNDING), isInvalid(/CAP_SYS_RESOURCE .*bounding set/));
  });

  test('in the spec: root gets bounding/effective/permitted, no inheritable; a user only bounding', () => {
    const root = spec({ CapAdd: ['NET_ADMIN'] });
    const want = [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'];
    assert.deepEqual(root.process.capabilities, { bounding: want, effective: want, permitted: want });
    const user = spec({}, { user: { uid: 1000, gid: 1000, additionalGids: [1000] } });
    assert.deepEqual(user.process.capabilities, { bounding: [...DEFAULT_CAPABILITIES] });
    assert.deepEqual(user.process.user, { uid: 1000, gid: 1000, additionalGids: [1000] });
  });
});

describe('buildSpec defaults', () => {
  const s = spec();
  test('process and root', () => {
    assert.equal(s.ociVersion, '1.0.2');
    assert.deepEqual(s.process.args, ['/bin/sh']);
    assert.equal(s.process.cwd, '/');
    assert.equal(s.process.terminal, false);
    assert.equal(s.process.rlimits, undefined);
    assert.equal(s.process.noNewPrivileges, undefined);
    assert.equal(s.process.oomScoreAdj, 0);
    assert.deepEqual(s.process.env, [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${ID.slice(0, 12)}`]);
    assert.deepEqual(s.root, { path: '/var/lib/skiff/rootfs', readonly: false });
    assert.equal(s.hostname, ID.slice(0, 12));
    assert.equal(s.linux.cgroupsPath, `/skiff/${ID}`);
    assert.equal(JSON.stringify(s).includes('seccomp'), false);
  });
  test("Docker's mounts, then the network files", () => {
    assert.deepEqual(s.mounts, [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'] },
      { destination: '/etc/resolv.conf', type: 'bind', source: '/c/resolv.conf', options: ['rbind', 'rprivate'] },
      { destination: '/etc/hostname', type: 'bind', source: '/c/hostname', options: ['rbind', 'rprivate'] },
      { destination: '/etc/hosts', type: 'bind', source: '/c/hosts', options: ['rbind', 'rprivate'] },
    ]);
  });
  test('masked and read-only paths, namespaces, sysctls, device rules', () => {
    assert.deepEqual(s.linux.maskedPaths, DEFAULT_MASKED_PATHS);
    assert.ok(s.linux.maskedPaths?.includes('/proc/timer_list') && s.linux.maskedPaths.includes('/proc/keys'));
    assert.deepEqual(s.linux.readonlyPaths, DEFAULT_READONLY_PATHS);
    assert.deepEqual(s.linux.namespaces, [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }]);
    assert.deepEqual(s.linux.sysctl, { 'net.ipv4.ping_group_range': '0 2147483647', 'net.ipv4.ip_unprivileged_port_start': '0' });
    assert.deepEqual(s.linux.devices, []);
    assert.deepEqual(s.linux.resources, {
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
        { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
        { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
        { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
      ],
    });
  });
  test('tty, console size, working dir, no-new-privileges, oom score', () => {
    const t = spec({ ConsoleSize: [24, 80], SecurityOpt: ['no-new-privileges'], OomScoreAdj: 500 }, {}, { Tty: true, WorkingDir: '/srv', Domainname: 'example.com' });
    assert.equal(t.process.terminal, true);
    assert.deepEqual(t.process.consoleSize, { height: 24, width: 80 });
    assert.equal(t.process.cwd, '/srv');
    assert.ok(t.process.env.includes('TERM=xterm'));
    assert.equal(t.process.noNewPrivileges, true);
    assert.equal(t.process.oomScoreAdj, 500);
    assert.equal(t.linux.sysctl['kernel.domainname'], 'example.com');
    assert.equal(spec({ SecurityOpt: ['no-new-privileges=false', 'seccomp=unconfined', 'label=disable'] }).process.noNewPrivileges, undefined);
    assert.throws(() => spec({ SecurityOpt: ['seccomp=/p.json'] }), isInvalid(/seccomp=\/p.json.*not supported/));
    assert.throws(() => spec({ SecurityOpt: ['bogus'] }), isInvalid(/invalid --security-opt/));
  });
});

describe('privileged', () => {
  const node = (path: string, major: number, minor: number): DeviceNode & { path: string } => ({ path, type: 'c', major, minor, fileMode: 0o20660, uid: 0, gid: 20 });
  const s = spec({ Privileged: true }, { hostDevices: [node('/dev/ttyUSB0', 188, 0), node('/dev/null', 1, 3)] });
  test('no masked or read-only paths, /sys and cgroups writable, every device', () => {
    assert.equal(s.linux.maskedPaths, undefined);
    assert.equal(s.linux.readonlyPaths, undefined);
    assert.deepEqual(mount(s, '/sys')?.options, ['nosuid', 'noexec', 'nodev']);
    assert.deepEqual(mount(s, '/sys/fs/cgroup')?.options, ['nosuid', 'noexec', 'nodev']);
    assert.deepEqual(s.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
    assert.deepEqual(s.linux.devices.map((d) => d.path), ['/dev/ttyUSB0', '/dev/null']);
    assert.deepEqual(s.process.capabilities.bounding, BOUNDING);
  });
  test('explicit MaskedPaths still apply (as in Docker)', () => {
    assert.deepEqual(spec({ Privileged: true, MaskedPaths: ['/proc/kcore'] }).linux.maskedPaths, ['/proc/kcore']);
    assert.deepEqual(spec({ MaskedPaths: [], ReadonlyPaths: ['/proc/sys'] }).linux.maskedPaths, undefined);
  });
});

describe('mounts', () => {
  test('Binds: host paths (ro, propagation), named volumes, anonymous volumes', () => {
    assert.deepEqual(parseBind('/data:/data:ro'), {
      type: 'bind', source: '/data', destination: '/data', readOnly: true, propagation: 'rprivate', nonRecursive: false, noCopy: false, tmpfsOptions: [],
    });
    assert.equal(parseBind('/a/:/b/').destination, '/b');
    assert.equal(parseBind('/run/dbus:/host/run/dbus:rw,rslave').propagation, 'rslave');
    assert.deepEqual({ ...parseBind('myvol:/n:ro,nocopy') }, {
      type: 'volume', source: 'myvol', destination: '/n', readOnly: true, propagation: 'rprivate', nonRecursive: false, noCopy: true, tmpfsOptions: [],
    });
    assert.equal(parseBind('/anon').type, 'volume');
    assert.equal(parseBind('/anon').source, '');
    const bad = ['/a:/b:ro,rw', '/a:/b:xyz', 'a:b:c:d', '/a:relative', '/a:/', 'bad name!:/x', '/a:/b:nocopy', '/x:rw'];
    for (const b of bad) assert.throws(() => parseBind(b), InvalidParameter, b);
  });

  test('every kind, in order, with their options', () => {
    const hc: HostConfig = {
      Binds: ['/host/data:/data:ro', 'named:/named', '/host/dev/bus:/dev/bus:rshared'],
      Mounts: [
        { Type: 'bind', Source: '/host/cfg', Target: '/etc/app', ReadOnly: true, BindOptions: { NonRecursive: true } },
        { Type: 'volume', Source: 'other', Target: '/data/other' },
        { Type: 'tmpfs', Target: '/run', TmpfsOptions: { SizeBytes: 16 * 1024 * 1024, Mode: 0o1777 } },
      ],
      Tmpfs: { '/tmp': 'rw,exec,size=65536k' },
    };
    const config: ContainerConfig = { Volumes: { '/anon': {}, '/data': {} } };
    const merged = mergeConfig({ Cmd: ['sh'] }, config, { id: ID });
    const requests = volumeRequests(merged, hc);
    assert.deepEqual(requests, [
      { name: 'named', destination: '/named', readOnly: false, noCopy: false },
      { name: 'other', destination: '/data/other', readOnly: false, noCopy: false },
      { name: '', destination: '/anon', readOnly: false, noCopy: false },
    ]);
    const volumes = requests.map((r) => ({ source: `/var/lib/skiff/volumes/${r.name || 'anon'}/_data`, destination: r.destination, readOnly: r.readOnly }));
    const s = spec(hc, { volumes }, config);
    // After Docker's 7: parents before children, network files before user mounts of the same depth.
    const net = (f: string) => ({ destination: `/etc/${f}`, type: 'bind', source: `/c/${f}`, options: ['rbind', 'rprivate'] });
    assert.deepEqual(s.mounts.slice(7), [
      { destination: '/data', type: 'bind', source: '/host/data', options: ['rbind', 'ro', 'rprivate'] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=16m', 'mode=1777'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'rprivate', 'rw', 'exec', 'size=65536k'] },
      { destination: '/named', type: 'bind', source: '/var/lib/skiff/volumes/named/_data', options: ['rbind', 'rprivate'] },
      { destination: '/anon', type: 'bind', source: '/var/lib/skiff/volumes/anon/_data', options: ['rbind', 'rprivate'] },
      net('resolv.conf'),
      net('hostname'),
      net('hosts'),
      { destination: '/dev/bus', type: 'bind', source: '/host/dev/bus', options: ['rbind', 'rshared'] },
      { destination: '/etc/app', type: 'bind', source: '/host/cfg', options: ['bind', 'ro', 'rprivate'] },
      { destination: '/data/other', type: 'bind', source: '/var/lib/skiff/volumes/other/_data', options: ['rbind', 'rprivate'] },
    ]);
    assert.equal(s.linux.rootfsPropagation, 'shared');
  });

  test('an unresolved volume, a duplicate mount point', () => {
    assert.throws(() => spec({ Binds: ['named:/n'] }), /volume named for \/n was not resolved/);
    assert.throws(() => spec({ Binds: ['/a:/x', '/b:/x'] }), isInvalid(/^Duplicate mount point: \/x$/));
    assert.throws(() => spec({ Binds: ['/a:/x'], Tmpfs: { '/x': '' } }), isInvalid(/Duplicate mount point/));
  });

  test('user mounts replace defaults and network files; ShmSize; IpcMode none/host', () => {
    const s = spec({ Binds: ['/my/hosts:/etc/hosts:ro'], Tmpfs: { '/dev/shm': 'size=1g' } });
    assert.deepEqual(s.mounts.filter((m) => m.destination === '/etc/hosts'), [{ destination: '/etc/hosts', type: 'bind', source: '/my/hosts', options: ['rbind', 'ro', 'rprivate'] }]);
    assert.equal(s.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
    assert.equal(mount(s, '/dev/shm')?.source, 'tmpfs');
    assert.ok(mount(spec({ ShmSize: 1048576 }), '/dev/shm')?.options.includes('size=1048576'));
    assert.equal(mount(spec({ IpcMode: 'none' }), '/dev/shm'), undefined);
    const host = spec({ IpcMode: 'host' });
    assert.deepEqual(mount(host, '/dev/shm'), { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
    assert.ok(!host.linux.namespaces.some((n) => n.type === 'ipc'));
    const dev = spec({ Binds: ['/dev:/dev'] });
    assert.deepEqual(dev.mounts.filter((m) => m.destination.startsWith('/dev')).map((m) => m.destination), ['/dev']);
  });

  test('ReadonlyRootfs: root and non-user mounts read-only, network files too, user mounts as asked', () => {
    const s = spec({ ReadonlyRootfs: true, Binds: ['/w:/w'], Tmpfs: { '/tmp': '' } });
    assert.equal(s.root.readonly, true);
    for (const d of ['/proc', '/dev', '/dev/pts', '/dev/mqueue', '/dev/shm', '/w', '/tmp']) {
      assert.ok(!mount(s, d)?.options.includes('ro'), d);
    }
    for (const d of ['/sys', '/sys/fs/cgroup', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf']) {
      assert.ok(mount(s, d)?.options.includes('ro'), d);
    }
  });

  test('Init bind-mounts the init binary and runs the command under it', () => {
    const s = spec({ Init: true }, { initPath: '/usr/libexec/skiff-init' });
    assert.deepEqual(s.process.args, ['/sbin/docker-init', '--', '/bin/sh']);
    assert.deepEqual(mount(s, '/sbin/docker-init'), { destination: '/sbin/docker-init', type: 'bind', source: '/usr/libexec/skiff-init', options: ['bind', 'ro'] });
    assert.throws(() => validateHostConfig({ Init: true }), isInvalid(/Init is not supported/));
    assert.doesNotThrow(() => validateHostConfig({ Init: true }, { init: true }));
  });
});

describe('namespaces and sysctls', () => {
  test('network: a given path, host, or a new empty one', () => {
    const joined = spec({}, { netnsPath: '/run/netns/skiff-1' });
    assert.deepEqual(joined.linux.namespaces[1], { type: 'network', path: '/run/netns/skiff-1' });
    const host = spec({ NetworkMode: 'host' }, { netnsPath: 'host' });
    assert.ok(!host.linux.namespaces.some((n) => n.type === 'network'));
    assert.deepEqual(host.linux.sysctl, {});
  });
  test('PidMode/UTSMode host, CgroupnsMode private', () => {
    const s = spec({ PidMode: 'host', UTSMode: 'host', CgroupnsMode: 'private' });
    assert.deepEqual(s.linux.namespaces.map((n) => n.type), ['mount', 'network', 'ipc', 'cgroup']);
    assert.equal(s.hostname, undefined);
    assert.throws(() => validateHostConfig({ PidMode: 'container:abc' }), isInvalid(/PidMode "container:abc"/));
  });
  test('Sysctls: namespaced ones only', () => {
    const s = spec({ Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000', 'fs.mqueue.msg_max': '20', 'net.ipv4.ping_group_range': '1 1' } });
    assert.equal(s.linux.sysctl['net.ipv4.ip_forward'], '1');
    assert.equal(s.linux.sysctl['net.ipv4.ping_group_range'], '1 1');
    assert.equal(s.linux.sysctl['kernel.shmmax'], '1000');
    assert.throws(() => validateHostConfig({ Sysctls: { 'vm.swappiness': '1' } }), isInvalid(/"vm.swappiness" is not allowed/));
    assert.throws(() => validateHostConfig({ NetworkMode: 'host', Sysctls: { 'net.core.somaxconn': '1' } }), isInvalid(/host's network/));
    assert.throws(() => spec({ Sysctls: { 'net.core.somaxconn': '1' } }, { netnsPath: 'host' }), isInvalid(/host's network/));
    const none = spec({}, { sysctlExists: (n) => n !== 'net.ipv4.ip_unprivileged_port_start' });
    assert.deepEqual(Object.keys(none.linux.sysctl), ['net.ipv4.ping_group_range']);
  });
});

describe('resources', () => {
  test('memory, cpu, pids numbers', () => {
    const s = spec({
      Memory: 128 * 1024 * 1024,
      MemoryReservation: 64 * 1024 * 1024,
      MemorySwap: 256 * 1024 * 1024,
      MemorySwappiness: 10,
      OomKillDisable: true,
      NanoCpus: 1_500_000_000,
      CpuShares: 512,
      CpusetCpus: '0-1',
      CpusetMems: '0',
      PidsLimit: 100,
    });
    assert.deepEqual(s.linux.resources.memory, { limit: 134217728, reservation: 67108864, swap: 268435456, swappiness: 10, disableOOMKiller: true });
    assert.deepEqual(s.linux.resources.cpu, { shares: 512, period: 100000, quota: 150000, cpus: '0-1', mems: '0' });
    assert.deepEqual(s.linux.resources.pids, { limit: 100 });
  });
  test('explicit period/quota, unlimited pids, defaults send nothing', () => {
    const s = spec({ CpuPeriod: 50000, CpuQuota: 25000, PidsLimit: 0, MemorySwap: -1, MemorySwappiness: -1 });
    assert.deepEqual(s.linux.resources.cpu, { period: 50000, quota: 25000 });
    // 0 means no limit: nothing is sent (crun on cgroup v1 refuses -1 in pids.max).
    assert.equal(s.linux.resources.pids, undefined);
    assert.equal(s.linux.resources.memory, undefined);
    assert.deepEqual(Object.keys(spec({ PidsLimit: null }).linux.resources), ['devices']);
  });
  const bad: Array<[HostConfig, RegExp]> = [
    [{ Memory: 1024 }, /Minimum memory limit allowed is 6MB/],
    [{ Memory: 64 << 20, MemorySwap: 32 << 20 }, /memoryswap limit should be larger/],
    [{ MemorySwap: 64 << 20 }, /always set the Memory limit/],
    [{ Memory: 64 << 20, MemoryReservation: 128 << 20 }, /can not be less than memory reservation/],
    [{ NanoCpus: 1e9, CpuQuota: 50000 }, /Nano CPUs and CPU Quota/],
    [{ NanoCpus: 1e9, CpuPeriod: 50000 }, /Nano CPUs and CPU Period/],
    [{ CpuPeriod: 10 }, /CPU cfs period/],
    [{ CpuQuota: 10 }, /CPU cfs quota/],
    [{ OomScoreAdj: 2000 }, /range for oom score adj/],
    [{ MemorySwappiness: 101 }, /swappiness range is 0-100/],
    [{ ShmSize: -1 }, /SHM size/],
    [{ CpusetCpus: 'x' }, /CpusetCpus/],
  ];
  for (const [hc, re] of bad) test(`refused: ${JSON.stringify(hc)}`, () => assert.throws(() => validateHostConfig(hc), isInvalid(re)));
});

describe('devices', () => {
  const nodes: Record<string, DeviceNode | Array<DeviceNode & { path: string }>> = {
    '/dev/ttyUSB0': { type: 'c', major: 188, minor: 0, fileMode: 0o20660, uid: 0, gid: 20 },
    '/dev/sda': { type: 'b', major: 8, minor: 0, fileMode: 0o60660, uid: 0, gid: 6 },
    '/dev/snd': [
      { path: '/dev/snd/controlC0', type: 'c', major: 116, minor: 0, fileMode: 0o20660, uid: 0, gid: 29 },
      { path: '/dev/snd/pcmC0D0p', type: 'c', major: 116, minor: 16, fileMode: 0o20660, uid: 0, gid: 29 },
    ],
  };
  const resolveDevice = (p: string) => {
    const n = nodes[p];
    if (!n) throw new InvalidParameter(`error gathering device information while adding custom device "${p}": no such file or directory`);
    return n;
  };
  test('mapped devices: nodes and cgroup rules, directories, permissions; DeviceCgroupRules', () => {
    const s = spec(
      {
        Devices: [
          { PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' },
          { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'r' },
          { PathOnHost: '/dev/snd' },
        ],
        DeviceCgroupRules: ['c 13:* rm'],
      },
      { resolveDevice },
    );
    assert.deepEqual(s.linux.devices, [
      { path: '/dev/ttyUSB0', type: 'c', major: 188, minor: 0, fileMode: 0o20660, uid: 0, gid: 20 },
      { path: '/dev/xvda', type: 'b', major: 8, minor: 0, fileMode: 0o60660, uid: 0, gid: 6 },
      { path: '/dev/snd/controlC0', type: 'c', major: 116, minor: 0, fileMode: 0o20660, uid: 0, gid: 29 },
      { path: '/dev/snd/pcmC0D0p', type: 'c', major: 116, minor: 16, fileMode: 0o20660, uid: 0, gid: 29 },
    ]);
    assert.deepEqual(s.linux.resources.devices.slice(8), [
      { allow: true, type: 'c', major: 188, minor: 0, access: 'rwm' },
      { allow: true, type: 'b', major: 8, minor: 0, access: 'r' },
      { allow: true, type: 'c', major: 116, minor: 0, access: 'rwm' },
      { allow: true, type: 'c', major: 116, minor: 16, access: 'rwm' },
      { allow: true, type: 'c', major: 13, access: 'rm' },
    ]);
  });
  test('bad device entries', () => {
    assert.throws(() => spec({ Devices: [{ PathOnHost: '/dev/nope' }] }, { resolveDevice }), isInvalid(/\/dev\/nope/));
    assert.throws(() => validateHostConfig({ Devices: [{ PathOnHost: '/dev/ttyUSB0', CgroupPermissions: 'rwx' }] }), isInvalid(/invalid device mode: rwx/));
    assert.throws(() => validateHostConfig({ DeviceCgroupRules: ['c 1:2'] }), isInvalid(/invalid device cgroup rule/));
  });
});

describe('ulimits', () => {
  const host = { nofile: [20000, 20000], core: [0, RLIM_INFINITY], memlock: [65536, 65536] } as const;
  test('only when asked, capped at the host hard limit', () => {
    assert.deepEqual(
      buildRlimits(
        [
          { Name: 'nofile', Soft: 1048576, Hard: 1048576 },
          { Name: 'nofile', Soft: 1024, Hard: 40000 },
          { Name: 'core', Soft: -1, Hard: -1 },
          { Name: 'memlock', Soft: -1, Hard: -1 },
          { Name: 'nproc', Soft: 100, Hard: 200 },
        ],
        host,
      ),
      [
        { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 },
        { type: 'RLIMIT_NOFILE', soft: 1024, hard: 20000 },
        { type: 'RLIMIT_CORE', soft: RLIM_INFINITY, hard: RLIM_INFINITY },
        { type: 'RLIMIT_MEMLOCK', soft: 65536, hard: 65536 },
        { type: 'RLIMIT_NPROC', soft: 100, hard: 200 },
      ],
    );
    const s = spec({ Ulimits: [{ Name: 'nofile', Soft: 100000, Hard: 100000 }, { Name: 'core', Soft: -1, Hard: -1 }] });
    assert.deepEqual(s.process.rlimits?.[0], { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 });
    const json = specToJSON(s);
    assert.match(json, /"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":18446744073709551615/);
    assert.equal((JSON.parse(json) as OciSpec).process.args[0], '/bin/sh');
  });
  test('bad ulimits', () => {
    assert.throws(() => validateHostConfig({ Ulimits: [{ Name: 'nofiles', Soft: 1, Hard: 1 }] }), isInvalid(/^invalid ulimit type: nofiles$/));
    assert.throws(() => validateHostConfig({ Ulimits: [{ Name: 'nofile', Soft: 2, Hard: 1 }] }), isInvalid(/soft limit must be less than or equal to hard limit/));
  });
  test('parseProcLimits reads /proc/self/limits', () => {
    const l = parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
    assert.equal(Object.keys(l).length, 16);
    assert.ok(Number.isSafeInteger(l.nofile?.[1]));
    assert.equal(parseProcLimits('Max core file size        0                    unlimited            bytes\n').core?.[1], RLIM_INFINITY);
  });
});

describe('validateHostConfig', () => {
  // What the docker CLI 28 sends for `docker run busybox` (API 1.41): every field, mostly zero.
  const cliDefault: Record<string, unknown> = {
    Binds: null, ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: 'default', PortBindings: {},
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: false, VolumeDriver: '', VolumesFrom: null,
    ConsoleSize: [0, 0], CapAdd: null, CapDrop: null, CgroupnsMode: '', Dns: [], DnsOptions: [], DnsSearch: [],
    ExtraHosts: null, GroupAdd: null, IpcMode: '', Cgroup: '', Links: null, OomScoreAdj: 0, PidMode: '',
    Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null, UTSMode: '', UsernsMode: '',
    ShmSize: 0, Isolation: '', CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '', BlkioWeight: 0,
    BlkioWeightDevice: [], BlkioDeviceReadBps: [], BlkioDeviceWriteBps: [], BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [], CpuPeriod: 0, CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '',
    CpusetMems: '', Devices: [], DeviceCgroupRules: null, DeviceRequests: null, MemoryReservation: 0, MemorySwap: 0,
    MemorySwappiness: -1, OomKillDisable: false, PidsLimit: null, Ulimits: [], CpuCount: 0, CpuPercent: 0,
    IOMaximumIOps: 0, IOMaximumBandwidth: 0, MaskedPaths: null, ReadonlyPaths: null, Init: null,
  };
  test("the docker CLI's default body passes", () => {
    assert.doesNotThrow(() => validateHostConfig(cliDefault));
    assert.deepEqual(validateHostConfig(undefined), {});
  });
  test('what balena-supervisor sends passes', () => {
    const hc = validateHostConfig({
      ...cliDefault, NetworkMode: '1a2b_default', CapAdd: ['SYS_ADMIN'], Binds: ['/tmp/balena-supervisor/services/1/main:/tmp/resin', '1_data:/data'],
      Devices: [{ PathOnHost: '/dev/ttyUSB0', PathInContainer: '/dev/ttyUSB0', CgroupPermissions: 'rwm' }], Dns: ['10.114.102.1'],
      ExtraHosts: ['host:1.2.3.4'], GroupAdd: ['dialout'], PidsLimit: 0, RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
      Sysctls: { 'net.ipv4.ip_forward': '1' }, Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }], Tmpfs: { '/run': '' },
      ContainerIDEnv: 'BALENA_CONTAINER_ID', OomKillDisable: false, CpuShares: 512, Memory: 256 << 20, ShmSize: 64 << 20,
    });
    assert.equal(hc.ContainerIDEnv, 'BALENA_CONTAINER_ID');
  });
  const refused: Array<[string, unknown, RegExp]> = [
    ['BlkioWeight', 300, /^HostConfig.BlkioWeight is not supported by skiff \(skiff supports HostConfig fields .*Binds.*\)$/],
    ['DeviceRequests', [{ Driver: '', Count: 1, Capabilities: [['gpu']] }], /HostConfig.DeviceRequests is not supported/],
    ['VolumesFrom', ['other'], /HostConfig.VolumesFrom is not supported/],
    ['Links', ['db:db'], /HostConfig.Links is not supported/],
    ['CgroupParent', '/custom', /HostConfig.CgroupParent is not supported/],
    ['CpuRealtimeRuntime', 950000, /HostConfig.CpuRealtimeRuntime is not supported/],
    ['KernelMemory', 1 << 30, /HostConfig.KernelMemory is not supported/],
    ['SomethingNew', { a: 1 }, /^unknown HostConfig field SomethingNew/],
    ['UsernsMode', 'private', /invalid HostConfig.UsernsMode "private"/],
    ['IpcMode', 'container:abc', /invalid HostConfig.IpcMode "container:abc"/],
    ['Isolation', 'hyperv', /Isolation "hyperv"/],
    ['VolumeDriver', 'nfs', /VolumeDriver "nfs"/],
    ['LogConfig', { Type: 'journald', Config: {} }, /LogConfig.Type "journald" is not supported/],
    ['Memory', '1g', /invalid HostConfig.Memory: expected an integer/],
    ['Privileged', 'yes', /expected a boolean/],
    ['Mounts', [{ Type: 'npipe', Target: '/x' }], /mount type "npipe" is not supported/],
    ['Mounts', [{ Type: 'volume', Target: '/x', VolumeOptions: { DriverConfig: { Name: 'nfs' } } }], /volume driver "nfs"/],
    ['RestartPolicy', { Name: 'sometimes' }, /invalid restart policy 'sometimes'/],
    ['RestartPolicy', { Name: 'always', MaximumRetryCount: 3 }, /maximum retry count cannot be used with restart policy 'always'/],
  ];
  for (const [field, value, re] of refused) {
    test(`refuses ${field}=${JSON.stringify(value)}`, () => {
      assert.throws(() => validateHostConfig({ ...cliDefault, [field]: value }), isInvalid(re));
    });
  }
  test('AutoRemove with a restart policy', () => {
    assert.throws(() => validateHostConfig({ AutoRemove: true, RestartPolicy: { Name: 'always' } }), isInvalid(/AutoRemove/));
    assert.doesNotThrow(() => validateHostConfig({ AutoRemove: true, RestartPolicy: { Name: 'no' } }));
  });
});

// ---------------------------------------------------------------------------
// The real runtime: runc must accept and run what buildSpec writes.

const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
const runcMissing = spawnSync('runc', ['--version']).error !== undefined;

describe('runc accepts the spec', () => {
  const skip = runcMissing ? 'runc is not installed' : BUSYBOX === undefined ? 'busybox-static is not installed' : process.getuid?.() !== 0 ? 'runc needs root' : false;
  if (skip) console.log(`# skipping the runc tests: ${skip}`);

  const run = (name: string, hc: HostConfig, user: { uid: number; gid: number; additionalGids: number[] }, script: string, want: string) =>
    test(name, { skip }, () => {
      const id = `skiff-spec-${randomBytes(6).toString('hex')}`;
      const dir = join(tmpdir(), id);
      const rootfs = join(dir, 'rootfs');
      const state = join(dir, 'state');
      mkdirSync(join(rootfs, 'bin'), { recursive: true });
      mkdirSync(state);
      copyFileSync(BUSYBOX ?? '', join(rootfs, 'bin', 'busybox'));
      for (const applet of ['sh', 'id', 'cat', 'touch', 'echo', 'hostname']) symlinkSync('busybox', join(rootfs, 'bin', applet));
      writeFileSync(join(dir, 'hosts'), '127.0.0.1\tlocalhost\n');
      writeFileSync(join(dir, 'hostname'), 'spec-test\n');
      writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
      mkdirSync(join(dir, 'shared'));
      writeFileSync(join(dir, 'shared', 'file'), 'from-host\n');
      const hostConfig = validateHostConfig(hc);
      const config = mergeConfig({ Env: ['PATH=/bin'] }, { Cmd: ['/bin/sh', '-c', script], Hostname: 'spec-test' }, { id, hostConfig });
      const status = readFileSync('/proc/self/status', 'utf8');
      const s = buildSpec({
        id,
        name: id,
        config,
        hostConfig,
        rootfs,
        user,
        netnsPath: undefined, // a new, empty network namespace ('none')
        hostsPath: join(dir, 'hosts'),
        hostnamePath: join(dir, 'hostname'),
        resolvPath: join(dir, 'resolv.conf'),
        cgroupsPath: `/skiff-test/${id}`,
        boundingCaps: capabilitiesFromMask(/^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'),
        hostRlimits: parseProcLimits(readFileSync('/proc/self/limits', 'utf8')),
        volumes: [{ source: join(dir, 'shared'), destination: '/shared', readOnly: true }],
      });
      writeFileSync(join(dir, 'config.json'), specToJSON(s, 2));
      try {
        const r = spawnSync('runc', ['--root', state, 'run', '--bundle', dir, id], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
        assert.equal(r.status, 0, `runc run failed (${String(r.status)}): ${r.stderr}${r.stdout}`);
        assert.equal(r.stdout, want);
      } finally {
        spawnSync('runc', ['--root', state, 'delete', '-f', id], { stdio: 'ignore' });
        rmSync(dir, { recursive: true, force: true });
        for (const ctrl of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
          try {
            rmdirSync(join('/sys/fs/cgroup', ctrl, 'skiff-test'));
          } catch {
            // another run still has a cgroup there, or the controller is absent
          }
        }
      }
    });

  const root = { uid: 0, gid: 0, additionalGids: [0] };
  run('as root', {}, root, 'echo ok; id -u', 'ok\n0\n');
  run('as uid 1000', {}, { uid: 1000, gid: 1000, additionalGids: [1000, 20] }, 'echo ok; id -u; id -G', 'ok\n1000\n1000 20\n');
  run('privileged (the bounding set intersection)', { Privileged: true }, root, 'echo ok; id -u', 'ok\n0\n');
  run(
    'read-only rootfs, tmpfs, a volume, limits, ulimit above the host hard limit',
    {
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'size=1m' },
      Memory: 64 << 20,
      NanoCpus: 500_000_000,
      PidsLimit: 50,
      CapDrop: ['ALL'],
      CapAdd: ['KILL'],
      SecurityOpt: ['no-new-privileges'],
      Ulimits: [{ Name: 'nofile', Soft: 1 << 30, Hard: 1 << 30 }],
      Sysctls: { 'net.ipv4.ip_forward': '1' },
    },
    root,
    'touch /x 2>/dev/null || echo ro; echo t > /tmp/t && cat /tmp/t /shared/file; hostname; cat /proc/sys/net/ipv4/ip_forward',
    'ro\nt\nfrom-host\nspec-test\n1\n',
  );
});
