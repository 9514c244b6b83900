#!/usr/bin/env node
// Startup time and idle memory of the built x64 executable, against plain
// Node as the peer baseline. No dependencies; run from anywhere:
//
//   node bench/startup.mjs [--runs 20] [--bin dist/skiff-linux-x64]
//
// Prints a table and writes the figures to bench/results/startup.json.
// See bench/README.md for what each figure means.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    bin: { type: 'string', default: path.join(ROOT, 'dist', 'skiff-linux-x64') },
    requests: { type: 'string', default: '200' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log('usage: node bench/startup.mjs [--runs N] [--warmup N] [--requests N] [--bin path/to/skiff-linux-x64]');
  process.exit(0);
}
const RUNS = Number(opts.runs);
const WARMUP = Number(opts.warmup);
const REQUESTS = Number(opts.requests);
const SEA = path.resolve(opts.bin);
const BUNDLE = path.join(ROOT, 'dist', 'skiff.js');
const NODE = process.execPath;
const IDLE_SETTLE_MS = 2000;

if (!existsSync(SEA)) {
  console.error(`${SEA} does not exist: build it first with  npm run build -- --arch x64`);
  process.exit(2);
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const notes = [];

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { runs: s.length, median: round(median), min: round(s[0]), p90: round(at(0.9)), max: round(s[s.length - 1]) };
}

const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
const mib = (kib) => round(kib / 1024, 1);

/** One timed run: fork + exec + the program's whole life until it has exited. */
function timeOnce(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
  return ms;
}

/** /proc/<pid>/status fields in KiB. */
function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { VmRSS: kib('VmRSS'), VmHWM: kib('VmHWM'), RssAnon: kib('RssAnon'), RssFile: kib('RssFile') };
}

function get(socketPath, urlPath) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: urlPath, method: 'GET', headers: { Host: 'docker' }, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------
// (a) startup time
// ---------------------------------------------------------------------------
// dist/skiff.js is a CommonJS bundle; if the nearest package.json says
// "type": "module" node refuses to run it as is, so time a .cjs copy instead
// (the same bytes, so the same startup work).
function bundleCommand() {
  if (!existsSync(BUNDLE)) return undefined;
  const direct = spawnSync(NODE, [BUNDLE, '--version'], { encoding: 'utf8' });
  const why = /^[A-Z]\w*Error\b[^\n]*/m.exec(direct.stderr)?.[0].slice(0, 160) ?? `exit ${direct.status ?? direct.signal}`;
  if (direct.status === 0) return { label: 'node dist/skiff.js --version', cmd: NODE, args: [BUNDLE, '--version'], path: BUNDLE };
  const copy = path.join(tmp, 'skiff.cjs');
  copyFileSync(BUNDLE, copy);
  const viaCopy = spawnSync(NODE, [copy, '--version'], { encoding: 'utf8' });
  if (viaCopy.status !== 0) {
    notes.push(`node dist/skiff.js --version fails (${why}), even as a .cjs copy; not measured`);
    return undefined;
  }
  notes.push(
    `node dist/skiff.js --version fails as is (${why}); ` +
      'timed a byte-identical copy named skiff.cjs instead',
  );
  return { label: 'node dist/skiff.js --version', cmd: NODE, args: [copy, '--version'], path: copy };
}

const subjects = [
  { key: 'sea', label: `${path.relative(ROOT, SEA) || SEA} --version`, cmd: SEA, args: ['--version'] },
  { key: 'node', label: 'node -e 0', cmd: NODE, args: ['-e', '0'] },
];
const bundle = bundleCommand();
if (bundle) subjects.push({ key: 'bundle', ...bundle });

