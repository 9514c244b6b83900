import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig, defaultConfig, parseAddRuntime, parseKeyValues, readConfigFile } from '../../src/daemon/config.js';
import { InvalidParameter } from '../../src/errors.js';

test('defaults match the documented ones', () => {
  const c = buildConfig({}, undefined, undefined);
  assert.deepEqual({ ...c, runtimes: undefined }, { ...defaultConfig(), runtimes: undefined });
  assert.equal(c.dataRoot, '/var/lib/skiff');
  assert.deepEqual(c.hosts, ['unix:///var/run/skiff.sock']);
  assert.equal(c.maxConcurrentDownloads, 3);
  assert.equal(c.maxDownloadAttempts, 5);
});

test('every documented daemon.json key is accepted', () => {
  const c = buildConfig(
    {},
    {
      'data-root': '/data/skiff/',
      hosts: ['unix:///run/a.sock', 'fd://'],
      'log-level': 'warning',
      'insecure-registries': ['myreg:5000', '10.0.0.0/8'],
      'registry-mirrors': ['https://mirror.example'],
      'max-concurrent-downloads': 5,
      'max-concurrent-uploads': 2,
      'max-download-attempts': 10,
      'log-driver': 'local',
      'log-opts': { 'max-size': '10m' },
      'default-runtime': 'crun',
      runtimes: { 'my-runc': { path: '/opt/runc', runtimeArgs: ['--debug'] } },
      'live-restore': true,
    },
    '/etc/skiff/daemon.json',
  );
  assert.equal(c.dataRoot, '/data/skiff');
  assert.deepEqual(c.hosts, ['unix:///run/a.sock', 'fd://']);
  assert.equal(c.logLevel, 'warn');
  assert.equal(c.maxConcurrentUploads, 2);
  assert.deepEqual(c.registryMirrors, ['https://mirror.example/']);
  assert.equal(c.maxConcurrentDownloads, 5);
  assert.equal(c.logDriver, 'local');
  assert.equal(c.defaultRuntime, 'crun');
  assert.deepEqual(c.runtimes['my-runc'], { path: '/opt/runc', runtimeArgs: ['--debug'] });
  assert.equal(c.liveRestore, true);
});

test('unknown keys are an error, as in dockerd', () => {
  assert.throws(
    () => buildConfig({}, { 'data-root': '/x', 'storage-drivr': 'overlay2' }, '/f.json'),
    /the following directives don't match any configuration option: storage-drivr/,
  );
});

test('a setting given both as flag and in the file is an error', () => {
  assert.throws(
    () => buildConfig({ 'data-root': '/a' }, { 'data-root': '/b' }, '/f.json'),
    /specified both as a flag and in the configuration file: data-root: \(from flag: \/a, from file: \/b\)/,
  );
});

test('wrong types and values are rejected with the key named', () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ 'max-concurrent-downloads': '3' }, /max-concurrent-downloads.*expected an integer/],
    [{ 'max-concurrent-downloads': 0 }, /invalid max concurrent downloads: 0/],
    [{ 'max-concurrent-uploads': 0 }, /invalid max concurrent uploads: 0/],
    [{ 'max-download-attempts': -1 }, /invalid max download attempts/],
    [{ 'live-restore': 'yes' }, /live-restore.*true or false/],
    [{ 'log-level': 'loud' }, /unable to parse logging level: loud/],
    [{ 'log-driver': 'syslog' }, /no log driver named 'syslog'/],
    [{ 'default-runtime': 'kata' }, /default runtime 'kata' does not exist/],
    [{ runtimes: { runc: { path: '/x' } } }, /runtime name 'runc' is reserved/],
    [{ runtimes: { r: { path: '' } } }, /"path" must be a non-empty string/],
    [{ 'registry-mirrors': ['ftp://m'] }, /unsupported scheme "ftp"/],
    [{ 'registry-mirrors': ['https://m/path'] }, /path, query, or fragment/],
    [{ 'insecure-registries': ['http://r:5000'] }, /should not contain '::\/\/'|should not contain ':\/\/'/],
    [{ hosts: ['unix://relative'] }, /invalid host/],
    [{ hosts: 'unix:///a' }, /expected a list of strings/],
    [{ 'data-root': 'relative' }, /must be an absolute path/],
    [{ 'log-opts': { 'max-size': 10 } }, /log-opts/],
    [{ 'log-opts': { 'bogus': 'x' } }, /unknown log opt 'bogus' for json-file log driver/],
    [{ 'log-driver': 'local', 'log-opts': { 'max-file': '0' } }, /max-file must be a positive number/],
  ];
  for (const [file, re] of bad) {
    assert.throws(() => buildConfig({}, file, '/f.json'), (e: unknown) => e instanceof InvalidParameter && re.test(e.message), JSON.stringify(file));
  }
});

