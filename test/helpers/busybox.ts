// The busybox image most e2e tests run: built from the host's Debian
// busybox-static, pushed to a test registry, pulled into a daemon and
// tagged `busybox`.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { docker, startDaemon, type DaemonOptions, type TestDaemon } from './daemon.js';
import { busyboxEntries } from './debian.js';
import { makeLayer, startRegistry, type LayerEntry, type TestRegistry } from './registry.js';

/** The image's entries: busybox, its usual applets and `extra` applet links. */
export function busyboxImage(extra: string[] = []): LayerEntry[] {
  const entries = busyboxEntries(readFileSync('/bin/busybox'));
  for (const a of extra) if (!entries.some((e) => e.name === `bin/${a}`)) entries.push({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  return entries;
}

/** Pushes `test/busybox:latest` (amd64, Cmd sh). */
export async function pushBusybox(reg: TestRegistry, extra: string[] = []): Promise<void> {
  await reg.pushImage('test/busybox', 'latest', [await makeLayer(busyboxImage(extra))], { os: 'linux', architecture: 'amd64' }, { config: { cmd: ['sh'] } });
}

/** Pulls it into the daemon and tags it `busybox`. */
export async function pullBusybox(d: TestDaemon, reg: TestRegistry): Promise<void> {
  const p = await docker(d.host, ['pull', `${reg.host}/test/busybox`]);
  assert.equal(p.code, 0, p.stderr);
  assert.equal((await docker(d.host, ['tag', `${reg.host}/test/busybox`, 'busybox'])).code, 0);
}

/** Removes every container of the daemon (test clean-up). */
export async function removeAllContainers(d: TestDaemon): Promise<void> {
  const ids = (await docker(d.host, ['ps', '-aq'])).stdout.trim().split('\n').filter(Boolean);
  if (ids.length) await docker(d.host, ['rm', '-f', ...ids]);
}

/**
 * The set-up most e2e suites share: a test registry with busybox (and `extra`
 * applets), and a daemon that has pulled it as `busybox`. What was started is
 * stopped again when a step fails.
 */
export async function startBusyboxDaemon(opts: DaemonOptions & { extra?: string[] } = {}): Promise<{ d: TestDaemon; reg: TestRegistry }> {
  const { extra, ...daemon } = opts;
  const reg = await startRegistry();
  let d: TestDaemon | undefined;
  try {
    await pushBusybox(reg, extra);
    d = await startDaemon(daemon);
    await pullBusybox(d, reg);
    return { d, reg };
  } catch (err) {
    await stopBusyboxDaemon(d, reg);
    throw err;
  }
}

/** Undoes startBusyboxDaemon: the daemon's containers, the daemon, the registry (whatever exists). */
export async function stopBusyboxDaemon(d: TestDaemon | undefined, reg: TestRegistry | undefined): Promise<void> {
  if (d) {
    await removeAllContainers(d);
    d.cleanup();
  }
  await reg?.stop();
}
