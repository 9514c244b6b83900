// Network namespaces the tests create, so nothing a test does touches the
// host's network: a daemon runs inside one (its bridges, veths and iptables
// rules live there), another linked by a veth pair plays the outside world.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { run, runSync, type RunResult } from './daemon.js';
import { REGISTRY_BIN, type TestRegistry } from './registry.js';

export interface TestNetns {
  name: string;
  path: string;
  /** Runs a command inside the namespace (nsenter --net: the host's mounts, this namespace's network). */
  exec(cmd: string, args: string[], timeout?: number): RunResult;
  /** The same, without blocking the event loop (for commands that talk to the test's own daemon). */
  execAsync(cmd: string, args: string[], timeout?: number): Promise<RunResult>;
  remove(): void;
}

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

export function createNetns(tag: string): TestNetns {
  const name = `skiff-t-${tag}-${randomBytes(3).toString('hex')}`;
  must('ip', ['netns', 'add', name]);
  must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  const path = `/var/run/netns/${name}`;
  const enter = (cmd: string, args: string[]) => [`--net=${path}`, cmd, ...args];
  return {
    name,
    path,
    exec: (cmd, args, timeout = 30_000) => runSync('nsenter', enter(cmd, args), { timeout }),
    execAsync: (cmd, args, timeout = 30_000) => run('nsenter', enter(cmd, args), { timeout }),
    remove: () => {
      spawnSync('ip', ['netns', 'delete', name]);
    },
  };
}

/** A veth pair between two test namespaces, addressed a.b.c.1/24 and a.b.c.2/24 (`net` = "a.b.c"). */
export function linkNetns(a: TestNetns, b: TestNetns, net: string): { aAddr: string; bAddr: string } {
  const ifA = `vt${randomBytes(3).toString('hex')}`;
  must('ip', ['link', 'add', ifA, 'netns', a.name, 'type', 'veth', 'peer', 'name', 'eth-out', 'netns', b.name]);
  must('ip', ['-n', a.name, 'addr', 'add', `${net}.1/24`, 'dev', ifA]);
  must('ip', ['-n', a.name, 'link', 'set', ifA, 'up']);
  must('ip', ['-n', b.name, 'addr', 'add', `${net}.2/24`, 'dev', 'eth-out']);
  must('ip', ['-n', b.name, 'link', 'set', 'eth-out', 'up']);
  return { aAddr: `${net}.1`, bAddr: `${net}.2` };
}

/**
 * A second docker-registry over the same storage, listening on the same
 * loopback port inside `ns`: a daemon in that namespace pulls what the
 * tests pushed to `reg` on the host's loopback.
 */
export async function mirrorRegistry(reg: TestRegistry, ns: TestNetns): Promise<{ stop(): void }> {
  const child: ChildProcess = spawn('nsenter', [`--net=${ns.path}`, REGISTRY_BIN, 'serve', join(reg.dir, 'config.yml')], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await ns.execAsync('busybox', ['wget', '-q', '-O', '-', `http://${reg.host}/v2/`], 3000);
    if (r.code === 0) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`registry mirror in ${ns.name} did not start: ${r.stderr}`);
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  return { stop: () => child.kill('SIGTERM') };
}
