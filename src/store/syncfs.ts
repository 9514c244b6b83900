// Making a whole layer durable at once. Node has no syncfs(2) and fsyncing
// every small file of a layer costs one journal commit each on flash; the
// `sync` tool (coreutils and BusyBox both take `-f`) syncs the filesystem
// that holds the layer in one call, as balenaEngine's per-layer sync does.
//
// A pull asks for a sync every few MiB. Spawning from the daemon forks a
// process with its whole address space each time (milliseconds of main-thread
// time); one small `sh` kept alive forks `sync` instead, and the daemon only
// writes a line and reads the exit status back.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { SystemError } from '../errors.js';

const LOOP = 'while IFS= read -r p; do if [ -z "$p" ]; then sync; else sync -f "$p" 2>/dev/null || sync; fi; echo $?; done';

interface Waiter {
  resolve: (code: number) => void;
  reject: (err: Error) => void;
}

class SyncServer {
  private child: ChildProcessWithoutNullStreams | undefined;
  private readonly waiting: Waiter[] = [];
  private out = '';

  request(path: string): Promise<number> {
    const child = this.child ?? this.start();
    return new Promise<number>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      if (this.waiting.length === 1) this.hold(true);
      child.stdin.write(path + '\n');
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn('sh', ['-c', LOOP], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      this.out += s;
      for (let nl = this.out.indexOf('\n'); nl >= 0; nl = this.out.indexOf('\n')) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        this.waiting.shift()?.resolve(Number(line));
        if (this.waiting.length === 0) this.hold(false);
      }
    });
    child.stderr.resume();
    child.stdin.on('error', () => undefined); // seen as 'close' below
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.out = '';
      for (const w of this.waiting.splice(0)) w.reject(new SystemError(`sync: ${why}`));
    };
    child.on('error', (err) => gone(err.message));
    child.on('close', (code, signal) => gone(`helper exited (${signal ?? code})`));
    this.hold(false);
    return child;
  }

  /** An idle helper must not keep the process alive; a pending sync must. */
  private hold(on: boolean): void {
    const c = this.child;
    if (!c) return;
    for (const h of [c, c.stdin, c.stdout, c.stderr] as Array<{ ref(): void; unref(): void }>) {
      if (on) h.ref();
      else h.unref();
    }
  }
}

const server = new SyncServer();

export async function syncFilesystem(path: string): Promise<void> {
  // A path the line protocol cannot carry syncs everything instead.
  const code = await server.request(path.includes('\n') ? '' : path);
  if (code !== 0) throw new SystemError(`sync of ${path} failed`);
}
