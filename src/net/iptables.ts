// skiff's packet filter rules, through iptables (nft or legacy backend,
// whichever `iptables` is): the only module that runs it. skiff owns three
// chains and rewrites them whole on every change (iptables-restore without
// flushing anyone else's), so a rebuild after a crash is the same operation
// as any update and no stale rule can survive it.
import { spawn } from 'node:child_process';
import { SystemError } from '../errors.js';

export const NAT_CHAIN = 'SKIFF';
export const POSTROUTING_CHAIN = 'SKIFF-POSTROUTING';
export const FORWARD_CHAIN = 'SKIFF-FORWARD';

export interface RuleSet {
  /** nat rules of SKIFF (DNAT for published ports), as iptables arguments after `-A SKIFF`. */
  dnat: string[][];
  /** nat rules of SKIFF-POSTROUTING (masquerade). */
  postrouting: string[][];
  /** filter rules of SKIFF-FORWARD. */
  forward: string[][];
}

function run(cmd: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new SystemError(`${cmd}: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new SystemError(`${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
    if (input !== undefined) child.stdin?.end(input);
  });
}

function quote(a: string): string {
  return /^[A-Za-z0-9_.:/!+-]+$/.test(a) ? a : `"${a.replace(/(["\\])/g, '\\$1')}"`;
}

function line(chain: string, rule: string[]): string {
  return `-A ${chain} ${rule.map(quote).join(' ')}`;
}

/** The hooks from the built-in chains into skiff's, added once. */
const JUMPS: Array<{ table: string; chain: string; rule: string[] }> = [
  { table: 'nat', chain: 'PREROUTING', rule: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', NAT_CHAIN] },
  { table: 'nat', chain: 'OUTPUT', rule: ['!', '-d', '127.0.0.0/8', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', NAT_CHAIN] },
  { table: 'nat', chain: 'POSTROUTING', rule: ['-j', POSTROUTING_CHAIN] },
  { table: 'filter', chain: 'FORWARD', rule: ['-j', FORWARD_CHAIN] },
];

/** The hooks were checked once by this process (each daemon start checks again). */
let jumpsInPlace = false;

/** Replaces the content of skiff's chains with `rules` and makes sure the built-in chains jump to them. */
export async function applyRules(rules: RuleSet): Promise<void> {
  const text = [
    '*nat',
    `:${NAT_CHAIN} - [0:0]`,
    `:${POSTROUTING_CHAIN} - [0:0]`,
    ...rules.dnat.map((r) => line(NAT_CHAIN, r)),
    ...rules.postrouting.map((r) => line(POSTROUTING_CHAIN, r)),
    'COMMIT',
    '*filter',
    `:${FORWARD_CHAIN} - [0:0]`,
    ...rules.forward.map((r) => line(FORWARD_CHAIN, r)),
    'COMMIT',
    '',
  ].join('\n');
  await run('iptables-restore', ['--noflush', '-w'], text);
  if (jumpsInPlace) return;
  for (const j of JUMPS) {
    const exists = await run('iptables', ['-w', '-t', j.table, '-C', j.chain, ...j.rule]).then(() => true, () => false);
    if (!exists) await run('iptables', ['-w', '-t', j.table, '-I', j.chain, '1', ...j.rule]);
  }
  jumpsInPlace = true;
}
