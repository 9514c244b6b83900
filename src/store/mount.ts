// The one module that mounts and unmounts (Node has no mount(2)): overlay
// root filesystems for containers, through the `mount`/`umount` tools.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { SystemError } from '../errors.js';

function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(cwd ? { cwd } : {}) });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new SystemError(`${cmd}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
}

/**
 * Mounts an overlay at `target`. `lowers` are paths relative to `cwd` (short
 * links like Docker's `l/` names keep the option string under the kernel's
 * one-page limit when an image has many layers), top layer first.
 */
export async function mountOverlay(target: string, lowers: string[], upper: string, work: string, cwd: string): Promise<void> {
  const opts = `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},index=off`;
  if (opts.length > 4000) throw new SystemError(`too many layers to mount (${lowers.length}): the overlay options exceed one page`);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, target], cwd);
}

export async function unmount(target: string): Promise<void> {
  if (!isMounted(target)) return;
  try {
    await run('umount', [target]);
  } catch {
    // Busy (a process still holds it): detach now, the kernel frees it later.
    await run('umount', ['-l', target]);
  }
}

/** Whether something is mounted exactly at `path` (from /proc/self/mountinfo). */
export function isMounted(path: string): boolean {
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  for (const line of info.split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (mountPoint !== undefined && unescape(mountPoint) === path) return true;
  }
  return false;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}
