import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { PortInUse, startProxy } from '../../src/net/proxy.js';
import { freePort } from '../helpers/registry.js';

test('tcp: relays both ways; a taken port is "port is already allocated"', async () => {
  const echo = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const target = (echo.address() as AddressInfo).port;
  const port = await freePort();
  const p = await startProxy({ proto: 'tcp', hostIp: '127.0.0.1', hostPort: port, containerIp: '127.0.0.1', containerPort: target });
  try {
    const got = await new Promise<string>((resolve, reject) => {
      const c = connect(port, '127.0.0.1', () => c.end('ping'));
      let buf = '';
      c.on('data', (d: Buffer) => (buf += d.toString()));
      c.on('end', () => resolve(buf));
      c.on('error', reject);
    });
    assert.equal(got, 'ping');
    await assert.rejects(startProxy({ proto: 'tcp', hostIp: '127.0.0.1', hostPort: port, containerIp: '127.0.0.1', containerPort: target }), (e: unknown) => e instanceof PortInUse && e.message === `Bind for 127.0.0.1:${port} failed: port is already allocated`);
  } finally {
    p.close();
    echo.close();
  }
});

test('udp: datagrams go to the container and replies come back to the sender', async () => {
  const echo = createSocket('udp4');
  echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('re:'), m]), r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
  const target = echo.address().port;
  const port = await freePort();
  const p = await startProxy({ proto: 'udp', hostIp: '127.0.0.1', hostPort: port, containerIp: '127.0.0.1', containerPort: target });
  try {
    const client = createSocket('udp4');
    const reply = await new Promise<string>((resolve) => {
      client.on('message', (m) => resolve(m.toString()));
      client.send('hello', port, '127.0.0.1');
    });
    client.close();
    assert.equal(reply, 're:hello');
    await assert.rejects(startProxy({ proto: 'udp', hostIp: '127.0.0.1', hostPort: port, containerIp: '127.0.0.1', containerPort: target }), PortInUse);
  } finally {
    p.close();
    echo.close();
  }
});
