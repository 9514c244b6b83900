// Whether the kernel's OOM killer struck inside a container. The runtime
// removes the container's cgroup (and its OOM counters) as it exits, so the
// evidence is read from the kernel log instead: an oom-kill record names the
// memory cgroup, which for skiff's containers is /skiff/<id>.
import { closeSync, constants, openSync, readSync } from 'node:fs';

export function wasOomKilled(containerId: string): boolean {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false; // no kernel log access: Docker would not know either without its cgroup events
  }
  const needle = `_memcg=/skiff/${containerId}`;
  const buf = Buffer.alloc(8192);
  try {
    for (let i = 0; i < 100_000; i++) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'EPIPE') continue; // a record was overwritten while reading: skip it
        break; // EAGAIN: the end of the log
      }
      if (n <= 0) break;
      const rec = buf.toString('utf8', 0, n);
      if (rec.includes('oom-kill') && rec.includes(needle)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}
