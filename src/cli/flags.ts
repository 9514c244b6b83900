// A declarative layer over minimist: minimist alone accepts any flag and
// guesses types; a tool started by init scripts must reject typos loudly.
import minimist from 'minimist';

export type FlagType = 'string' | 'boolean' | 'list' | 'int';

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  description: string;
  /** Shown in help as the value placeholder. */
  value?: string;
  default?: string | number | boolean;
  hidden?: boolean;
}

export type FlagValue = string | boolean | number | string[];

export interface ParsedFlags {
  values: Map<string, FlagValue>;
  /** Flags the user actually typed (a boolean's default does not count). */
  given: Set<string>;
  args: string[];
}

/** A usage mistake: exits 2 and points at help. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** minimist reads `--no-x` as "x = false"; flags really named `no-…` travel under this prefix instead. */
const NEG = 'skiff-neg-';

export function parseFlags(argv: string[], specs: FlagSpec[], command: string, opts: { stopEarly?: boolean } = {}): ParsedFlags {
  const negated = specs.filter((s) => s.name.startsWith('no-'));
  if (negated.length > 0) {
    const names = new Set(negated.map((s) => s.name));
    const term = argv.indexOf('--');
    argv = argv.map((tok, i) => {
      if (term !== -1 && i > term) return tok;
      const m = /^--(no-[^=]+)(=.*)?$/.exec(tok);
      return m && names.has(m[1] as string) ? `--${NEG}${(m[1] as string).slice(3)}${m[2] ?? ''}` : tok;
    });
    specs = specs.map((s) => (s.name.startsWith('no-') ? { ...s, name: NEG + s.name.slice(3) } : s));
    const parsed = parseFlags(argv, specs, command, opts);
    const rename = (n: string) => (n.startsWith(NEG) ? 'no-' + n.slice(NEG.length) : n);
    return {
      values: new Map([...parsed.values].map(([k, v]) => [rename(k), v])),
      given: new Set([...parsed.given].map(rename)),
      args: parsed.args,
    };
  }
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.short) byName.set(s.short, s);
  }
  let unknown: string | undefined;
  const parsed = minimist(argv, {
    string: specs.filter((s) => s.type !== 'boolean').flatMap((s) => (s.short ? [s.name, s.short] : [s.name])),
    boolean: specs.filter((s) => s.type === 'boolean').flatMap((s) => (s.short ? [s.name, s.short] : [s.name])),
    alias: Object.fromEntries(specs.filter((s) => s.short).map((s) => [s.short as string, s.name])),
    stopEarly: opts.stopEarly ?? false,
    '--': true,
    unknown: (arg: string) => {
      if (arg.startsWith('-') && arg !== '-' && unknown === undefined) unknown = arg;
      return !arg.startsWith('-') || arg === '-';
    },
  });
  if (unknown !== undefined) {
    throw new UsageError(`unknown ${unknown.startsWith('--') ? 'flag' : 'shorthand flag'}: ${describeFlag(unknown)}`, command);
  }

  const given = new Set<string>();
  for (const tok of flagTokens(argv, opts.stopEarly ? parsed._.length : 0)) {
    const m = /^--?([^=]+)/.exec(tok);
    if (!m) continue;
    const key = m[1] as string;
    const names = tok.startsWith('--') ? [key.replace(/^no-/, '')] : [...key];
    for (const n of names) {
      const spec = byName.get(n);
      if (spec) given.add(spec.name);
    }
  }

  const values = new Map<string, FlagValue>();
  for (const spec of specs) {
    const raw: unknown = parsed[spec.name];
    if (!given.has(spec.name)) {
      if (spec.default !== undefined) values.set(spec.name, spec.default);
      else if (spec.type === 'list') values.set(spec.name, []);
      else if (spec.type === 'boolean') values.set(spec.name, false);
      continue;
    }
    values.set(spec.name, coerce(spec, raw, command));
  }
  const rest = [...parsed._.map(String), ...((parsed['--'] as string[] | undefined) ?? [])];
  return { values, given, args: rest };
}

function describeFlag(arg: string): string {
  const name = arg.replace(/=.*$/, '');
  if (name.startsWith('--')) return name;
  return `'${name.slice(1, 2)}' in ${name}`;
}

/** The tokens minimist read as flags: everything before the positional tail it stopped at. */
function flagTokens(argv: string[], stoppedTail: number): string[] {
  const term = argv.indexOf('--');
  const head = term === -1 ? argv : argv.slice(0, term);
  // With stopEarly the positional tail (the subcommand and its flags) is
  // contiguous at the end of `head`; otherwise positionals never start with '-'.
  const tail = Math.min(stoppedTail, head.length);
  return head.slice(0, head.length - tail).filter((t) => t.startsWith('-') && t !== '-');
}

function coerce(spec: FlagSpec, raw: unknown, command: string): FlagValue {
  const list = Array.isArray(raw) ? raw.map(String) : raw === undefined ? [] : [String(raw)];
  switch (spec.type) {
    case 'boolean': {
      const v = Array.isArray(raw) ? raw[raw.length - 1] : raw;
      return v === true || v === 'true';
    }
    case 'list':
      for (const v of list) if (v === '') throw new UsageError(`flag needs an argument: --${spec.name}`, command);
      return list;
    case 'string': {
      const v = list[list.length - 1];
      // minimist turns a trailing `--flag` with no value into ''.
      if (v === undefined || v === '') throw new UsageError(`flag needs an argument: --${spec.name}`, command);
      return v;
    }
    case 'int': {
      const v = list[list.length - 1] ?? '';
      if (!/^-?\d+$/.test(v)) {
        throw new UsageError(`invalid argument "${v}" for "--${spec.name}" flag: not an integer`, command);
      }
      return Number(v);
    }
  }
}

export function str(f: ParsedFlags, name: string): string | undefined {
  const v = f.values.get(name);
  return typeof v === 'string' ? v : undefined;
}
export function bool(f: ParsedFlags, name: string): boolean {
  return f.values.get(name) === true;
}
export function int(f: ParsedFlags, name: string): number | undefined {
  const v = f.values.get(name);
  return typeof v === 'number' ? v : undefined;
}
export function list(f: ParsedFlags, name: string): string[] {
  const v = f.values.get(name);
  return Array.isArray(v) ? v : [];
}

export function flagHelp(specs: FlagSpec[]): string {
  const rows = specs
    .filter((s) => !s.hidden)
    .map((s) => {
      const names = (s.short ? `-${s.short}, ` : '    ') + `--${s.name}` + (s.type === 'boolean' ? '' : ` ${s.value ?? s.type}`);
      const def = s.default !== undefined && s.default !== false ? ` (default ${JSON.stringify(s.default)})` : '';
      return [names, s.description + def] as const;
    });
  const width = Math.max(0, ...rows.map(([n]) => n.length)) + 3;
  return rows.map(([n, d]) => `  ${n.padEnd(width)}${d}`).join('\n');
}
