// Keeping dirty page cache small while layers are extracted. Node has no
// sync_file_range, and an fdatasync per small file costs a journal commit
// each; instead the pacer counts bytes written by every extraction in the
// daemon and, every few MiB, syncs the data root's filesystem in the
// background. Writers only wait when they run far ahead of the disk, which
// is the natural throttle balenaEngine gets from eager writeback.
import { syncFilesystem } from './syncfs.js';

export class WritebackPacer {
  private pending = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly path: string,
    /** Start a background sync after this many unsynced bytes. */
    // Each sync also commits the journal, so syncing too often writes the same
    // metadata blocks again and again; 4 MiB keeps both dirty pages (< 8 MiB)
    // and extra writes small.
    private readonly startAt = 4 * 1024 * 1024,
    /** Writers wait for the running sync beyond this many. */
    private readonly blockAt = 7 * 1024 * 1024,
  ) {}

  async wrote(bytes: number): Promise<void> {
    this.pending += bytes;
    if (this.running) {
      if (this.pending >= this.blockAt) await this.running;
      return;
    }
    if (this.pending >= this.startAt) this.kick();
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
