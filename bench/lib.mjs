// Pieces both benchmarks use: their child processes, a local docker-registry
// with pushed images, deterministic layers, and small /proc and mount helpers.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { request } from 'undici';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const round = (x, digits = 1) => (x === undefined || Number.isNaN(x) ? undefined : Math.round(x * 10 ** digits) / 10 ** digits);
export const which = (...cands) => cands.find((c) => c && existsSync(c));
export const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const readOr = (file, fallback = '') => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
};
export const MB = 1e6;
// Benchmarks must not touch the host's network: no skiff0 bridge, no iptables rules
// (dockerd peers run with --bridge=none --iptables=false for the same reason).
export const SKIFF_HOST_NET_FLAGS = ['--bridge=none', '--iptables=false', '--ip-forward=false'];
export const REGISTRY_BIN = process.env.SKIFF_REGISTRY_BIN ?? '/usr/bin/docker-registry';
const MTIME = new Date(1_700_000_000_000);

/** Long-running child processes (daemons, the registry): stopped by the scripts' clean-up. */
export const procs = new Set();

export async function stopProc(child, graceMs = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    procs.delete(child);
    return;
  }
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(t);
  procs.delete(child);
}

export function startProc(cmd, args, env) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: env ?? process.env });
  procs.add(child);
  let log = '';
  const keep = (d) => {
    log += d;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('exit', () => procs.delete(child));
  child.on('error', (e) => keep(`spawn error: ${e.message}\n`));
  return { child, log: () => log };
}

export async function waitFor(what, check, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null || Date.now() > deadline) {
      await stopProc(proc.child, 2000);
      throw new Error(`${what} did not come up:\n${proc.log().slice(-3000)}`);
    }
    await sleep(25);
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function pingUnix(socketPath) {
  return new Promise((resolve) => {
    const req = httpRequest({ socketPath, path: '/_ping', headers: { Host: 'docker' }, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export function mountsUnder(dir) {
  const out = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && (mp === dir || mp.startsWith(dir + '/'))) out.push(mp.replace(/\\040/g, ' '));
  }
  return out.sort((a, b) => b.length - a.length);
}

export function unmountUnder(dir) {
  for (const mp of mountsUnder(dir)) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
}

export function descendants(pid, acc = new Set()) {
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return acc;
  }
  for (const t of tasks) {
    for (const c of readOr(`/proc/${pid}/task/${t}/children`).split(' ').filter(Boolean).map(Number)) {
      if (!acc.has(c)) {
        acc.add(c);
        descendants(c, acc);
      }
    }
  }
  return acc;
}

export async function startRegistry(tmp) {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: apt-get install -y docker-registry`);
  const dir = path.join(tmp, 'registry');
  mkdirSync(path.join(dir, 'storage'), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = path.join(dir, 'config.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${path.join(dir, 'storage')}`,
        'http:',
        `  addr: 127.0.0.1:${port}`,
        `  secret: ${randomBytes(16).toString('hex')}`,
        '',
      ].join('\n'),
    );
    const proc = startProc(REGISTRY_BIN, ['serve', config]);
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        'docker-registry',
        async () => {
          try {
            const res = await request(`${url}/v2/`, { headersTimeout: 1000 });
            await res.body.dump();
            return res.statusCode === 200;
          } catch {
            return false;
          }
        },
        proc,
        10_000,
      );
      return { url, host: `127.0.0.1:${port}`, proc };
    } catch (err) {
      if (attempt >= 2) throw err; // else the port was probably taken in between: try another
    }
  }
}

export async function pushBlob(url, repo, data) {
  const digest = sha256(data);
  const start = await request(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'content-length': '0' } });
  await start.body.dump();
  if (start.statusCode !== 202 || typeof start.headers.location !== 'string') throw new Error(`blob upload start: HTTP ${start.statusCode}`);
  const put = new URL(start.headers.location, url);
  put.searchParams.set('digest', digest);
  const res = await request(put, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }, body: data });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`blob upload ${digest}: HTTP ${res.statusCode} ${text}`);
}

/** A Docker schema2 manifest for a config and gzip'd layers ({ size, digest } each). */
export function manifestOf(config, layers) {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: l.size, digest: l.digest })),
    }),
  );
}

