import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { test } from 'node:test';
import { buildAnswer, DnsResponder, parseQuestion } from '../../src/net/dns.js';
import { createLogger } from '../../src/log/logger.js';

/** A query as a stub resolver sends it (id, RD, one question). */
function query(id: number, name: string, type: number): Buffer {
  const labels = Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head[2] = 0x01;
  head.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([head, labels, tail]);
}

test('questions parse; answers carry the A record', () => {
  const q = query(0x1234, 'Alpha.Net', 1);
  const p = parseQuestion(q)!;
  assert.equal(p.name, 'alpha.net');
  assert.equal(p.type, 1);
  const a = buildAnswer(q, p, '172.18.0.2');
  assert.equal(a.readUInt16BE(0), 0x1234);
  assert.equal(a[2]! & 0x80, 0x80);
  assert.equal(a.readUInt16BE(6), 1);
  assert.deepEqual([...a.subarray(a.length - 4)], [172, 18, 0, 2]);
  assert.equal(parseQuestion(Buffer.from([1, 2, 3])), undefined);
  assert.equal(parseQuestion(Buffer.concat([q.subarray(0, 14)])), undefined);
});

test('the responder answers known names, NODATA for AAAA, NXDOMAIN on internal networks', async () => {
  // Port 53 on an address of its own in 127/8 (the test runs as root, like the daemon).
  const addr = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
  const r = new DnsResponder({ logger: createLogger('error'), lookup: (n) => (n === 'alpha' ? '10.9.9.9' : undefined), upstream: () => [] }, 'net1', addr, false);
  await r.start();
  try {
    const ask = (msg: Buffer) =>
      new Promise<Buffer>((resolve) => {
        const s = createSocket('udp4');
        s.on('message', (m) => {
          s.close();
          resolve(m);
        });
        s.send(msg, 53, addr);
      });
    const a = await ask(query(1, 'alpha', 1));
    assert.equal(a[3]! & 0x0f, 0);
    assert.deepEqual([...a.subarray(a.length - 4)], [10, 9, 9, 9]);
    const aaaa = await ask(query(2, 'alpha', 28));
    assert.equal(aaaa[3]! & 0x0f, 0);
    assert.equal(aaaa.readUInt16BE(6), 0);
    const nx = await ask(query(3, 'beta', 1));
    assert.equal(nx[3]! & 0x0f, 3);
    // TCP: length-prefixed, as resolvers retry a truncated answer.
    const tcp = await new Promise<Buffer>((resolve, reject) => {
      const q = query(4, 'alpha', 1);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      const sock = connect(53, addr, () => sock.write(Buffer.concat([len, q])));
      let buf = Buffer.alloc(0);
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          sock.destroy();
          resolve(buf.subarray(2));
        }
      });
      sock.on('error', reject);
    });
    assert.equal(tcp.readUInt16BE(0), 4);
    assert.deepEqual([...tcp.subarray(tcp.length - 4)], [10, 9, 9, 9]);
  } finally {
    r.close();
  }
});
