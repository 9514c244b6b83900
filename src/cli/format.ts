import { ConnectError } from './client.js';
import type { CommandContext } from './command.js';
import { str, UsageError, type FlagSpec } from './flags.js';

/** `-f json`: the machine-readable form every info-style command offers. */
export const FORMAT_FLAG: FlagSpec = { name: 'format', short: 'f', type: 'string', value: 'json', description: 'Print as JSON' };

export function wantsJson(ctx: CommandContext, command: string): boolean {
  const format = str(ctx.flags, 'format');
  if (format !== undefined && format !== 'json') throw new UsageError(`unsupported format "${format}" (only "json")`, command);
  return format === 'json';
}

/** Prints a client call's failure the way the docker CLI does. */
export function reportError(ctx: CommandContext, err: unknown): void {
  const e = err as Error;
  ctx.err.write(`${err instanceof ConnectError ? '' : 'Error response from daemon: '}${e.message}\n`);
}

/** Aligned "Key: value" rows as the docker CLI prints them. */
export function table(rows: Array<[string, string]>, indent: string): string {
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}${v}\n`).join('');
}

export function bytesIEC(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toFixed(2))}${units[i]}`;
}

/** A query string from the parameters that are set (`?a=1&b=x`, or ''). */
export function qs(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Left-aligned columns three spaces apart, as `docker ps` and `docker images` print them. */
export function columns(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd((widths[i] ?? 0) + 3))).join('').trimEnd() + '\n').join('');
}
