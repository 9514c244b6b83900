// The daemon's event stream (`docker events`): operations publish what
// happened; subscribers (GET /events) get it live, with the last 256 events
// kept for `since` replays, as moby does.
import { EventEmitter } from 'node:events';
import { labelMatches } from '../filters.js';

export type EventType = 'container' | 'image' | 'volume' | 'network' | 'daemon';

export interface EngineEvent {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  /** Legacy fields the docker CLI still reads for container and image events. */
  status?: string;
  id?: string;
  from?: string;
}

const KEEP = 256;

export class EventBus {
  private readonly recent: EngineEvent[] = [];
  private readonly emitter = new EventEmitter();
  private lastNano = 0;

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(type: EventType, action: string, id: string, attributes: Record<string, string> = {}): void {
    const now = Date.now();
    // Strictly increasing: clients page with since/until on timeNano.
    const nano = Math.max(now * 1_000_000, this.lastNano + 1);
    this.lastNano = nano;
    const e: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Math.floor(nano / 1e9),
      timeNano: nano,
    };
    if (type === 'container' || type === 'image') {
      e.status = action;
      e.id = id;
      if (type === 'container' && attributes.image) e.from = attributes.image;
    }
    this.recent.push(e);
    if (this.recent.length > KEEP) this.recent.shift();
    this.emitter.emit('event', e);
  }

  history(): EngineEvent[] {
    return [...this.recent];
  }

  subscribe(fn: (e: EngineEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  get listeners(): number {
    return this.emitter.listenerCount('event');
  }
}

/** `since`/`until` as the CLI sends them: unix seconds with an optional fraction. */
export function parseEventTime(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) return Number.NaN;
  const [s, frac = ''] = v.split('.');
  return Number(s) * 1e9 + Number((frac + '000000000').slice(0, 9));
}

export function matches(e: EngineEvent, filters: Map<string, string[]>): boolean {
  for (const [k, vals] of filters) {
    if (vals.length === 0) continue;
    const attrs = e.Actor.Attributes;
    const ok = (() => {
      switch (k) {
        case 'type':
          return vals.includes(e.Type);
        case 'event':
          return vals.includes(e.Action) || vals.some((v) => e.Action.startsWith(`${v}:`));
        case 'container':
          return e.Type === 'container' && vals.some((v) => e.Actor.ID.startsWith(v) || attrs.name === v);
        case 'image':
          return vals.some((v) => attrs.image === v || e.Actor.ID === v || (e.Type === 'image' && attrs.name === v));
        case 'label':
          return vals.every((l) => labelMatches(attrs, l));
        case 'volume':
          return e.Type === 'volume' && vals.includes(e.Actor.ID);
        case 'network':
          return e.Type === 'network' && vals.some((v) => e.Actor.ID.startsWith(v) || attrs.name === v);
        case 'daemon':
          return e.Type === 'daemon';
        default:
          return true;
      }
    })();
    if (!ok) return false;
  }
  return true;
}
