// Names → image IDs: tags (`docker.io/library/busybox:latest`) and digest
// references (`docker.io/library/busybox@sha256:…`, the manifest a pull
// resolved). One small JSON file rewritten durably on every change.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { writeFileDurable } from './durable.js';

export class RefStore {
  private refs = new Map<string, string>();
  private readonly file: string;
  /** Serialises writes so two changes never race to the file. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(root: string) {
    this.file = join(root, 'repositories.json');
  }

  static async open(root: string, knownImage: (id: string) => boolean): Promise<RefStore> {
    const s = new RefStore(root);
    try {
      const data = JSON.parse(await fs.readFile(s.file, 'utf8')) as { refs?: Record<string, string> };
      for (const [ref, id] of Object.entries(data.refs ?? {})) if (knownImage(id)) s.refs.set(ref, id);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    return s;
  }

  get(ref: string): string | undefined {
    return this.refs.get(ref);
  }

  /** Canonical references pointing at an image, sorted. */
  refsOf(id: string): string[] {
    return [...this.refs].filter(([, v]) => v === id).map(([k]) => k).sort();
  }

  all(): Array<[string, string]> {
    return [...this.refs];
  }

  async set(entries: Array<[string, string]>): Promise<void> {
    for (const [ref, id] of entries) this.refs.set(ref, id);
    await this.save();
  }

  async delete(ref: string): Promise<boolean> {
    const had = this.refs.delete(ref);
    if (had) await this.save();
    return had;
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify({ refs: Object.fromEntries([...this.refs].sort()) }, null, 1);
    this.writing = this.writing.catch(() => undefined).then(() => writeFileDurable(this.file, snapshot, 0o600));
    return this.writing;
  }
}
