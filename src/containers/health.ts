// Docker's health checks: the container's HEALTHCHECK command runs through
// exec every Interval; Retries failures in a row make it unhealthy. With
// --experimental, an unhealthy container is restarted per its restart policy
// (balenaEngine's behaviour, which balenaOS runs with).
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../log/logger.js';
import type { ContainerRecord, ContainerStore, HealthState } from '../store/containers.js';
import type { HealthConfig } from '../exec/spec.js';
import type { ExecService } from './exec.js';

const NS = 1_000_000;
const KEEP_LOG = 5;
const MAX_OUTPUT = 4096;

export interface HealthHost {
  readonly emitter: import('node:events').EventEmitter;
  restartUnhealthy(id: string): Promise<void>;
}

export class HealthMonitor {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly o: {
      store: ContainerStore;
      exec: ExecService;
      host: HealthHost;
      events?: EventBus;
      logger: Logger;
      experimental: boolean;
    },
  ) {
    o.host.emitter.on('started', (id: string) => this.begin(id));
    o.host.emitter.on('exit', (id: string) => this.end(id));
    o.host.emitter.on('removed', (id: string) => this.end(id));
  }

  static configOf(c: ContainerRecord): HealthConfig | undefined {
    const hc = (c.Config as { Healthcheck?: HealthConfig }).Healthcheck;
    if (!hc?.Test?.length || hc.Test[0] === 'NONE') return undefined;
    return hc;
  }

  private begin(id: string): void {
    const c = this.o.store.find(id);
    if (!c) return;
    const hc = HealthMonitor.configOf(c);
    if (!hc) return;
    this.end(id);
    const interval = (hc.Interval || 30_000 * NS) / NS;
    const schedule = () => {
      const t = setTimeout(() => void this.probe(id, hc).then(() => this.timers.has(id) && schedule()), interval);
      t.unref();
      this.timers.set(id, t);
    };
    schedule();
  }

  private end(id: string): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  private async probe(id: string, hc: HealthConfig): Promise<void> {
    const c = this.o.store.find(id);
    if (!c?.State.Running || c.State.Paused) return;
    const test = hc.Test ?? [];
    const cmd = test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', test.slice(1).join(' ')] : test[0] === 'CMD' ? test.slice(1) : test;
    const start = new Date();
    let output = '';
    let exitCode: number;
    const timeoutMs = (hc.Timeout || 30_000 * NS) / NS;
    try {
      const { Id } = this.o.exec.create(id, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
      const run = this.o.exec.start(Id, {
        write: async (_s, data) => {
          if (output.length < MAX_OUTPUT) output += data.toString('utf8').slice(0, MAX_OUTPUT - output.length);
        },
        input: undefined,
        closed: new Promise<void>(() => undefined),
      });
      const timedOut = await Promise.race([run.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs).unref())]);
      exitCode = timedOut ? -1 : (this.o.exec.inspect(Id).ExitCode ?? -1);
      if (timedOut) output = `Health check exceeded timeout (${timeoutMs / 1000}s)`;
    } catch (err) {
      exitCode = -1;
      output = (err as Error).message;
    }
    const cur = this.o.store.find(id);
    if (!cur?.State.Running) return;
    const h: HealthState = cur.State.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    h.Log = [...h.Log, { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: exitCode, Output: output }].slice(-KEEP_LOG);
    const before = h.Status;
    if (exitCode === 0) {
      h.Status = 'healthy';
      h.FailingStreak = 0;
    } else {
      const inStart = Date.now() - Date.parse(cur.State.StartedAt) < (hc.StartPeriod ?? 0) / NS;
      if (!inStart) h.FailingStreak++;
      if (h.FailingStreak >= (hc.Retries || 3)) h.Status = 'unhealthy';
    }
    cur.State.Health = h;
    await this.o.store.save(cur);
    if (h.Status !== before) {
      const cfg = cur.Config as { Image?: string };
      this.o.events?.publish('container', `health_status: ${h.Status}`, cur.Id, { image: cfg.Image ?? cur.Image, name: cur.Name.slice(1) });
      if (h.Status === 'unhealthy' && this.o.experimental) {
        this.o.logger.info('restarting unhealthy container', { container: cur.Id.slice(0, 12) });
        await this.o.host.restartUnhealthy(cur.Id).catch((err: Error) => this.o.logger.warn('restart of unhealthy container failed', { error: err.message }));
      }
    }
  }
}
