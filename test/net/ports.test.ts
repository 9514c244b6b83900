import assert from 'node:assert/strict';
import { test } from 'node:test';
import { portList, portMap, portRequests } from '../../src/net/ports.js';

test('PortBindings and PublishAllPorts become requests', () => {
  const r = portRequests({ '80/tcp': {}, '443/tcp': {}, '53/udp': {} }, { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }] }, true);
  assert.deepEqual(r, [
    { proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080, hostPortEnd: 8080 },
    { proto: 'udp', containerPort: 53, hostIp: '127.0.0.1', hostPort: 5353, hostPortEnd: 5353 },
    { proto: 'tcp', containerPort: 443, hostIp: '0.0.0.0', hostPort: 0, hostPortEnd: 0 },
  ]);
  assert.deepEqual(portRequests({ '80/tcp': {} }, {}, false), []);
  assert.deepEqual(portRequests(undefined, { '80': [{ HostPort: '8000-8010' }] }, false), [{ proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 8000, hostPortEnd: 8010 }]);
  assert.throws(() => portRequests(undefined, { '80/tcp': [{ HostPort: 'x' }] }, false), /invalid port specification/);
  assert.throws(() => portRequests(undefined, { '99999/tcp': [{}] }, false), /invalid port specification/);
  assert.throws(() => portRequests(undefined, { '80/tcp': [{ HostIp: '::1', HostPort: '80' }] }, false), /IPv4 only/);
});

test('inspect Ports and ps Ports as Docker shows them', () => {
  const live = [{ proto: 'tcp' as const, containerPort: 80, hostIp: '0.0.0.0', hostPort: 8080 }];
  assert.deepEqual(portMap({ '80/tcp': {}, '22/tcp': {} }, live), { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }], '22/tcp': null });
  assert.deepEqual(portList({ '80/tcp': {}, '22/tcp': {} }, live), [
    { IP: '0.0.0.0', PrivatePort: 80, PublicPort: 8080, Type: 'tcp' },
    { PrivatePort: 22, Type: 'tcp' },
  ]);
});
