// The one place that creates what Node cannot: device nodes (overlay
// whiteouts are 0/0 character devices), FIFOs and extended attributes
// (`trusted.overlay.opaque`, file capabilities). It drives the `mknod`,
// `setfattr` and `chown` tools found on IoT OSes, batched into a single
// `sh` per layer, because a layer can hold thousands of whiteouts.
import { spawn } from 'node:child_process';
import { SystemError } from '../errors.js';

type Op =
  | { kind: 'node'; path: string; type: 'c' | 'b' | 'p'; major: number; minor: number; mode: number; uid: number; gid: number }
  | { kind: 'xattr'; path: string; name: string; value: Buffer };

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export class SpecialFiles {
  private ops: Op[] = [];

  mknod(path: string, type: 'c' | 'b' | 'p', major: number, minor: number, mode: number, uid: number, gid: number): void {
    this.ops.push({ kind: 'node', path, type, major, minor, mode, uid, gid });
  }

  setxattr(path: string, name: string, value: Buffer): void {
    this.ops.push({ kind: 'xattr', path, name, value });
  }

  /** Drops pending work for a path a later entry replaced. */
  forget(path: string): void {
    this.ops = this.ops.filter((o) => o.path !== path && !o.path.startsWith(path + '/'));
  }

  get pending(): number {
    return this.ops.length;
  }

  async flush(): Promise<void> {
    if (this.ops.length === 0) return;
    const lines = ['set -e'];
    for (const o of this.ops) {
      if (o.kind === 'node') {
        const mode = (o.mode & 0o7777).toString(8);
        lines.push(
          o.type === 'p' ? `mknod -m ${mode} ${q(o.path)} p` : `mknod -m ${mode} ${q(o.path)} ${o.type} ${o.major} ${o.minor}`,
          `chown -h ${o.uid}:${o.gid} ${q(o.path)}`,
        );
      } else {
        lines.push(`setfattr -h -n ${q(o.name)} -v 0x${o.value.toString('hex') || '00'} ${q(o.path)}`);
      }
    }
    this.ops = [];
    await runScript(lines.join('\n') + '\n');
  }
}

function runScript(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-s'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new SystemError(`creating special files: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new SystemError(`creating special files (mknod/setfattr) failed: ${stderr.trim() || `exit ${code}`}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(script);
  });
}

/**
 * The directories under `root` marked opaque (`trusted.overlay.opaque=y`): an
 * overlay upper dir's "this replaced the lower directory". One `getfattr`
 * walk for the whole tree; paths come back absolute.
 */
export function opaqueDirs(root: string): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    const child = spawn('getfattr', ['-R', '-h', '-P', '--absolute-names', '-d', '-m', '^trusted\\.overlay\\.opaque$', '-e', 'text', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new SystemError(`reading overlay attributes: ${err.message}`)));
    child.on('close', (code) => {
      if (code !== 0 && out === '') return reject(new SystemError(`reading overlay attributes (getfattr) failed: ${stderr.trim() || `exit ${code}`}`));
      const dirs = new Set<string>();
      let file: string | undefined;
      for (const line of out.split('\n')) {
        if (line.startsWith('# file: ')) file = Buffer.from(unescapeOctal(line.slice(8)), 'latin1').toString('utf8');
        else if (file !== undefined && line === 'trusted.overlay.opaque="y"') dirs.add(file);
      }
      resolve(dirs);
    });
  });
}

/** getfattr writes unusual bytes of names as \ooo. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}
