// Networks through the real docker CLI, with the daemon inside a network
// namespace of the test's own (every bridge, veth and iptables rule lives
// there) and a second namespace linked by a veth pair as the outside world:
// the default bridge, outbound NAT, published ports, user networks with name
// resolution, connect/disconnect, the supervisor's supervisor0, faults, and
// clean-up checked with ip and iptables, also after kill -9 of the daemon.
import assert from 'node:assert/strict';
import { readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { busyboxImage } from '../helpers/busybox.js';
import { docker, parseResponse, rawRequest, run, SKIFF, startDaemon, tempDir, type TestDaemon } from '../helpers/daemon.js';
import { createNetns, linkNetns, mirrorRegistry, type TestNetns } from '../helpers/netns.js';
import { makeLayer, startRegistry, type LayerEntry, type TestRegistry } from '../helpers/registry.js';

const APPLETS = ['httpd', 'nslookup', 'ping', 'wget', 'ip', 'nc', 'hostname', 'cat', 'sleep'];
const OUT_NET = '198.18.7';

/** The host's getent with the C library it needs (glibc's DNS resolver is built into libc.so.6). */
function getentEntries(): LayerEntry[] {
  const file = (name: string, path: string): LayerEntry => ({ name, data: readFileSync(realpathSync(path)), mode: 0o755 });
  return [
    { name: 'usr/', type: 'directory' },
    { name: 'usr/bin/', type: 'directory' },
    file('usr/bin/getent', '/usr/bin/getent'),
    { name: 'lib64/', type: 'directory' },
    file('lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2'),
    { name: 'lib/', type: 'directory' },
    { name: 'lib/x86_64-linux-gnu/', type: 'directory' },
    file('lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'),
  ];
}

describe('networks', () => {
  let reg: TestRegistry;
  let d: TestDaemon;
  let nsD: TestNetns;
  let nsOut: TestNetns;
  let mirror: { stop(): void } | undefined;
  const dir = tempDir('skiff-networks-');
  const start = () => startDaemon({ dir, netns: nsD.path });

  const dk = (...args: string[]) => docker(d.host, args, 60_000);
  const ok = async (...args: string[]) => {
    const r = await dk(...args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const inD = (cmd: string, ...args: string[]) => nsD.execAsync(cmd, args);
  const inspect = async (ref: string, kind = 'container') => JSON.parse(await ok(kind === 'network' ? 'network' : 'container', 'inspect', ref))[0];

  /** What skiff made in its namespace: links and both iptables tables. */
  const snapshot = async () => {
    const links = (await inD('ip', '-o', 'link', 'show')).stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => (l.split(':')[1] ?? '').trim().replace(/@.*$/, ''))
      .sort();
    const filter = (await inD('iptables', '-S')).stdout;
    const nat = (await inD('iptables', '-t', 'nat', '-S')).stdout;
    return { links, filter, nat };
  };

  before(async () => {
    nsD = createNetns('d');
    nsOut = createNetns('out');
    linkNetns(nsD, nsOut, OUT_NET);
    reg = await startRegistry();
    const layer = await makeLayer([...busyboxImage(APPLETS), ...getentEntries()]);
    await reg.pushImage('test/busybox', 'latest', [layer], { os: 'linux', architecture: 'amd64' }, { config: { cmd: ['sh'] } });
    mirror = await mirrorRegistry(reg, nsD);
    d = await start();
    await ok('pull', `${reg.host}/test/busybox`);
    await ok('tag', `${reg.host}/test/busybox`, 'busybox');
  });

  after(async () => {
    if (d) {
      const ids = (await dk('ps', '-aq')).stdout.trim().split('\n').filter(Boolean);
      if (ids.length) await dk('rm', '-f', ...ids);
      d.cleanup();
    }
    mirror?.stop();
    await reg?.stop();
    nsOut?.remove();
    nsD?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('predefined networks and the default bridge', async () => {
    const ls = (await ok('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}')).trim().split('\n').sort();
    assert.deepEqual(ls, ['bridge bridge local', 'host host local', 'none null local']);
    const b = await inspect('bridge', 'network');
    assert.deepEqual(b.IPAM.Config, [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }]);
    assert.equal(b.Options['com.docker.network.bridge.name'], 'skiff0');
    assert.match((await inD('ip', '-4', 'addr', 'show', 'dev', 'skiff0')).stdout, /inet 172\.17\.0\.1\/16/);
    // By id prefix too.
    assert.equal((await inspect(b.Id.slice(0, 6), 'network')).Name, 'bridge');
    assert.deepEqual((await ok('network', 'ls', '-q', '-f', 'type=custom')).trim(), '');
  });

  test('docker run on the default bridge: address, gateway, outbound NAT', async (t) => {
    const r = await dk('run', '--rm', 'busybox', 'sh', '-c', 'ip -4 addr show eth0; ip route; ping -c1 -W3 172.17.0.1');
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /inet 172\.17\.0\.\d+\/16/);
    assert.match(r.stdout, /default via 172\.17\.0\.1 dev eth0/);
    assert.match(r.stdout, /1 packets received/);
    // The outside world has no route to 172.17.0.0/16: only masquerading lets the reply come back.
    const out = await dk('run', '--rm', 'busybox', 'ping', '-c1', '-W3', `${OUT_NET}.2`);
    assert.equal(out.code, 0, out.stderr + out.stdout);
    assert.match((await inD('iptables', '-t', 'nat', '-S')).stdout, /-A SKIFF-POSTROUTING -s 172\.17\.0\.0\/16 ! -o skiff0 -j MASQUERADE/);
    assert.equal((await inD('cat', '/proc/sys/net/ipv4/ip_forward')).stdout.trim(), '1');
    // What the bridge costs a `docker run --rm`, next to a container without a network.
    const median = async (extra: string[]) => {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        assert.equal((await dk('run', '--rm', ...extra, 'busybox', 'true')).code, 0);
        times.push(Date.now() - t0);
      }
      return times.sort((x, y) => x - y)[2]!;
    };
    t.diagnostic(`docker run --rm busybox true, median of 5: bridge ${await median([])} ms, none ${await median(['--network', 'none'])} ms`);
  });

  test('concurrent starts get distinct addresses', async () => {
    const ids = (await Promise.all([1, 2, 3, 4, 5].map(() => ok('run', '-d', 'busybox', 'sleep', '300')))).map((x) => x.trim());
    const ips = await Promise.all(ids.map(async (id) => (await inspect(id)).NetworkSettings.IPAddress as string));
    assert.equal(new Set(ips).size, 5, ips.join(' '));
    for (const [i, id] of ids.entries()) assert.match(await ok('exec', id, 'ip', '-4', '-o', 'addr', 'show', 'eth0'), new RegExp(`inet ${ips[i]!.replace(/\./g, '\\.')}/16`));
    await ok('rm', '-f', ...ids);
  });

  test('inspect NetworkSettings, resolv.conf, hosts, --dns and --add-host', async () => {
    const id = (await ok('run', '-d', '--name', 'insp', '--add-host', 'db.test:10.1.2.3', '--dns', '192.0.2.53', '--dns-search', 'example.test', '--dns-opt', 'ndots:3', 'busybox', 'sleep', '300')).trim();
    const c = await inspect(id);
    const ns = c.NetworkSettings;
    assert.match(ns.IPAddress, /^172\.17\.0\.\d+$/);
    assert.equal(ns.Gateway, '172.17.0.1');
    assert.equal(ns.IPPrefixLen, 16);
    assert.match(ns.MacAddress, /^02:42:ac:11:00:[0-9a-f]{2}$/);
    const br = ns.Networks.bridge;
    assert.equal(br.IPAddress, ns.IPAddress);
    assert.equal(br.NetworkID, (await inspect('bridge', 'network')).Id);
    assert.match(br.EndpointID, /^[0-9a-f]{64}$/);
    const hosts = (await ok('exec', id, 'cat', '/etc/hosts'));
    assert.match(hosts, /10\.1\.2\.3\tdb\.test/);
    assert.ok(hosts.includes(`${ns.IPAddress}\t${id.slice(0, 12)}`), hosts);
    assert.equal(await ok('exec', id, 'cat', '/etc/resolv.conf'), 'nameserver 192.0.2.53\nsearch example.test\noptions ndots:3\n');
    const net = await inspect('bridge', 'network');
    assert.equal(net.Containers[id].IPv4Address, `${ns.IPAddress}/16`);
    await ok('rm', '-f', id);
  });

  test('published ports: -p, -p ip:port/udp, -P, from loopback and from outside; port already allocated', async () => {
    const before = await snapshot();
    const id = (await ok('run', '-d', '--name', 'web', '-p', '8080:80', '-p', '127.0.0.1:5353:53/udp', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc')).trim();
    const c = await inspect(id);
    assert.deepEqual(c.NetworkSettings.Ports, { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }] });
    const ps = await ok('ps', '--filter', 'name=web', '--format', '{{.Ports}}');
    assert.match(ps, /0\.0\.0\.0:8080->80\/tcp/);
    assert.match(ps, /127\.0\.0\.1:5353->53\/udp/);
    let got = '';
    for (let i = 0; i < 50 && !got.includes(id.slice(0, 12)); i++) {
      got = (await inD('busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/hostname')).stdout;
      if (!got) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got.trim(), id.slice(0, 12));
    // Another machine's view: DNAT on the daemon's outward address.
    const far = await nsOut.execAsync('busybox', ['wget', '-q', '-O', '-', `http://${OUT_NET}.1:8080/hostname`]);
    assert.equal(far.stdout.trim(), id.slice(0, 12), far.stderr);
    assert.match((await inD('iptables', '-t', 'nat', '-S')).stdout, new RegExp(`--dport 8080 -j DNAT --to-destination ${c.NetworkSettings.IPAddress.replace(/\./g, '\\.')}:80`));

    // The same host port again: Docker's error, and nothing left half-made.
    const mid = await snapshot();
    const dup = await dk('run', '-d', '--name', 'web2', '-p', '8080:80', 'busybox', 'httpd', '-f', '-p', '80');
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /driver failed programming external connectivity on endpoint web2 \([0-9a-f]{64}\): Bind for 0\.0\.0\.0:8080 failed: port is already allocated/);
    assert.deepEqual(await snapshot(), mid);
    await ok('rm', '-f', 'web2');

    // -P: a port from the ephemeral range.
    const pid = (await ok('run', '-d', '-P', '--expose', '80', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc')).trim();
    const port = (await ok('port', pid, '80/tcp')).trim().split('\n')[0] ?? '';
    const m = /^0\.0\.0\.0:(\d+)$/.exec(port);
    assert.ok(m, port);
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    assert.ok(Number(m[1]) >= lo! && Number(m[1]) <= hi!, port);
    let body = '';
    for (let i = 0; i < 50 && !body; i++) {
      body = (await inD('busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${m[1]}/hostname`)).stdout;
      if (!body) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(body.trim(), pid.slice(0, 12));
    await ok('rm', '-f', id, pid);
    assert.deepEqual(await snapshot(), before);
  });

  test('user network: names, aliases and short ids resolve (getent and nslookup); isolation from the default bridge', async () => {
    await ok('network', 'create', '--label', 'purpose=test', 'appnet');
    const n = await inspect('appnet', 'network');
    assert.equal(n.Driver, 'bridge');
    assert.deepEqual(n.Labels, { purpose: 'test' });
    assert.match(n.IPAM.Config[0].Subnet, /^172\.18\.0\.0\/16$/);
    assert.deepEqual((await ok('network', 'ls', '-q', '-f', 'type=custom')).trim(), n.Id.slice(0, 12));
    assert.deepEqual((await ok('network', 'ls', '-q', '-f', 'label=purpose=test')).trim(), n.Id.slice(0, 12));
    const a = (await ok('run', '-d', '--name', 'alpha', '--network', 'appnet', '--network-alias', 'db', 'busybox', 'sleep', '300')).trim();
    const aIp = (await inspect(a)).NetworkSettings.Networks.appnet.IPAddress;
    assert.match(aIp, /^172\.18\.0\.\d+$/);
    assert.deepEqual((await inspect(a)).NetworkSettings.Networks.appnet.Aliases, ['db', a.slice(0, 12)]);
    for (const name of ['alpha', 'db', a.slice(0, 12)]) {
      const g = await dk('run', '--rm', '--network', 'appnet', 'busybox', 'getent', 'hosts', name);
      assert.equal(g.code, 0, `getent hosts ${name}: ${g.stderr}`);
      assert.match(g.stdout, new RegExp(`^${aIp.replace(/\./g, '\\.')}\\s+${name}`));
    }
    const ns = await dk('run', '--rm', '--network', 'appnet', 'busybox', 'nslookup', 'alpha');
    assert.equal(ns.code, 0, ns.stderr + ns.stdout);
    assert.ok(ns.stdout.includes(`Address: ${aIp}`), ns.stdout);
    const ping = await dk('run', '--rm', '--network', 'appnet', 'busybox', 'ping', '-c1', '-W3', aIp);
    assert.equal(ping.code, 0, ping.stdout);
    // Unknown names are not invented; the default bridge has no name resolution.
    assert.notEqual((await dk('run', '--rm', '--network', 'appnet', 'busybox', 'getent', 'hosts', 'nosuchcontainer')).code, 0);
    const onDefault = await dk('run', '--rm', 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; nslookup alpha 172.17.0.1');
    assert.notEqual(onDefault.code, 0);
    assert.ok(!onDefault.stdout.includes('nameserver 172.17.0.1'), onDefault.stdout);
    // Networks are isolated from each other.
    assert.notEqual((await dk('run', '--rm', 'busybox', 'ping', '-c1', '-W1', aIp)).code, 0);
    // container:<id> shares alpha's namespace.
    const shared = await ok('run', '--rm', '--network', `container:${a}`, 'busybox', 'sh', '-c', 'ip -4 addr show eth0; hostname');
    assert.ok(shared.includes(`inet ${aIp}/16`), shared);
    assert.ok(shared.trim().endsWith(a.slice(0, 12)), shared);
    const discarded = await dk('run', '--rm', '--network', 'host', '-p', '80:80', 'busybox', 'true');
    assert.equal(discarded.code, 0, discarded.stderr);
    assert.match(discarded.stderr, /Published ports are discarded when using host network mode/);
    const conflict = await dk('run', '--rm', '--network', `container:${a}`, '-p', '80:80', 'busybox', 'true');
    assert.match(conflict.stderr, /conflicting options: port publishing and the container type network mode/);
    await ok('rm', '-f', a);
    await ok('network', 'rm', 'appnet');
  });

  test('connect and disconnect a running container, events, in-use removal', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await ok('network', 'create', '--subnet', '10.77.0.0/24', '--gateway', '10.77.0.254', '--ip-range', '10.77.0.128/25', '--aux-address', 'router=10.77.0.128', 'side');
    const id = (await ok('run', '-d', '--name', 'mover', 'busybox', 'sleep', '300')).trim();
    await ok('network', 'connect', '--alias', 'mv', '--ip', '10.77.0.200', 'side', 'mover');
    const addr = await ok('exec', id, 'ip', '-4', 'addr', 'show', 'eth1');
    assert.match(addr, /inet 10\.77\.0\.200\/24/);
    const c = await inspect(id);
    assert.equal(c.NetworkSettings.Networks.side.IPAddress, '10.77.0.200');
    assert.equal(c.NetworkSettings.Networks.side.Gateway, '10.77.0.254');
    assert.ok(c.NetworkSettings.Networks.bridge.IPAddress);
    // The gateway answers from inside; the container's address came from the range.
    assert.equal((await dk('exec', id, 'ping', '-c1', '-W3', '10.77.0.254')).code, 0);
    const other = (await ok('run', '-d', '--network', 'side', 'busybox', 'sleep', '300')).trim();
    const otherIp = (await inspect(other)).NetworkSettings.Networks.side.IPAddress as string;
    // The first free address of the range: .128 is the aux address, .200 is taken.
    assert.equal(otherIp, '10.77.0.129');
    assert.deepEqual((await inspect('side', 'network')).IPAM.Config[0].AuxiliaryAddresses, { router: '10.77.0.128' });
    const taken = await dk('run', '-d', '--name', 'clash', '--network', 'side', '--ip', '10.77.0.129', 'busybox', 'sleep', '300');
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr, /Address already in use/);
    await ok('rm', '-f', 'clash');
    // A malformed address is refused at connect, as at create, even for a container that is not running.
    await ok('create', '--name', 'idle', 'busybox', 'true');
    const body = JSON.stringify({ Container: 'idle', EndpointConfig: { IPAMConfig: { IPv4Address: '10.77.0.300' } } });
    const bad = parseResponse(await rawRequest(d.socket, `POST /networks/side/connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
    assert.equal(bad.status, 400, bad.body);
    assert.equal((await inspect('idle')).NetworkSettings.Networks.side, undefined);
    await ok('rm', 'idle');
    const rm = await dk('network', 'rm', 'side');
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /error while removing network: network side id [0-9a-f]{64} has active endpoints/);
    await ok('network', 'disconnect', 'side', 'mover');
    assert.notEqual((await dk('exec', id, 'ip', 'addr', 'show', 'eth1')).code, 0);
    assert.equal((await inspect(id)).NetworkSettings.Networks.side, undefined);
    await ok('rm', '-f', other);
    await ok('network', 'rm', 'side');
    const ev = await ok('events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=network', '--format', '{{.Action}} {{.Actor.Attributes.name}}');
    const actions = ev.trim().split('\n');
    for (const want of ['create side', 'connect side', 'disconnect side', 'destroy side']) assert.ok(actions.includes(want), ev);
    await ok('rm', '-f', id);
  });

  test("the supervisor's supervisor0 network and the faults", async () => {
    await ok('network', 'create', '--driver', 'bridge', '--subnet', '10.114.104.0/25', '--gateway', '10.114.104.1', '-o', 'com.docker.network.bridge.name=supervisor0', '--label', 'io.balena.supervised=true', 'supervisor0');
    const n = await inspect('supervisor0', 'network');
    assert.deepEqual(n.IPAM.Config, [{ Subnet: '10.114.104.0/25', Gateway: '10.114.104.1' }]);
    assert.equal(n.Options['com.docker.network.bridge.name'], 'supervisor0');
    assert.match((await inD('ip', '-4', 'addr', 'show', 'dev', 'supervisor0')).stdout, /inet 10\.114\.104\.1\/25/);
    assert.equal((await ok('network', 'ls', '-q', '-f', 'label=io.balena.supervised=true')).trim(), n.Id.slice(0, 12));
    const same = await dk('network', 'create', 'supervisor0');
    assert.match(same.stderr, /network with name supervisor0 already exists/);
    const overlap = await dk('network', 'create', '--subnet', '10.114.104.0/24', 'other');
    assert.match(overlap.stderr, /Pool overlaps with other one on this address space/);
    const route = await dk('network', 'create', '--subnet', `${OUT_NET}.0/24`, 'clash');
    assert.match(route.stderr, /overlaps with a route of the host/);
    const v6 = await dk('network', 'create', '--ipv6', 'six');
    assert.match(v6.stderr, /IPv6 networks are not supported/);
    const drv = await dk('network', 'create', '-d', 'overlay', 'ov');
    assert.match(drv.stderr, /network driver "overlay" is not supported/);
    const pre = await dk('network', 'rm', 'bridge');
    assert.match(pre.stderr, /bridge is a pre-defined network and cannot be removed/);
    assert.match((await dk('network', 'inspect', 'nope')).stderr, /network nope not found/);
    await ok('network', 'rm', 'supervisor0');
    assert.notEqual((await inD('ip', 'link', 'show', 'supervisor0')).code, 0);
    // prune takes unused custom networks only.
    await ok('network', 'create', 'prunable');
    const pruned = await ok('network', 'prune', '-f');
    assert.match(pruned, /prunable/);
    assert.deepEqual((await ok('network', 'ls', '--format', '{{.Name}}')).trim().split('\n').sort(), ['bridge', 'host', 'none']);
  });

  test("the supervisor's sequence over the API: networks by body, a container on two of them from create", async () => {
    const api = async (method: string, path: string, body?: unknown) => {
      const text = body === undefined ? '' : JSON.stringify(body);
      const raw = await rawRequest(d.socket, `${method} /v1.41${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`, 30_000);
      const r = parseResponse(raw);
      return { status: r.status, json: r.body ? JSON.parse(r.body) : undefined };
    };
    const since = Math.floor(Date.now() / 1000) - 1;
    const labels = { 'io.balena.supervised': 'true', 'io.balena.app-id': '1' };
    const created = await api('POST', '/networks/create', { Name: '1_default', Driver: 'bridge', CheckDuplicate: true, Options: {}, IPAM: { Driver: 'default', Config: [], Options: {} }, EnableIPv6: false, Internal: false, Labels: labels, ConfigOnly: false });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.match(created.json.Id, /^[0-9a-f]{64}$/);
    assert.equal(created.json.Warning, '');
    const backend = await api('POST', '/networks/create', { Name: '1_backend', CheckDuplicate: true, IPAM: { Driver: 'default', Config: [{ Subnet: '10.88.0.0/24', Gateway: '10.88.0.1' }] }, Labels: labels });
    assert.equal(backend.status, 201, JSON.stringify(backend.json));
    const listed = await api('GET', `/networks?filters=${encodeURIComponent(JSON.stringify({ label: ['io.balena.supervised'] }))}`);
    assert.deepEqual(listed.json.map((n: { Name: string }) => n.Name).sort(), ['1_backend', '1_default']);
    const c = await api('POST', '/containers/create?name=main_1_1_abc', {
      Image: 'busybox',
      Cmd: ['sleep', '300'],
      Labels: labels,
      HostConfig: { NetworkMode: '1_default' },
      NetworkingConfig: { EndpointsConfig: { '1_default': { Aliases: ['main'] }, '1_backend': { IPAMConfig: { IPv4Address: '10.88.0.10' } } } },
    });
    assert.equal(c.status, 201, JSON.stringify(c.json));
    const stopped = (await api('GET', `/containers/${c.json.Id}/json`)).json;
    assert.equal(stopped.NetworkSettings.Networks['1_default'].IPAddress, '');
    assert.equal(stopped.NetworkSettings.Networks['1_backend'].IPAMConfig.IPv4Address, '10.88.0.10');
    assert.equal((await api('POST', `/containers/${c.json.Id}/start`)).status, 204);
    const info = (await api('GET', `/containers/${c.json.Id}/json`)).json;
    assert.equal(info.HostConfig.NetworkMode, '1_default');
    assert.match(info.NetworkSettings.Networks['1_default'].IPAddress, /^172\.\d+\.0\.\d+$/);
    assert.deepEqual(info.NetworkSettings.Networks['1_default'].Aliases, ['main', c.json.Id.slice(0, 12)]);
    assert.equal(info.NetworkSettings.Networks['1_backend'].IPAddress, '10.88.0.10');
    assert.equal(info.NetworkSettings.Networks['1_backend'].NetworkID, backend.json.Id);
    // No default-bridge address at top level: the container is not on `bridge`.
    assert.equal(info.NetworkSettings.IPAddress, '');
    const eth = await ok('exec', c.json.Id, 'ip', '-4', '-o', 'addr');
    assert.match(eth, /eth1\s+inet 10\.88\.0\.10\/24/);
    const inspected = (await api('GET', '/networks/1_backend')).json;
    assert.equal(inspected.Containers[c.json.Id].IPv4Address, '10.88.0.10/24');
    assert.equal(inspected.Containers[c.json.Id].Name, 'main_1_1_abc');
    assert.equal((await ok('ps', '-q', '--no-trunc', '--filter', 'network=1_backend')).trim(), c.json.Id);
    // A network that does not exist fails the start, not the create (a 404 at create would make the CLI pull).
    const lost = await api('POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { NetworkMode: 'nope' } });
    assert.equal(lost.status, 201);
    const start = await api('POST', `/containers/${lost.json.Id}/start`);
    assert.equal(start.status, 404);
    assert.equal(start.json.message, 'network nope not found');
    assert.equal((await api('DELETE', `/containers/${lost.json.Id}`)).status, 204);
    assert.equal((await api('DELETE', `/containers/${c.json.Id}?force=1`)).status, 204);
    assert.equal((await api('DELETE', '/networks/1_default')).status, 204);
    assert.equal((await api('DELETE', '/networks/1_backend')).status, 204);
    assert.equal((await api('DELETE', '/networks/1_backend')).status, 404);
    assert.equal((await api('DELETE', '/networks/host')).status, 403);
    // Malformed bodies are 400s with a message, never 500s.
    for (const body of [{ Name: 'x', IPAM: { Config: 'nope' } }, { Name: 'x', Labels: { a: 1 } }, { Name: 'x', IPAM: { Config: [{ Subnet: 5 }] } }, { Name: 'x', IPAM: { Config: [{ Subnet: '10.99.0.0/24', AuxiliaryAddresses: { a: 7 } }] } }, { Name: '' }]) {
      const r = await api('POST', '/networks/create', body);
      assert.equal(r.status, 400, JSON.stringify(body) + JSON.stringify(r.json));
      assert.ok(r.json.message, JSON.stringify(r.json));
    }
    const badEp = await api('POST', '/containers/create', { Image: 'busybox', NetworkingConfig: { EndpointsConfig: { bridge: { IPAMConfig: { IPv4Address: 7 } } } } });
    assert.equal(badEp.status, 400, JSON.stringify(badEp.json));
    assert.equal((await api('POST', '/networks/bridge/connect', { Container: 12 })).status, 400);
    const ev = await ok('events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'type=network', '--format', '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}');
    assert.ok(ev.includes(`connect 1_backend ${c.json.Id}`), ev);
    assert.ok(ev.includes(`disconnect 1_default ${c.json.Id}`), ev);
  });

  test('an internal network has no way out and no default route', async () => {
    await ok('network', 'create', '--internal', 'inner');
    const r = await dk('run', '--rm', '--network', 'inner', 'busybox', 'sh', '-c', `ip route; ping -c1 -W1 ${OUT_NET}.2`);
    assert.notEqual(r.code, 0);
    assert.ok(!r.stdout.includes('default'), r.stdout);
    assert.ok((await inspect('inner', 'network')).Internal);
    await ok('network', 'rm', 'inner');
  });

  test('kill -9 of the daemon: the restart removes what the dead containers had', async () => {
    await ok('network', 'create', 'crashnet');
    const base = await snapshot();
    const a = (await ok('run', '-d', '--network', 'crashnet', '-p', '8181:80', 'busybox', 'httpd', '-f', '-p', '80')).trim();
    const b = (await ok('run', '-d', '-p', '8182:80', 'busybox', 'httpd', '-f', '-p', '80')).trim();
    const during = await snapshot();
    assert.notDeepEqual(during, base);
    assert.ok(nsD.exec('ls', ['/var/run/netns']).stdout.includes(`skiff-${a.slice(0, 12)}`));
    d.child.kill('SIGKILL');
    await d.exited;
    d = await start();
    assert.deepEqual(await snapshot(), base);
    const netns = nsD.exec('ls', ['/var/run/netns']).stdout;
    assert.ok(!netns.includes(`skiff-${a.slice(0, 12)}`) && !netns.includes(`skiff-${b.slice(0, 12)}`), netns);
    // And the ports are free again for a new start.
    await ok('start', a);
    assert.equal((await inspect(a)).NetworkSettings.Ports['80/tcp'][0].HostPort, '8181');
    await ok('rm', '-f', a, b);
    assert.deepEqual(await snapshot(), base);
    await ok('network', 'rm', 'crashnet');
  });

  test('live-restore: a running container keeps its network and published port across a kill -9', async () => {
    d.child.kill('SIGKILL');
    await d.exited;
    d = await startDaemon({ dir, netns: nsD.path, args: ['--live-restore'] });
    const id = (await ok('run', '-d', '--name', 'keeper', '-p', '8383:80', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc')).trim();
    const get = async () => {
      for (let i = 0; i < 50; i++) {
        const body = (await inD('busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8383/hostname')).stdout;
        if (body) return body.trim();
        await new Promise((r) => setTimeout(r, 100));
      }
      return '';
    };
    assert.equal(await get(), id.slice(0, 12));
    const during = await snapshot();
    d.child.kill('SIGKILL');
    await d.exited;
    d = await startDaemon({ dir, netns: nsD.path, args: ['--live-restore'] });
    assert.equal((await inspect(id)).State.Running, true);
    assert.deepEqual(await snapshot(), during);
    assert.equal(await get(), id.slice(0, 12));
    assert.equal((await nsOut.execAsync('busybox', ['wget', '-q', '-O', '-', `http://${OUT_NET}.1:8383/hostname`])).stdout.trim(), id.slice(0, 12));
    // The address book survived too: a new container gets another address.
    const keeperIp = (await inspect(id)).NetworkSettings.IPAddress;
    const second = (await ok('run', '-d', 'busybox', 'sleep', '300')).trim();
    const secondIp = (await inspect(second)).NetworkSettings.IPAddress;
    assert.match(secondIp, /^172\.17\.0\.\d+$/);
    assert.notEqual(secondIp, keeperIp);
    await ok('rm', '-f', id, second);
  });
});

describe('networks: daemon options', () => {
  let d: TestDaemon | undefined;
  let ns: TestNetns | undefined;
  after(() => {
    d?.cleanup();
    ns?.remove();
  });

  test('the default bridge avoids a subnet the host already routes', async () => {
    const routed = createNetns('route');
    let dd: TestDaemon | undefined;
    try {
      // A LAN on 172.17/16 (a veth pair: this kernel has no dummy links).
      for (const args of [['link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan0p'], ['addr', 'add', '172.17.5.1/16', 'dev', 'lan0'], ['link', 'set', 'lan0p', 'up'], ['link', 'set', 'lan0', 'up']]) {
        const r = routed.exec('ip', args);
        assert.equal(r.code, 0, r.stderr);
      }
      dd = await startDaemon({ netns: routed.path });
      const [b] = JSON.parse((await docker(dd.host, ['network', 'inspect', 'bridge'])).stdout);
      assert.deepEqual(b.IPAM.Config, [{ Subnet: '172.18.0.0/16', Gateway: '172.18.0.1' }]);
      const r = await docker(dd.host, ['network', 'create', '--subnet', '172.17.9.0/24', 'onlan']);
      assert.match(r.stderr, /overlaps with a route of the host \(172\.17\.0\.0\/16 dev lan0\)/);
    } finally {
      dd?.cleanup();
      routed.remove();
    }
  });

  test('a daemon that cannot listen stops before it makes a bridge or a rule', async () => {
    const bad = createNetns('nolisten');
    const dir = tempDir('skiff-nolisten-');
    try {
      const before = bad.exec('ip', ['-br', 'link']).stdout + bad.exec('iptables', ['-S']).stdout + bad.exec('iptables', ['-t', 'nat', '-S']).stdout;
      const args = ['daemon', '--data-root', join(dir, 'root'), '-H', `unix://${join(dir, 's.sock')}`, '--pidfile', join(dir, 'pid'), '--group', 'no-such-group-skiff'];
      const r = await run('nsenter', [`--net=${bad.path}`, SKIFF, ...args]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /group no-such-group-skiff not found/);
      const after = bad.exec('ip', ['-br', 'link']).stdout + bad.exec('iptables', ['-S']).stdout + bad.exec('iptables', ['-t', 'nat', '-S']).stdout;
      assert.equal(after, before);
      assert.ok(!after.includes('skiff0') && !after.includes('SKIFF'), after);
    } finally {
      bad.remove();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--bridge, --bip, --fixed-cidr and --iptables=false', async () => {
    ns = createNetns('opt');
    d = await startDaemon({ netns: ns.path, args: ['--bridge', 'lanbr0', '--bip', '10.42.0.1/24', '--fixed-cidr', '10.42.0.128/25', '--iptables=false'] });
    const [b] = JSON.parse((await docker(d.host, ['network', 'inspect', 'bridge'])).stdout);
    assert.deepEqual(b.IPAM.Config, [{ Subnet: '10.42.0.0/24', Gateway: '10.42.0.1', IPRange: '10.42.0.128/25' }]);
    assert.match(ns.exec('ip', ['-4', 'addr', 'show', 'dev', 'lanbr0']).stdout, /inet 10\.42\.0\.1\/24/);
    const rules = ns.exec('iptables', ['-S']).stdout + ns.exec('iptables', ['-t', 'nat', '-S']).stdout;
    assert.ok(!rules.includes('SKIFF'), rules);
  });
});
