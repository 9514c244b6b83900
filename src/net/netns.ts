// Network namespaces made ahead of the container (the OCI runtime then joins
// them by path), through iproute2's `ip` — the one module that runs it.
// Until the networks issue adds a bridge, a container on `bridge`/`default`
// gets its own namespace with loopback up and nothing else: never the host's.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SystemError } from '../errors.js';

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new SystemError(`ip: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`ip ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
}

export function netnsName(containerId: string): string {
  return `skiff-${containerId.slice(0, 12)}`;
}

export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

/** Creates the namespace with loopback up; returns its path. Idempotent. */
export async function createNetns(name: string): Promise<string> {
  if (!existsSync(netnsPath(name))) await ip(['netns', 'add', name]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  return netnsPath(name);
}

export async function deleteNetns(name: string): Promise<void> {
  if (existsSync(netnsPath(name))) await ip(['netns', 'delete', name]);
}