test('reading the config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-cfg-'));
  assert.equal(readConfigFile(join(dir, 'missing.json'), false), undefined);
  assert.throws(() => readConfigFile(join(dir, 'missing.json'), true), /no such file/);
  writeFileSync(join(dir, 'bad.json'), '{"data-root": ');
  assert.throws(() => readConfigFile(join(dir, 'bad.json'), true), /unable to configure the skiff daemon with file/);
  writeFileSync(join(dir, 'arr.json'), '[]');
  assert.throws(() => readConfigFile(join(dir, 'arr.json'), true), /must hold a JSON object/);
  writeFileSync(join(dir, 'empty.json'), '\n');
  assert.deepEqual(readConfigFile(join(dir, 'empty.json'), true), {});
});

test('--add-runtime and --log-opt parsing', () => {
  assert.deepEqual(parseAddRuntime(['x=/usr/bin/x']), { x: { path: '/usr/bin/x' } });
  assert.throws(() => parseAddRuntime(['x']), /expected name=path/);
  assert.throws(() => parseAddRuntime(['crun=/x']), /reserved/);
  assert.deepEqual(parseKeyValues(['max-size=10m', 'max-file=3'], 'log-opt'), { 'max-size': '10m', 'max-file': '3' });
  assert.throws(() => parseKeyValues(['oops'], 'log-opt'), /expected key=value/);
});

test('network settings: bridge, bip, fixed-cidr, iptables, ip-forward, dns*', () => {
  const d = buildConfig({}, undefined, undefined);
  assert.equal(d.bridge, 'skiff0');
  assert.equal(d.iptables, true);
  assert.equal(d.ipForward, true);
  assert.deepEqual([d.bip, d.fixedCidr, d.dns], [undefined, undefined, []]);
  const c = buildConfig(
    { iptables: false },
    { bridge: 'balena0', bip: '10.42.0.1/24', 'fixed-cidr': '10.42.0.128/25', 'ip-forward': false, dns: ['192.0.2.1'], 'dns-search': ['lan'], 'dns-opts': ['ndots:2'] },
    '/f.json',
  );
  assert.deepEqual(
    [c.bridge, c.bip, c.fixedCidr, c.iptables, c.ipForward, c.dns, c.dnsSearch, c.dnsOpts],
    ['balena0', '10.42.0.1/24', '10.42.0.128/25', false, false, ['192.0.2.1'], ['lan'], ['ndots:2']],
  );
  for (const [file, re] of [
    [{ bip: '10.42.0.1' }, /invalid CIDR address/],
    [{ 'fixed-cidr': '300.0.0.0/8' }, /invalid CIDR address/],
    [{ bridge: 'a-name-far-too-long' }, /not a valid interface name/],
    [{ dns: ['not-an-ip'] }, /not an ip address/],
    [{ iptables: 'no' }, /expected true or false/],
    [{ bridge: 'none', bip: '10.0.0.1/24' }, /--bridge=none together with --bip/],
  ] as const) {
    assert.throws(() => buildConfig({}, file as Record<string, unknown>, '/f.json'), (e: unknown) => e instanceof InvalidParameter && re.test(e.message), JSON.stringify(file));
  }
});
