// The test command: build the artifacts, compile the TypeScript tests with
// esbuild (sources are bundled in, npm packages stay external), run them
// all with node's test runner.
//   SKIFF_TEST_ARCH=x64      build only the x64 SEA (fast local loop)
//   SKIFF_SKIP_BUILD=1       use dist/ as it is
//   node test/run.mjs PATTERN  only test files whose path contains PATTERN
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { unmountUnder } from '../bench/lib.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
// One directory per run, so two runs (a developer's and a helper's) never clobber each other.
const out = join(root, '.test-build', String(process.pid));
const filter = process.argv[2];

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(out, { recursive: true, force: true });
    process.exit(r.status ?? 1);
  }
}

if (!process.env.SKIFF_SKIP_BUILD) {
  const arch = process.env.SKIFF_TEST_ARCH;
  run(process.execPath, ['build.mjs', ...(arch ? ['--arch', arch] : [])]);
}

// Types are part of the test: strict TypeScript over src/ and test/.
if (!filter) run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', root]);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const all = walk(join(root, 'test')).filter((p) => /\.test\.(ts|mjs)$/.test(p));
const chosen = all.filter((p) => !filter || relative(root, p).includes(filter));
const tsFiles = chosen.filter((p) => p.endsWith('.ts'));
rmSync(out, { recursive: true, force: true });
if (tsFiles.length > 0) {
  await esbuild.build({
    entryPoints: tsFiles,
    outdir: out,
    outbase: join(root, 'test'),
    outExtension: { '.js': '.mjs' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}
const files = [
  ...tsFiles.map((p) => join(out, relative(join(root, 'test'), p)).replace(/\.ts$/, '.mjs')),
  ...chosen.filter((p) => p.endsWith('.mjs')),
];
if (files.length === 0) {
  console.error(`no test files match ${filter}`);
  process.exit(2);
}
// Every temporary file of the run (test data roots, registries, layers) goes
// under one directory, removed at the end whatever the tests left behind: a
// full run used to leave ~200 MB in /tmp. Short, for unix socket paths.
const tmp = mkdtempSync('/tmp/skt-');
const status = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: tmp },
}).status;
removeTree(tmp);
rmSync(out, { recursive: true, force: true });
process.exit(status ?? 1);

/**
 * Unmounts whatever is still mounted below `dir` (a container's overlay
 * left by a failed test), deepest first, then removes the tree without
 * crossing into any other filesystem.
 */
function removeTree(dir) {
  unmountUnder(dir);
  spawnSync('rm', ['-rf', '--one-file-system', dir], { stdio: 'inherit' });
}
