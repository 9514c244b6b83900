// Structured logs on stderr in dockerd's logfmt shape
// (time="..." level=info msg="..." key=value), so the same log tooling
// (journald, logread, grep) works for a skiff fleet as for a Docker one.

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  fatal(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  with(fields: LogFields): Logger;
  setLevel(level: LogLevel): void;
  enabled(level: LogLevel): boolean;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

function quote(value: string): string {
  // Quote only when needed, as logrus does, so simple values stay greppable.
  return /^[A-Za-z0-9_.:/@+\-]+$/.test(value) && value !== '' ? value : JSON.stringify(value);
}

export function formatLine(time: Date, level: LogLevel, msg: string, fields: LogFields): string {
  let line = `time="${time.toISOString()}" level=${level} msg=${JSON.stringify(msg)}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    line += ` ${k}=${quote(String(v))}`;
  }
  return line + '\n';
}

interface Sink {
  write(line: string): void;
}

class LogfmtLogger implements Logger {
  constructor(
    private readonly state: { level: number },
    private readonly sink: Sink,
    private readonly fields: LogFields,
  ) {}
  private log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LOG_LEVELS.indexOf(level) < this.state.level) return;
    this.sink.write(formatLine(new Date(), level, msg, fields ? { ...this.fields, ...fields } : this.fields));
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  fatal(msg: string, fields?: LogFields): void {
    this.log('fatal', msg, fields);
  }
  with(fields: LogFields): Logger {
    return new LogfmtLogger(this.state, this.sink, { ...this.fields, ...fields });
  }
  setLevel(level: LogLevel): void {
    this.state.level = LOG_LEVELS.indexOf(level);
  }
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.state.level;
  }
}

export function createLogger(level: LogLevel = 'info', sink: Sink = process.stderr): Logger {
  return new LogfmtLogger({ level: LOG_LEVELS.indexOf(level) }, sink, {});
}
