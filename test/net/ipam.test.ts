import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocate, formatCidr, formatIp, freePool, macFor, overlaps, parseCidr, parseIp } from '../../src/net/ipam.js';

test('addresses and CIDRs parse, format and refuse nonsense', () => {
  assert.equal(formatIp(parseIp('172.17.0.1')), '172.17.0.1');
  assert.equal(parseIp('255.255.255.255'), 0xffffffff);
  assert.throws(() => parseIp('256.1.1.1'), /invalid IP address/);
  assert.throws(() => parseIp('1.2.3'), /invalid IP address/);
  const c = parseCidr('10.114.104.77/25');
  assert.equal(formatCidr(c), '10.114.104.0/25');
  assert.equal(formatIp(c.addr), '10.114.104.77');
  assert.throws(() => parseCidr('10.0.0.0/33'), /invalid CIDR/);
  assert.throws(() => parseCidr('10.0.0.0'), /invalid CIDR/);
  assert.equal(formatCidr(parseCidr('0.0.0.0/0')), '0.0.0.0/0');
});

test('overlap in both directions', () => {
  assert.ok(overlaps(parseCidr('10.114.104.0/25'), parseCidr('10.114.104.0/24')));
  assert.ok(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.114.104.0/25')));
  assert.ok(!overlaps(parseCidr('10.114.104.0/25'), parseCidr('10.114.104.128/25')));
});

test("Docker's default pools: 172.17 first, the next free one after", () => {
  assert.equal(formatCidr(freePool([])!), '172.17.0.0/16');
  assert.equal(formatCidr(freePool([parseCidr('172.17.0.0/16'), parseCidr('172.18.5.0/24')])!), '172.19.0.0/16');
  // A host route over all of 172.16/12 moves to 192.168.x/20.
  assert.equal(formatCidr(freePool([parseCidr('172.16.0.0/12')])!), '192.168.0.0/20');
  assert.equal(formatCidr(freePool([parseCidr('172.16.0.0/12'), parseCidr('192.168.0.0/19')])!), '192.168.32.0/20');
});

test('allocation skips network, broadcast, gateway and used addresses, inside the range', () => {
  const s = parseCidr('10.0.0.0/29');
  const used = new Set([parseIp('10.0.0.1')]);
  assert.equal(formatIp(allocate(s, s, used)!), '10.0.0.2');
  for (const x of ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']) used.add(parseIp(x));
  assert.equal(formatIp(allocate(s, s, used)!), '10.0.0.6');
  used.add(parseIp('10.0.0.6'));
  assert.equal(allocate(s, s, used), undefined);
  const big = parseCidr('10.77.0.0/24');
  assert.equal(formatIp(allocate(big, parseCidr('10.77.0.128/25'), new Set())!), '10.77.0.128');
  assert.equal(formatIp(allocate(big, parseCidr('10.77.0.128/25'), new Set([parseIp('10.77.0.128')]))!), '10.77.0.129');
});

test("Docker's MAC for an address", () => {
  assert.equal(macFor(parseIp('172.17.0.2')), '02:42:ac:11:00:02');
});
