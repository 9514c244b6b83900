// Keeping dirty page cache small while layers are extracted. Node has no
// sync_file_range, and an fdatasync per small file costs a journal commit
// each; instead the pacer counts bytes written through the page cache by
// every extraction in the daemon and, every few MiB, syncs the data root's
// filesystem in the background. Writers only wait when they run far ahead of
// the disk, which is the natural throttle balenaEngine gets from eager
// writeback. Larger file bodies skip the page cache (directio.ts) and are
// only counted apart, in case the filesystem quietly buffers them anyway.
import { readFileSync } from 'node:fs';
import { syncFilesystem } from './syncfs.js';

/** What an extraction tells about its writes. */
export interface Pacer {
  /** Bytes written through the page cache; may wait for a sync when far ahead. */
  wrote(bytes: number): Promise<void>;
  /** Bytes written with O_DIRECT. */
  wroteDirect(bytes: number): Promise<void>;
}

/** Dirty plus Writeback of the whole machine, from the kernel's own count (0 if unreadable). */
function machineDirty(): number {
  let text: string;
  try {
    text = readFileSync('/proc/meminfo', 'latin1');
  } catch {
    return 0;
  }
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return (kib('Dirty') + kib('Writeback')) * 1024;
}

export class WritebackPacer implements Pacer {
  private pending = 0;
  private direct = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly path: string,
    /** Start a background sync after this many unsynced bytes. */
    // Each sync also writes out the metadata blocks being filled, which the
    // next files dirty (and count as written) again; 4 MiB keeps both dirty
    // pages (< 8 MiB) and extra writes small.
    private readonly startAt = 4 * 1024 * 1024,
    /** Writers wait for the running sync beyond this many. */
    private readonly blockAt = 7 * 1024 * 1024,
    /** O_DIRECT bytes between two looks at the machine's dirty memory. */
    private readonly directCheckAt = 8 * 1024 * 1024,
  ) {}

  async wrote(bytes: number): Promise<void> {
    this.pending += bytes;
    if (this.running) {
      if (this.pending >= this.blockAt) await this.running;
      return;
    }
    if (this.pending >= this.startAt) this.kick();
  }

  async wroteDirect(bytes: number): Promise<void> {
    this.direct += bytes;
    if (this.direct < this.directCheckAt) return;
    this.direct = 0;
    // ext4 with data=journal, and some network filesystems, accept O_DIRECT
    // and buffer it all the same: then those bytes are paced like the rest.
    const dirty = machineDirty();
    if (dirty >= this.startAt) await this.wrote(Math.max(0, Math.min(dirty, this.blockAt) - this.pending));
  }

  private kick(): void {
    this.pending = 0;
    this.running = syncFilesystem(this.path)
      .catch(() => undefined) // durability is enforced at commit; this is only pacing
      .finally(() => {
        this.running = undefined;
        if (this.pending >= this.startAt) this.kick();
      });
  }

  /** Waits for a running background sync (a commit's own sync follows). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