console.log(`startup: ${WARMUP} warm-up + ${RUNS} interleaved runs each (${subjects.map((s) => s.label).join(' | ')})`);
for (const s of subjects) for (let i = 0; i < WARMUP; i++) timeOnce(s.cmd, s.args);
const samples = Object.fromEntries(subjects.map((s) => [s.key, []]));
for (let i = 0; i < RUNS; i++) {
  // Rotate the order so no subject always runs right after the same other one.
  for (let j = 0; j < subjects.length; j++) {
    const s = subjects[(i + j) % subjects.length];
    samples[s.key].push(timeOnce(s.cmd, s.args));
  }
}
const startup = {};
for (const s of subjects) startup[s.key] = { command: s.label, ...stats(samples[s.key]) };
const ratios = {
  seaVsNode: round(startup.sea.median / startup.node.median, 2),
  ...(startup.bundle
    ? { bundleVsNode: round(startup.bundle.median / startup.node.median, 2), seaVsBundle: round(startup.sea.median / startup.bundle.median, 2) }
    : {}),
};

// ---------------------------------------------------------------------------
// (b) idle memory
// ---------------------------------------------------------------------------
async function measureDaemon(cmd, args, label) {
  const dir = mkdtempSync(path.join(tmp, 'daemon-'));
  const socket = path.join(dir, 'skiff.sock');
  const config = path.join(dir, 'daemon.json');
  writeFileSync(config, '{}');
  const t0 = process.hrtime.bigint();
  const child = spawn(
    cmd,
    [...args, 'daemon', '--data-root', path.join(dir, 'root'), '--host', `unix://${socket}`, '--pidfile', path.join(dir, 'skiff.pid'), '--config-file', config,
      // Never the host's network: no bridge device, no iptables rules.
      '--bridge=none', '--iptables=false', '--ip-forward=false'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: process.hrtime.bigint() })));
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (gone || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${label} did not answer /_ping:\n${log}`);
    }
    const ok = existsSync(socket) && (await get(socket, '/_ping').then((r) => r.status === 200, () => false));
    if (ok) break;
    await sleep(10);
  }
  const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await sleep(IDLE_SETTLE_MS);
  const idle = procStatus(child.pid);
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < REQUESTS; i++) {
    const r = await get(socket, '/v1.41/info');
    if (r.status !== 200) throw new Error(`${label}: GET /info answered ${r.status}: ${r.body}`);
  }
  const requestsMs = Number(process.hrtime.bigint() - t1) / 1e6;
  const afterRequests = procStatus(child.pid);
  const tStop = process.hrtime.bigint();
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const end = await exited;
  clearTimeout(timer);
  return {
    command: label,
    readyMs: round(readyMs),
    idle: { VmRSS_MiB: mib(idle.VmRSS), VmHWM_MiB: mib(idle.VmHWM), RssAnon_MiB: mib(idle.RssAnon), RssFile_MiB: mib(idle.RssFile) },
    afterRequests: {
      requests: REQUESTS,
      totalMs: round(requestsMs),
      perRequestMs: round(requestsMs / REQUESTS, 2),
      VmRSS_MiB: mib(afterRequests.VmRSS),
      VmHWM_MiB: mib(afterRequests.VmHWM),
    },
    shutdown: { ms: round(Number(end.at - tStop) / 1e6), exitCode: end.code, signal: end.signal },
  };
}

async function measureIdleNode() {
  const child = spawn(NODE, ['-e', 'setInterval(()=>{},1000)'], { stdio: 'ignore' });
  await sleep(IDLE_SETTLE_MS);
  const s = procStatus(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  return { command: "node -e 'setInterval(()=>{},1000)'", idle: { VmRSS_MiB: mib(s.VmRSS), VmHWM_MiB: mib(s.VmHWM), RssAnon_MiB: mib(s.RssAnon), RssFile_MiB: mib(s.RssFile) } };
}

console.log(`memory: idle ${IDLE_SETTLE_MS / 1000} s after the first /_ping answer, then after ${REQUESTS} GET /info`);
const memory = {
  sea: await measureDaemon(SEA, [], `${path.relative(ROOT, SEA) || SEA} daemon`),
  ...(bundle ? { bundle: await measureDaemon(NODE, [bundle.path], 'node dist/skiff.js daemon') } : {}),
  nodeIdle: await measureIdleNode(),
};

// ---------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------
function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r, n) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ') + (n === 0 ? '\n' + widths.map((w) => '-'.repeat(w)).join('  ') : '')).join('\n');
}

const cpu = os.cpus()[0]?.model ?? 'unknown';
const gitCommit = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim() || undefined;
const skiffVersion = spawnSync(SEA, ['--version'], { encoding: 'utf8' }).stdout.trim();
const host = { node: process.version, kernel: os.release(), arch: os.arch(), cpu, cpus: os.cpus().length, memTotalMiB: Math.round(os.totalmem() / 2 ** 20) };

console.log(`\n${skiffVersion} | ${path.basename(SEA)} ${mib(statSync(SEA).size / 1024)} MiB | node ${process.version} | ${cpu} ×${host.cpus} | linux ${host.kernel}\n`);
console.log('Startup (ms, fork+exec until exit)');
console.log(
  table([
    ['command', 'median', 'min', 'p90', 'max', 'runs'],
    ...subjects.map((s) => [startup[s.key].command, startup[s.key].median, startup[s.key].min, startup[s.key].p90, startup[s.key].max, startup[s.key].runs]),
  ]),
);
console.log(
  `ratio of medians: SEA / node -e 0 = ${ratios.seaVsNode}` +
    (ratios.bundleVsNode !== undefined ? `, node skiff.js / node -e 0 = ${ratios.bundleVsNode}, SEA / node skiff.js = ${ratios.seaVsBundle}` : ''),
);

console.log('\nMemory (MiB) and daemon timings (ms)');
const memRows = [['process', 'ready', 'idle RSS', '(anon)', 'idle HWM', `RSS after ${REQUESTS}×/info`, 'HWM after', 'ms/request', 'shutdown', 'exit']];
for (const m of [memory.sea, memory.bundle].filter(Boolean)) {
  memRows.push([m.command, m.readyMs, m.idle.VmRSS_MiB, m.idle.RssAnon_MiB, m.idle.VmHWM_MiB, m.afterRequests.VmRSS_MiB, m.afterRequests.VmHWM_MiB, m.afterRequests.perRequestMs, m.shutdown.ms, m.shutdown.exitCode ?? m.shutdown.signal]);
}
memRows.push([memory.nodeIdle.command, '-', memory.nodeIdle.idle.VmRSS_MiB, memory.nodeIdle.idle.RssAnon_MiB, memory.nodeIdle.idle.VmHWM_MiB, '-', '-', '-', '-', '-']);
console.log(table(memRows));
console.log(`idle RSS ratio: SEA daemon / idle node = ${round(memory.sea.idle.VmRSS_MiB / memory.nodeIdle.idle.VmRSS_MiB, 2)}`);
for (const n of notes) console.log(`note: ${n}`);

const results = {
  date: new Date().toISOString(),
  skiff: skiffVersion,
  gitCommit,
  binary: { path: path.relative(ROOT, SEA) || SEA, bytes: statSync(SEA).size },
  host,
  settings: { runs: RUNS, warmup: WARMUP, idleSettleMs: IDLE_SETTLE_MS, requests: REQUESTS },
  startupMs: startup,
  startupRatios: ratios,
  memory,
  notes,
};
const outDir = path.join(ROOT, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'startup.json'), JSON.stringify(results, null, 2) + '\n');
console.log(`\nwrote ${path.relative(process.cwd(), path.join(outDir, 'startup.json')) || path.join(outDir, 'startup.json')}`);
if (memory.sea.shutdown.exitCode !== 0) {
  console.error(`the daemon exited with ${memory.sea.shutdown.exitCode ?? memory.sea.shutdown.signal} after SIGTERM (expected 0)`);
  process.exitCode = 1;
}
