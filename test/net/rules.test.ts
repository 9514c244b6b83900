import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildRules } from '../../src/net/rules.js';
import type { NetworkRecord } from '../../src/net/store.js';

function net(name: string, bridge: string, subnet: string, extra: Partial<NetworkRecord> = {}): NetworkRecord {
  return { Id: name, Name: name, Created: '', Driver: 'bridge', Internal: false, Attachable: false, Labels: {}, Options: {}, IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: subnet, Gateway: '' }] }, Bridge: bridge, ...extra };
}

test('masquerade, forwarding and isolation per network; internal networks have no way out', () => {
  const r = buildRules([net('bridge', 'skiff0', '172.17.0.0/16'), net('int', 'br-int', '10.1.0.0/24', { Internal: true }), { ...net('host', '', ''), Driver: 'host', Bridge: undefined }], []);
  assert.deepEqual(r.postrouting, [['-s', '172.17.0.0/16', '!', '-o', 'skiff0', '-j', 'MASQUERADE']]);
  assert.deepEqual(r.forward.slice(0, 2), [['-i', 'skiff0', '-o', 'br-int', '-j', 'DROP'], ['-i', 'br-int', '-o', 'skiff0', '-j', 'DROP']]);
  assert.ok(r.forward.some((x) => x.join(' ') === '-i br-int ! -o br-int -j DROP'));
  assert.ok(!r.forward.some((x) => x.join(' ') === '-i br-int ! -o br-int -j ACCEPT'));
});

test('published ports: DNAT except for loopback publications (the proxy has those)', () => {
  const r = buildRules([net('bridge', 'skiff0', '172.17.0.0/16')], [
    { proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080, bridge: 'skiff0', containerIp: '172.17.0.2' },
    { proto: 'udp', containerPort: 53, hostIp: '127.0.0.1', hostPort: 5353, bridge: 'skiff0', containerIp: '172.17.0.2' },
  ]);
  assert.deepEqual(r.dnat, [['!', '-i', 'skiff0', '-p', 'tcp', '-m', 'tcp', '--dport', '8080', '-j', 'DNAT', '--to-destination', '172.17.0.2:80']]);
  assert.equal(r.forward.filter((x) => x.includes('--dport')).length, 2);
  const noMasq = buildRules([net('n', 'br-n', '10.2.0.0/24', { Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' } })], []);
  assert.deepEqual(noMasq.postrouting, []);
});
