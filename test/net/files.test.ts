import assert from 'node:assert/strict';
import { test } from 'node:test';
import { extraHostLines, hostsFile, parseResolvConf, resolvConf, upstreamResolvers } from '../../src/net/files.js';

const none = { dns: [], search: [], options: [] };
const HOST = '# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch lan corp\noptions edns0 trust-ad\n';
const LOOPBACK_ONLY = 'nameserver 127.0.0.53\noptions edns0\n';

test('resolv.conf on a private network: the host file without loopback resolvers', () => {
  assert.equal(resolvConf(HOST, 'private', none, none, undefined), 'nameserver 192.0.2.1\nsearch lan corp\noptions edns0 trust-ad\n');
  // Only a loopback resolver (systemd-resolved): Docker's public fallback.
  assert.equal(resolvConf(LOOPBACK_ONLY, 'private', none, none, undefined), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n');
});

test('resolv.conf: the container settings beat the daemon ones, which beat the host', () => {
  const daemon = { dns: ['192.0.2.9'], search: ['d.example'], options: ['ndots:4'] };
  assert.equal(resolvConf(HOST, 'private', none, daemon, undefined), 'nameserver 192.0.2.9\nsearch d.example\noptions ndots:4\n');
  const mine = { dns: ['192.0.2.53'], search: ['c.example'], options: ['ndots:2'] };
  assert.equal(resolvConf(HOST, 'private', mine, daemon, undefined), 'nameserver 192.0.2.53\nsearch c.example\noptions ndots:2\n');
  // host mode keeps loopback resolvers: they are the container's too.
  assert.equal(resolvConf(LOOPBACK_ONLY, 'host', none, none, undefined), 'nameserver 127.0.0.53\noptions edns0\n');
});

test('resolv.conf on a user network: the network responder only, ndots:0', () => {
  assert.equal(resolvConf(HOST, 'private', none, none, '172.18.0.1'), 'nameserver 172.18.0.1\nsearch lan corp\noptions edns0 trust-ad ndots:0\n');
  // The responder relays to the host's resolvers, loopback ones included (it runs on the host).
  assert.deepEqual(upstreamResolvers(HOST, none, none, true), ['127.0.0.53', '192.0.2.1']);
  assert.deepEqual(upstreamResolvers(HOST, none, { dns: ['192.0.2.9'], search: [], options: [] }, true), ['192.0.2.9']);
  assert.deepEqual(parseResolvConf('domain x.example\nnameserver 1.1.1.1 # c\n').search, ['x.example']);
});

test('hosts: own address and ExtraHosts, host-gateway', () => {
  const extra = extraHostLines(['db.test:10.1.2.3', 'gw:host-gateway'], '172.17.0.1');
  assert.equal(extra, '10.1.2.3\tdb.test\n172.17.0.1\tgw\n');
  assert.throws(() => extraHostLines(['nocolon'], undefined), /invalid extra host/);
  assert.throws(() => extraHostLines(['gw:host-gateway'], undefined), /host-gateway/);
  const h = hostsFile('abc', 'example.org', '172.17.0.2', extra);
  assert.ok(h.startsWith('127.0.0.1\tlocalhost\n'));
  assert.ok(h.endsWith('10.1.2.3\tdb.test\n172.17.0.1\tgw\n172.17.0.2\tabc.example.org abc\n'));
  assert.ok(!hostsFile('abc', '', undefined, '').includes('abc'));
});