export async function pushImage(url, repo, tag, img) {
  for (const l of img.layers) await pushBlob(url, repo, l.gz);
  await pushBlob(url, repo, img.config);
  const res = await request(`${url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json', 'content-length': String(img.manifest.length) },
    body: img.manifest,
  });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`manifest push: HTTP ${res.statusCode} ${text}`);
}

export async function makeLayer(entries) {
  const p = tarStream.pack();
  const chunks = [];
  p.on('data', (c) => chunks.push(c));
  const done = new Promise((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'file' ? 0o644 : 0o755), uid: 0, gid: 0, mtime: e.mtime ?? MTIME, size: e.data?.length ?? 0, linkname: e.linkname };
    await new Promise((resolve, reject) => {
      const cb = (err) => (err ? reject(err) : resolve());
      if (e.data) p.entry(header, e.data, cb);
      else p.entry(header, cb);
    });
  }
  p.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  const gz = gzipSync(tar, { level: 6 });
  return { tar, gz, diffId: sha256(tar), digest: sha256(gz), tarSize: tar.length, size: gz.length, files: entries.filter((e) => e.data).length };
}

/** skiff's daemon with its socket, daemon.json (`settings`) and pid file in `dir`; nothing on the host's network. */
export async function startSkiffDaemon(bin, dir, root = path.join(dir, 'root'), settings = {}) {
  mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, 's.sock');
  const config = path.join(dir, 'daemon.json');
  writeFileSync(config, JSON.stringify(settings));
  const t0 = Date.now();
  const proc = startProc(bin, ['daemon', '--data-root', root, '--host', `unix://${socket}`, '--pidfile', path.join(dir, 'pid'), '--config-file', config, ...SKIFF_HOST_NET_FLAGS]);
  await waitFor('skiff daemon', () => existsSync(socket) && pingUnix(socket), proc, 20_000);
  return { name: 'skiff', socket, roots: [proc.child.pid], dataDirs: [root], readyMs: Date.now() - t0, log: proc.log, stop: () => stopProc(proc.child) };
}

/** dockerd and a containerd of its own, on private roots, state and sockets in `dir`: no iptables, no bridge. */
export async function startDockerdDaemon(dockerdBin, containerdBin, dir) {
  const cd = path.join(dir, 'ctd');
  mkdirSync(cd, { recursive: true });
  const ctdSock = path.join(cd, 'c.sock');
  const ctdConfig = path.join(cd, 'config.toml');
  writeFileSync(
    ctdConfig,
    [
      'version = 2',
      `root = "${path.join(cd, 'root')}"`,
      `state = "${path.join(cd, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${ctdSock}"`,
      '[ttrpc]',
      `  address = "${ctdSock}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const t0 = Date.now();
  const ctd = startProc(containerdBin, ['--config', ctdConfig, '-a', ctdSock]);
  await waitFor('containerd', () => existsSync(ctdSock), ctd, 20_000);
  await sleep(200); // the socket exists a moment before containerd serves it; dockerd retries anyway
  const socket = path.join(dir, 'd.sock');
  const daemonJson = path.join(dir, 'daemon.json');
  writeFileSync(daemonJson, '{}');
  const data = path.join(dir, 'data');
  const dockerd = startProc(dockerdBin, [
    '--data-root', data,
    '--exec-root', path.join(dir, 'exec'),
    '-H', `unix://${socket}`,
    '--pidfile', path.join(dir, 'pid'),
    '--config-file', daemonJson,
    '--iptables=false',
    '--bridge=none',
    `--containerd=${ctdSock}`,
  ]);
  try {
    await waitFor('dockerd', () => existsSync(socket) && pingUnix(socket), dockerd, 60_000);
  } catch (err) {
    await stopProc(ctd.child);
    throw err;
  }
  return {
    name: 'dockerd',
    socket,
    roots: [dockerd.child.pid, ctd.child.pid],
    dataDirs: [data, path.join(cd, 'root')],
    readyMs: Date.now() - t0,
    log: () => dockerd.log() + ctd.log(),
    stop: async () => {
      await stopProc(dockerd.child);
      await stopProc(ctd.child);
    },
  };
}
