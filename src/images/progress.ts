// What a pull reports while it runs. The operation emits these events; the
// API turns them into Docker's JSON lines and the CLI into progress bars.
export type PullEvent =
  | { kind: 'status'; id?: string; text: string }
  | { kind: 'layer'; id: string; status: LayerStatus; current?: number; total?: number }
  | { kind: 'total'; current: number; total: number };

export type LayerStatus =
  | 'Pulling fs layer'
  | 'Waiting'
  | 'Downloading'
  | 'Verifying Checksum'
  | 'Download complete'
  | 'Extracting'
  | 'Pull complete'
  | 'Already exists'
  | `Retrying in ${number} second${'' | 's'}`;

export type PullListener = (e: PullEvent) => void;

/** Rate-limits progress per layer, as Docker and balenaEngine do (≤ 1 update / 100 ms, final always). */
export class Throttle {
  private last = new Map<string, number>();
  constructor(private readonly ms = 100) {}
  due(key: string, final = false): boolean {
    const now = Date.now();
    if (!final && now - (this.last.get(key) ?? 0) < this.ms) return false;
    this.last.set(key, now);
    return true;
  }
}
