// Which log driver a container uses and with what options (moby's
// mergeAndVerifyLogConfig), and the writer and reader of each: json-file
// (exec/jsonlog.ts), local (exec/locallog.ts), none.
import { posix } from 'node:path';
import { InvalidParameter } from '../errors.js';
import { JsonLogWriter, parseLogOpts, readLog, type LogEntry } from './jsonlog.js';
import { LocalLogWriter, parseLocalLogOpts, readLocalLog } from './locallog.js';

export interface LogWriter {
  write(stream: 'stdout' | 'stderr', data: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface LogConfig {
  Type: string;
  Config: Record<string, string>;
}

/** The log drivers skiff has. */
export const LOG_DRIVERS = ['json-file', 'local', 'none'];

/**
 * The container's driver and options: its own, or the daemon's; the daemon's
 * options fill in only when the driver is the daemon's (as in moby).
 */
export function effectiveLogConfig(own: { Type?: string; Config?: Record<string, string> | null } | undefined, daemonDriver: string, daemonOpts: Record<string, string>): LogConfig {
  const type = own?.Type || daemonDriver;
  const config = { ...(own?.Config ?? {}) };
  if (type === daemonDriver) for (const [k, v] of Object.entries(daemonOpts)) if (!(k in config)) config[k] = v;
  return { Type: type, Config: config };
}

/** At create: an unknown driver or option is a 400. */
export function validateLogConfig(cfg: LogConfig): void {
  if (!LOG_DRIVERS.includes(cfg.Type)) throw new InvalidParameter(`logger: no log driver named '${cfg.Type}' is registered`);
  if (cfg.Type === 'json-file') parseLogOpts(cfg.Config);
  else if (cfg.Type === 'local') parseLocalLogOpts(cfg.Config);
}

/** Where each driver keeps its files, given the container's directory and json-file path. */
export interface LogPaths {
  dir: string;
  jsonPath: string;
}

export function localLogPath(p: LogPaths): string {
  return posix.join(p.dir, 'local-logs', 'container.log');
}

export function openLogWriter(cfg: LogConfig, p: LogPaths): LogWriter | undefined {
  if (cfg.Type === 'none') return undefined;
  if (cfg.Type === 'local') return new LocalLogWriter(localLogPath(p), parseLocalLogOpts(cfg.Config));
  return new JsonLogWriter(p.jsonPath, parseLogOpts(cfg.Config));
}

/** Every stored entry, oldest first. */
export function readLogs(cfg: LogConfig, p: LogPaths): AsyncGenerator<LogEntry> {
  if (cfg.Type === 'none') throw new InvalidParameter('configured logging driver does not support reading');
  if (cfg.Type === 'local') return readLocalLog(localLogPath(p), parseLocalLogOpts(cfg.Config).maxFile);
  return readLog(p.jsonPath, parseLogOpts(cfg.Config).maxFile);
}
