// Fuzzing the daemon's HTTP API over its unix socket with raw, often broken,
// requests: random bytes, garbage headers, invalid methods, oversized headers
// and bodies, bad chunked framing, truncated requests and hang-ups, odd paths,
// versions and queries, Upgrade requests, pipelining. Every response that can
// be parsed must be well-formed HTTP, errors must carry Docker's JSON shape and
// nothing may be a 5xx; afterwards the daemon must still answer and stop cleanly.
//
//   SKIFF_FUZZ_SEED=<n>    replay a run (the seed is printed at the start)
//   SKIFF_FUZZ_COUNT=<n>   number of random cases (default 3000)
//   SKIFF_FUZZ_CASE=<i>    run only case i of that seed's sequence, printing what was sent and received
//   SKIFF_FUZZ_LOG=<file>  keep the daemon's (debug) log there
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { parseResponse, rawRequest, startDaemon, type TestDaemon } from '../helpers/daemon.js';

const COUNT = Number(process.env.SKIFF_FUZZ_COUNT ?? 3000);
const CONCURRENCY = 16;
/** A case ends when the server has been silent this long. */
const IDLE_MS = 1500;
/** And in any case after this long. */
const CASE_CAP_MS = 8000;
const MAX_HEADER = 64 * 1024;
const MAX_BODY = 4 * 1024 * 1024;

/** The deliberate 5xx answers: a node that is not a swarm manager answers 503 on swarm routes, as dockerd does. */
const DELIBERATE_5XX = [
  { status: 503, message: /^This node is not a swarm manager\./ },
  // Pulls name a registry on a closed loopback port: tests never reach beyond loopback.
  { status: 503, message: /127\.0\.0\.1:1\b|ECONNREFUSED/ },
];

// ---------------------------------------------------------------------------
// A small seeded PRNG (xorshift32) so a failing run can be replayed exactly.
// ---------------------------------------------------------------------------
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x6d2b79f5;
  }
  next(): number {
    let s = this.s;
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return this.s / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A string of `n` characters drawn from `alphabet`. */
  str(n: number, alphabet: string): string {
    let out = '';
    for (let i = 0; i < n; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }
}

const TOKEN = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const ANY_PRINTABLE = TOKEN + ' !"#$%&\'()*+,./:;<=>?@[\\]^`{|}~';
/** Every byte value as a latin1 character. */
const ALL_BYTES = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------
type After =
  /** Half-close after writing; the server must answer and close. */
  | 'end'
  /** Keep the connection open until `methods.length` responses arrived. */
  | 'keep'
  /** Hang up right after writing (after `destroyAfterMs`). */
  | 'destroy';

interface Expect {
  status?: number;
  /** The body must be JSON with a string `message`. */
  jsonError?: boolean;
  contentType?: string;
  body?: string;
  emptyBody?: boolean;
}

interface Case {
  index: number;
  kind: string;
  parts: Buffer[];
  gapMs: number;
  after: After;
  destroyAfterMs: number;
  /** Methods of the requests sent, in order (HEAD responses have no body). */
  methods: string[];
  /** Strict expectations on the first response; it must then exist. */
  expect?: Expect;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function req(method: string, target: string, headers: string[], body: string | Buffer = '', version = 'HTTP/1.1'): Buffer {
  const head = `${method} ${target} ${version}\r\n${headers.map((h) => h + '\r\n').join('')}\r\n`;
  return Buffer.concat([b(head), typeof body === 'string' ? b(body) : body]);
}

const ROUTES = ['/_ping', '/version', '/info', '/swarm', '/nodes'];
const MORE_ROUTES = [
  '/containers/json',
  '/containers/create',
  '/containers/abc123/json',
  '/containers/abc123/start',
  '/containers/abc123/attach?stream=1&stdin=1&stdout=1',
  '/containers/abc123/archive?path=/etc',
  '/exec/abc123/start',
  '/images/json',
  '/images/create?fromImage=127.0.0.1:1/busybox&tag=latest',
  '/images/load',
  '/images/busybox:latest/json',
  '/images/myrepo/bb:v1/json',
  '/build',
  // Bounded: an open-ended GET /events streams until the client leaves.
  '/events?since=0&until=1',
  '/system/df',
  '/swarm/init',
  '/nodes/xyz',
  '/services',
  '/tasks',
  '/secrets/create',
  '/configs',
  '/plugins',
  '/',
  '',
];
const POST_ROUTES = ['/containers/create', '/images/load', '/build', '/images/create', '/exec/abc123/start', '/containers/abc123/start', '/swarm/init', '/info', '/_ping', '/secrets/create'];
const PREFIXES = ['', '/v1.41', '/v1.40', '/v1.12', '/v1.25'];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];

function host(r: Rng): string[] {
  return r.chance(0.92) ? ['Host: docker'] : [];
}

function anyRoute(r: Rng): string {
  return r.pick(PREFIXES) + (r.chance(0.5) ? r.pick(ROUTES) : r.pick(MORE_ROUTES));
}

function validRequest(r: Rng, opts: { close?: boolean } = {}): { data: Buffer; method: string } {
  const method = r.pick(['GET', 'GET', 'GET', 'HEAD', 'POST', 'DELETE', 'OPTIONS', 'PUT']);
  const headers = ['Host: docker', 'User-Agent: fuzz/1.0'];
  let body = '';
  if (method === 'POST' || method === 'PUT') {
    body = r.chance(0.5) ? JSON.stringify({ Image: 'busybox', Cmd: ['true'] }) : '';
    headers.push('Content-Type: application/json', `Content-Length: ${body.length}`);
  }
  if (opts.close) headers.push('Connection: close');
  return { data: req(method, anyRoute(r), headers, body), method };
}

function randomBytesCase(r: Rng): Partial<Case> {
  const n = r.pick([1, 2, 8, 64, 512, 2048, 4096]);
  if (r.chance(0.03)) return { kind: 'empty', parts: [], after: r.chance(0.5) ? 'end' : 'destroy' };
  let data = r.bytes(r.range(1, n));
  if (r.chance(0.4)) data = Buffer.concat([b(r.pick(['GET ', 'POST ', 'GET / HTTP/1.1\r\n', 'HEAD /_ping HTTP/1.1\r\nHost: x\r\n', 'PUT /info HTTP/1.0\r\n'])), data]);
  if (r.chance(0.3)) data = Buffer.concat([data, b('\r\n\r\n')]);
  return { kind: 'random-bytes', parts: [data], after: r.chance(0.75) ? 'end' : 'destroy' };
}

const GARBAGE_HEADERS: Array<(r: Rng) => string> = [
  (r) => `${r.str(r.range(1, 12), TOKEN)} ${r.str(r.range(1, 5), TOKEN)}: x`,
  (r) => `X-${r.str(4, TOKEN)}${r.pick(['(', ')', '<', '>', '@', ',', ';', '\\', '"', '/', '[', ']', '?', '=', '{', '}', '\x01', '\x7f', '\xff'])}: y`,
  (r) => `X-Ctl: a${r.pick(['\x00', '\x01', '\x08', '\x1b', '\x7f', '\r', '\x0b'])}b`,
  (r) => `X-Fold: start\r\n${r.pick([' ', '\t'])}continued`,
  (r) => r.str(r.range(1, 30), TOKEN),
  (r) => `: ${r.str(r.range(0, 10), TOKEN)}`,
  (r) => `X-Long: ${r.str(r.range(1024, 30 * 1024), ANY_PRINTABLE)}`,
  (r) => `X-Bin: ${r.str(r.range(1, 64), ALL_BYTES.slice(0x80))}`,
  (r) => `X-Any: ${r.str(r.range(1, 64), ALL_BYTES)}`,
  (r) => `Content-Length: ${r.pick(['-1', 'abc', '1e3', '0x10', '99999999999999999999999', ' 5', '5 5', '', '+5', '007'])}`,
  (r) => `Content-Length: ${r.range(0, 9)}\r\nContent-Length: ${r.range(10, 99)}`,
  (r) => `Transfer-Encoding: ${r.pick(['chunked', 'gzip', 'identity', 'chunked, chunked', 'gzip, chunked', 'chunked, gzip', 'xchunked', ''])}`,
  () => 'Transfer-Encoding: chunked\r\nContent-Length: 3',
  (r) => `Expect: ${r.pick(['100-continue', '100-Continue', 'bogus', '200-ok', ''])}`,
  (r) => `Connection: ${r.pick(['close', 'keep-alive', 'Upgrade', 'upgrade, close', 'TE', 'garbage', ''])}`,
  (r) => `Upgrade: ${r.pick(['tcp', 'h2c', 'websocket', '', 'tcp, tcp'])}`,
  (r) => `Host: ${r.pick(['', 'a b', 'x\r\nHost: y', '[::1', 'ö'])}`,
  () => 'Host: a\r\nHost: b',
  (r) => `Content-Type: ${r.pick(['application/json', 'text/plain', 'application/x-tar', '', ';;;', 'application/json; charset=\x01'])}`,
  (r) => `X-Registry-Auth: ${r.str(r.range(0, 2000), ANY_PRINTABLE)}`,
  (r) => `X-Bare-LF: a\nX-Next: ${r.str(3, TOKEN)}`,
  (r) => `${r.str(r.range(1, 8), TOKEN)}:${r.str(r.range(0, 8), TOKEN)}`,
];

function garbageHeadersCase(r: Rng): Partial<Case> {
  const method = r.pick(['GET', 'GET', 'HEAD', 'POST', 'DELETE']);
  const headers = [...host(r)];
  for (let i = r.range(1, 8); i > 0; i--) headers.splice(r.int(headers.length + 1), 0, r.pick(GARBAGE_HEADERS)(r));
  const body = method === 'POST' && r.chance(0.5) ? '{"a":1}' : '';
  return { kind: 'garbage-headers', parts: [req(method, anyRoute(r), headers, body)], after: r.chance(0.6) ? 'end' : 'keep', methods: [method] };
}

function requestLineCase(r: Rng): Partial<Case> {
  const method = r.pick([
    'FOO', 'get', 'Get', 'G ET', 'GET\x00', 'CONNECT', 'PRI', 'TRACE', 'PROPFIND', 'M-SEARCH', 'LINK', 'SOURCE',
    'QUERY', 'BREW', '', ' ', 'GETGETGETGETGETGETGETGET', 'PÖST', '\xff\xfe', 'DELETE\t',
  ].concat([r.str(r.range(1, 20), TOKEN.toUpperCase()), r.str(r.range(1, 8), ALL_BYTES)]));
  const target = r.pick([anyRoute(r), '*', 'http://docker/_ping', 'http://[::1/x', '//evil/_ping', '//[/x', '/a b', '', '/\x00', `/${r.str(8, ALL_BYTES)}`, '_ping', '?x=1']);
  const version = r.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.1x', 'http/1.1', 'HTTP/1', 'HTTP/9.9', '']);
  const data =
    r.chance(0.15) && method === 'PRI'
      ? b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
      : version === ''
        ? b(`${method} ${target}\r\n${host(r).join('')}\r\n\r\n`)
        : req(method, target, host(r), '', version);
  return { kind: 'request-line', parts: [data], after: r.chance(0.7) ? 'end' : 'keep', methods: [method] };
}

function hugeHeaderCase(r: Rng): Partial<Case> {
  const size = r.range(MAX_HEADER + 1024, 150 * 1024);
  const route = r.pick(PREFIXES) + r.pick(ROUTES);
  const method = r.pick(['GET', 'POST', 'DELETE']);
  let data: Buffer;
  switch (r.int(3)) {
    case 0: // one enormous value (X-Registry-Auth is where real clients put big headers)
      data = req(method, route, ['Host: docker', `X-Registry-Auth: ${r.str(size, TOKEN)}`]);
      break;
    case 1: {
      // thousands of ordinary headers
      const headers = ['Host: docker'];
      let total = 0;
      // node counts the bytes of names and values, not the ": " and CRLF around them.
      while (total < size) {
        const name = `X-H${headers.length}`;
        const value = r.str(r.range(10, 200), TOKEN);
        headers.push(`${name}: ${value}`);
        total += name.length + value.length;
      }
      data = req(method, route, headers);
      break;
    }
    default: // an enormous request target
      data = req(method, `${route}?q=${r.str(size, TOKEN)}`, ['Host: docker']);
  }
  return {
    kind: 'huge-header',
    parts: [data],
    after: r.chance(0.5) ? 'end' : 'keep',
    methods: [method],
    expect: { status: 400, jsonError: true, contentType: 'application/json' },
  };
}

function hugeBodyCase(r: Rng): Partial<Case> {
  const route = r.pick(PREFIXES) + r.pick(POST_ROUTES);
  const method = r.chance(0.85) ? 'POST' : 'PUT';
  if (r.chance(0.04)) {
    // The body really is larger than the cap, sent in full, chunked or not.
    const total = MAX_BODY + r.range(1, 512 * 1024);
    const payload = Buffer.alloc(total, 0x61);
    if (r.chance(0.5)) {
      const parts: Buffer[] = [];
      for (let off = 0; off < total; off += 256 * 1024) {
        const piece = payload.subarray(off, off + 256 * 1024);
        parts.push(b(piece.length.toString(16) + '\r\n'), piece, b('\r\n'));
      }
      parts.push(b('0\r\n\r\n'));
      return { kind: 'huge-body-chunked', parts: [req(method, route, ['Host: docker', 'Transfer-Encoding: chunked', 'Content-Type: application/json']), ...parts], after: 'keep', methods: [method] };
    }
    return { kind: 'huge-body-full', parts: [req(method, route, ['Host: docker', `Content-Length: ${total}`, 'Content-Type: application/json']), payload], after: 'keep', methods: [method] };
  }
  const length = r.pick([MAX_BODY + 1, 5 * 1024 * 1024, 100 * 1024 * 1024, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2]);
  const declared = r.chance(0.9) ? String(length) : '9'.repeat(r.range(17, 40));
  const sent = r.bytes(r.pick([0, 1, 100, 4096, 65536]));
  const headers = ['Host: docker', `Content-Length: ${declared}`, 'Content-Type: application/json'];
  if (r.chance(0.2)) headers.push('Connection: close');
  return { kind: 'huge-body', parts: [req(method, route, headers), sent], after: r.pick<After>(['keep', 'keep', 'end', 'destroy']), methods: [method] };
}

const BAD_CHUNKS = [
  'zz\r\nabc\r\n0\r\n\r\n',
  '-1\r\nabc\r\n0\r\n\r\n',
  'fffffffffffffffffffff\r\nabc\r\n',
  'ffffffff\r\nabc',
  '3\r\nabcdef\r\n0\r\n\r\n',
  '3\r\nab\r\n0\r\n\r\n',
  '3abc\r\n0\r\n\r\n',
  '3\nabc\n0\n\n',
  '3\rabc\r0\r\r',
  '0x3\r\nabc\r\n0\r\n\r\n',
  '3;ext=\x01\r\nabc\r\n0\r\n\r\n',
  '3;' + 'e'.repeat(20000) + '\r\nabc\r\n0\r\n\r\n',
  '3\r\nabc\r\n0\r\nX-Trailer: a\x00b\r\n\r\n',
  '3\r\nabc\r\n0\r\nBad Trailer\r\n\r\n',
  '3\r\nabc\r\n',
  '3\r\nabc\r\n0\r\n',
  ' 3\r\nabc\r\n0\r\n\r\n',
  '\r\n\r\n',
  '3 \r\nabc\r\n0\r\n\r\n',
  '00000000000000000000000000003\r\nabc\r\n0\r\n\r\n',
];

function badChunkedCase(r: Rng): Partial<Case> {
  const route = r.pick(PREFIXES) + r.pick(POST_ROUTES);
  const chunks = r.chance(0.8) ? r.pick(BAD_CHUNKS) : r.str(r.range(1, 200), ALL_BYTES);
  const headers = ['Host: docker', `Transfer-Encoding: ${r.pick(['chunked', 'chunked', 'Chunked', 'chunked ', 'gzip, chunked'])}`];
  if (r.chance(0.15)) headers.push('Content-Length: 10');
  const data = req('POST', route, headers, chunks);
  // Sometimes dribble the body in pieces so the parser sees every boundary.
  const parts: Buffer[] = [];
  if (r.chance(0.3)) {
    for (let off = 0; off < data.length; ) {
      const n = r.range(1, 64);
      parts.push(data.subarray(off, off + n));
      off += n;
    }
  } else parts.push(data);
  return { kind: 'bad-chunked', parts, gapMs: parts.length > 1 ? 1 : 0, after: r.chance(0.6) ? 'end' : 'keep', methods: ['POST'] };
}

function truncatedCase(r: Rng): Partial<Case> {
  const method = r.pick(['GET', 'POST', 'POST', 'HEAD']);
  const body = method === 'POST' ? JSON.stringify({ Image: 'busybox', Env: ['A=' + 'x'.repeat(r.range(0, 3000))] }) : '';
  const headers = ['Host: docker', 'User-Agent: fuzz'];
  if (body) headers.push('Content-Type: application/json', r.chance(0.7) ? `Content-Length: ${body.length}` : 'Transfer-Encoding: chunked');
  const chunked = headers.includes('Transfer-Encoding: chunked');
  const full = req(method, anyRoute(r), headers, chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body);
  const cut = r.range(1, full.length - 1);
  const parts: Buffer[] = [];
  for (let off = 0; off < cut; ) {
    const n = Math.min(cut - off, r.chance(0.5) ? cut : r.range(1, 256));
    parts.push(full.subarray(off, off + n));
    off += n;
  }
  return {
    kind: 'truncated',
    parts,
    gapMs: parts.length > 1 ? r.range(0, 3) : 0,
    after: r.chance(0.5) ? 'end' : 'destroy',
    destroyAfterMs: r.pick([0, 0, 1, 5, 20]),
    methods: [method],
  };
}

const BAD_PERCENT_PATHS = [
  '/images/%zz/json',
  '/images/%/json',
  '/images/%2/json',
  '/images/%E0%A4%A/json',
  '/images/%C3%28/json',
  '/images/%FF%FE/json',
  '/images/%00/json',
  '/images/a%2Fb/json',
  '/containers/%zz',
  '/containers/%%%%/json',
  '/%zz/_ping',
  '/_p%69ng',
  '/_ping%',
  '/_ping%00',
  '/info%2F',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/../../info',
  '/./info',
  '//info',
  '/info/',
  '/INFO',
  '/images/' + '%zz'.repeat(5000) + '/json',
];

function badPercentCase(r: Rng): Partial<Case> {
  const method = r.pick(['GET', 'GET', 'HEAD', 'POST', 'DELETE']);
  const target = r.pick(['/v1.41', '', '/v1.30']) + r.pick(BAD_PERCENT_PATHS) + (r.chance(0.2) ? '?x=%zz' : '');
  return { kind: 'bad-percent', parts: [req(method, target, ['Host: docker'])], after: r.chance(0.5) ? 'end' : 'keep', methods: [method] };
}

const VERSIONS = [
  'v99.99', 'v0.1', 'v1.41.3', 'v1', 'v1.', 'v.41', 'v1.11', 'v1.12', 'v1.41', 'v1.42', 'v2.0', 'v01.041', 'v1.0041',
  'v-1.2', 'v1.-2', 'vNaN.1', 'v1e3.1', 'v999999999999999999999.1', 'v1.999999999999999999999', 'v0.0', 'V1.41',
  'v1.41info', 'v1.4.1.1', 'v\u0661.41', 'v1.41%2F', 'v%31.41',
];

function versionCase(r: Rng): Partial<Case> {
  const method = r.pick(['GET', 'GET', 'HEAD', 'POST']);
  const v = r.pick(VERSIONS);
  const rest = r.pick(['/info', '/_ping', '/version', '/swarm', '', '/', '/nodes/x']);
  const target = v === 'v1.41info' ? '/v1.41info' : `/${v}${rest}`;
  return { kind: 'version', parts: [req(method, target, ['Host: docker'])], after: r.chance(0.5) ? 'end' : 'keep', methods: [method] };
}

function badQueryCase(r: Rng): Partial<Case> {
  const method = r.pick(['GET', 'GET', 'HEAD', 'POST', 'DELETE']);
  const q = r.pick([
    '?', '??', '?&&&==&', '?=', '?a', '?a=%', '?a=%zz', '?%zz=%zz', '?filters={bad', '?filters=%7B%22a%22%3A5%7D',
    '?filters=[1,2]', '?filters=null', '?all=1&all=0&all=yes', '?limit=-1', '?limit=1e99', '?size=%00', '?a[]=1&a[b]=2',
    '?#frag', '#only-frag', '?a=1#b=2', '?x=' + 'y'.repeat(r.range(1, 8000)), '?\u00e9=\u00e8', '?;;;', '?a=1;b=2',
    '?' + r.str(r.range(1, 200), ANY_PRINTABLE.replace(/[ #]/g, '')),
  ]);
  return { kind: 'bad-query', parts: [req(method, anyRoute(r).replace(/\?.*$/, '') + q, ['Host: docker'])], after: r.chance(0.5) ? 'end' : 'keep', methods: [method] };
}

function upgradeCase(r: Rng): Partial<Case> {
  const method = r.pick(['POST', 'POST', 'GET', 'HEAD', 'PUT', 'DELETE']);
  const target = r.pick(['', '/v1.41', '/v1.12', '/v9.9']) + r.pick([
    '/containers/abc123/attach?stream=1&stdin=1&stdout=1&stderr=1', '/exec/abc123/start', '/_ping', '/info', '/version', '/swarm', '/nodes', '/session', '/grpc', '/containers/%zz/attach', '/nope',
  ]);
  const headers = ['Host: docker', `Connection: ${r.pick(['Upgrade', 'upgrade', 'keep-alive, Upgrade'])}`, `Upgrade: ${r.pick(['tcp', 'tcp', 'h2c', 'websocket', 'garbage'])}`];
  let body: Buffer = Buffer.alloc(0);
  switch (r.int(5)) {
    case 0:
      break;
    case 1: {
      const json = JSON.stringify({ Detach: false, Tty: r.chance(0.5) });
      headers.push('Content-Type: application/json', `Content-Length: ${json.length}`);
      body = b(json);
      break;
    }
    case 2: {
      // Declared longer than sent: the rest never comes.
      headers.push('Content-Type: application/json', `Content-Length: ${r.range(10, 100000)}`);
      body = b('{"Detach":');
      break;
    }
    case 3: {
      // JSON body followed by "stdin" bytes.
      const json = '{"Detach":false}';
      headers.push('Content-Type: application/json', `Content-Length: ${json.length}`);
      body = Buffer.concat([b(json), r.bytes(r.range(1, 2048))]);
      break;
    }
    default:
      headers.push('Transfer-Encoding: chunked');
      body = b(r.chance(0.5) ? '5\r\nhello\r\n0\r\n\r\n' : 'zz\r\n');
  }
  return { kind: 'upgrade', parts: [req(method, target, headers, body)], after: r.pick<After>(['end', 'keep', 'destroy']), methods: [method] };
}

function pipelinedCase(r: Rng): Partial<Case> {
  const n = r.range(2, 20);
  const parts: Buffer[] = [];
  const methods: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = validRequest(r, { close: i === n - 1 && r.chance(0.3) });
    parts.push(v.data);
    methods.push(v.method);
  }
  if (r.chance(0.25)) parts.push(r.chance(0.5) ? r.bytes(r.range(1, 100)) : b('GARBAGE / HTTP/1.1\r\n\r\n'));
  const together = r.chance(0.6);
  return {
    kind: 'pipelined',
    parts: together ? [Buffer.concat(parts)] : parts,
    gapMs: together ? 0 : r.range(0, 2),
    after: r.pick<After>(['keep', 'keep', 'end']),
    methods,
  };
}

function abruptCase(r: Rng): Partial<Case> {
  // Ask for responses and hang up before reading them: the daemon writes to a dead socket.
  const n = r.range(1, 30);
  const parts: Buffer[] = [];
  const methods: string[] = [];
  for (let i = 0; i < n; i++) {
    const method = r.pick(['GET', 'GET', 'HEAD']);
    methods.push(method);
    parts.push(req(method, r.pick(['/info', '/version', '/v1.41/info', '/_ping', '/swarm']), ['Host: docker']));
  }
  return { kind: 'abrupt', parts: [Buffer.concat(parts)], after: 'destroy', destroyAfterMs: r.pick([0, 0, 1, 3]), methods };
}

function methodOnRouteCase(r: Rng): Partial<Case> {
  const method = r.pick(METHODS);
  const route = r.pick(PREFIXES) + r.pick(ROUTES);
  const headers = ['Host: docker'];
  let body = '';
  if (r.chance(0.3)) {
    body = r.chance(0.5) ? '{}' : r.str(r.range(1, 100), ALL_BYTES);
    headers.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`, `Content-Type: ${r.pick(['application/json', 'text/plain'])}`);
  }
  return { kind: 'method-route', parts: [req(method, route, headers, body)], after: r.chance(0.5) ? 'end' : 'keep', methods: [method] };
}

const GENERATORS: Array<[number, (r: Rng) => Partial<Case>]> = [
  [10, randomBytesCase],
  [12, garbageHeadersCase],
  [8, requestLineCase],
  [4, hugeHeaderCase],
  [5, hugeBodyCase],
  [7, badChunkedCase],
  [8, truncatedCase],
  [6, badPercentCase],
  [6, versionCase],
  [6, badQueryCase],
  [8, upgradeCase],
  [8, pipelinedCase],
  [5, abruptCase],
  [7, methodOnRouteCase],
];

/** Every method on every known route, checked exactly, before the random cases. */
function sweepCases(): Array<Partial<Case>> {
  const out: Array<Partial<Case>> = [];
  for (const prefix of ['', '/v1.41', '/v1.12']) {
    for (const route of ROUTES) {
      for (const method of METHODS) {
        let expect: Expect | undefined;
        if (route === '/_ping' && method === 'GET') expect = { status: 200, body: 'OK' };
        else if (route === '/_ping' && method === 'HEAD') expect = { status: 200, emptyBody: true };
        else if ((route === '/version' || route === '/info') && method === 'GET') expect = { status: 200, contentType: 'application/json' };
        else if (method === 'HEAD') expect = { emptyBody: true };
        else if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') expect = { status: 404, jsonError: true };
        else if (route === '/swarm' || route === '/nodes') expect = { status: 503, jsonError: true };
        else expect = { jsonError: true };
        out.push({ kind: 'sweep', parts: [req(method, prefix + route, ['Host: docker'])], after: 'keep', methods: [method], expect });
      }
    }
  }
  return out;
}

function generate(seed: number, count: number): Case[] {
  const r = new Rng(seed);
  const total = GENERATORS.reduce((s, [w]) => s + w, 0);
  const partials = sweepCases();
  for (let i = 0; i < count; i++) {
    let x = r.int(total);
    let gen = GENERATORS[0]![1];
    for (const [w, g] of GENERATORS) {
      if (x < w) {
        gen = g;
        break;
      }
      x -= w;
    }
    partials.push(gen(r));
  }
  return partials.map((p, index) => ({
    index,
    kind: p.kind ?? 'unknown',
    parts: p.parts ?? [],
    gapMs: p.gapMs ?? 0,
    after: p.after ?? 'end',
    destroyAfterMs: p.destroyAfterMs ?? 0,
    methods: p.methods ?? [],
    ...(p.expect ? { expect: p.expect } : {}),
  }));
}

// ---------------------------------------------------------------------------
// Reading responses
// ---------------------------------------------------------------------------
interface Resp {
  statusLine: string;
  status: number;
  headers: Array<[string, string]>;
  /** The body as bytes (latin1 string), after chunked decoding. */
  body: string;
  method: string;
}

interface Parsed {
  responses: Resp[];
  /** Bytes after the last complete response (a partial one, or a raw stream after 101). */
  rest: string;
  upgraded: boolean;
  /** A protocol violation by the server. */
  error?: string;
}

function header(r: Resp, name: string): string[] {
  return r.headers.filter(([k]) => k === name).map(([, v]) => v);
}

/** Parses as many complete responses as `raw` holds; `closed` means the server closed after the bytes. */
function parseAll(raw: string, methods: string[], closed: boolean): Parsed {
  const responses: Resp[] = [];
  let pos = 0;
  let reqIndex = 0;
  while (pos < raw.length) {
    const end = raw.indexOf('\r\n\r\n', pos);
    if (end < 0) {
      const rest = raw.slice(pos);
      if (!'HTTP/1.'.startsWith(rest.slice(0, 7))) return { responses, rest, upgraded: false, error: `not an HTTP response: ${show(rest, 80)}` };
      return { responses, rest, upgraded: false };
    }
    const lines = raw.slice(pos, end).split('\r\n');
    const statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/.exec(statusLine);
    if (!m) return { responses, rest: raw.slice(pos), upgraded: false, error: `bad status line: ${show(statusLine, 80)}` };
    const status = Number(m[1]);
    const headers: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i <= 0 || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(line.slice(0, i))) {
        return { responses, rest: raw.slice(pos), upgraded: false, error: `bad header line: ${show(line, 80)}` };
      }
      headers.push([line.slice(0, i).toLowerCase(), line.slice(i + 1).trim()]);
    }
    let bodyStart = end + 4;
    if (status >= 100 && status < 200 && status !== 101) {
      pos = bodyStart; // interim (100 Continue): the real answer follows
      continue;
    }
    const method = methods[reqIndex++] ?? 'GET';
    const resp: Resp = { statusLine, status, headers, body: '', method };
    if (status === 101) {
      responses.push(resp);
      return { responses, rest: raw.slice(bodyStart), upgraded: true };
    }
    const te = header(resp, 'transfer-encoding');
    const cl = header(resp, 'content-length');
    const connClose = header(resp, 'connection').some((v) => /(^|,)\s*close\s*(,|$)/i.test(v));
    if (method === 'HEAD' && connClose) {
      // The last answer on this connection; a body is possible when the request could not
      // be parsed (the server cannot know it was HEAD): take whatever comes before the close.
      if (!closed) return { responses, rest: raw.slice(pos), upgraded: false };
      resp.body = raw.slice(bodyStart);
      bodyStart = raw.length;
    } else if (method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if (te.length > 0) {
      if (!te.join(',').toLowerCase().split(',').map((s) => s.trim()).includes('chunked')) {
        return { responses, rest: raw.slice(pos), upgraded: false, error: `unsupported Transfer-Encoding ${te.join(',')}` };
      }
      let p = bodyStart;
      let body = '';
      for (;;) {
        const eol = raw.indexOf('\r\n', p);
        if (eol < 0) return { responses, rest: raw.slice(pos), upgraded: false };
        const sizeText = raw.slice(p, eol).split(';')[0]!.trim();
        if (!/^[0-9a-fA-F]+$/.test(sizeText)) return { responses, rest: raw.slice(pos), upgraded: false, error: `bad chunk size ${show(sizeText, 40)}` };
        const size = parseInt(sizeText, 16);
        if (size === 0) {
          const trailerEnd = raw.indexOf('\r\n', eol + 2);
          if (trailerEnd < 0) return { responses, rest: raw.slice(pos), upgraded: false };
          if (trailerEnd !== eol + 2) return { responses, rest: raw.slice(pos), upgraded: false, error: 'unexpected trailers' };
          p = trailerEnd + 2;
          break;
        }
        if (raw.length < eol + 2 + size + 2) return { responses, rest: raw.slice(pos), upgraded: false };
        body += raw.slice(eol + 2, eol + 2 + size);
        if (raw.slice(eol + 2 + size, eol + 4 + size) !== '\r\n') return { responses, rest: raw.slice(pos), upgraded: false, error: 'chunk not followed by CRLF' };
        p = eol + 4 + size;
      }
      resp.body = body;
      pos = p;
      responses.push(resp);
      continue;
    } else if (cl.length > 0) {
      if (cl.length > 1 || !/^\d+$/.test(cl[0]!)) return { responses, rest: raw.slice(pos), upgraded: false, error: `bad Content-Length ${cl.join(',')}` };
      const n = Number(cl[0]);
      if (raw.length < bodyStart + n) return { responses, rest: raw.slice(pos), upgraded: false };
      resp.body = raw.slice(bodyStart, bodyStart + n);
      bodyStart += n;
    } else {
      // Delimited by the close.
      if (!closed) return { responses, rest: raw.slice(pos), upgraded: false };
      resp.body = raw.slice(bodyStart);
      bodyStart = raw.length;
    }
    responses.push(resp);
    pos = bodyStart;
  }
  return { responses, rest: '', upgraded: false };
}

/** A JSON-quoted excerpt, safe to print whatever bytes it holds. */
function show(s: string, max = 160): string {
  return JSON.stringify(s.length > max ? s.slice(0, max) + '…' : s);
}

/** What must hold for every response the daemon sends. */
function checkResponse(resp: Resp): string | undefined {
  if (resp.status < 100 || resp.status > 599) return `invalid status ${resp.status}`;
  const hasBody = resp.method !== 'HEAD' && resp.body.length > 0;
  let message: unknown;
  if (resp.status >= 400 && hasBody) {
    const ct = header(resp, 'content-type');
    if (ct.length !== 1 || ct[0] !== 'application/json') return `${resp.status} with Content-Type ${JSON.stringify(ct)} (want exactly application/json)`;
    try {
      message = (JSON.parse(Buffer.from(resp.body, 'latin1').toString('utf8')) as { message?: unknown }).message;
    } catch {
      return `${resp.status} body is not JSON: ${show(resp.body)}`;
    }
    if (typeof message !== 'string') return `${resp.status} JSON body has no string message: ${show(resp.body)}`;
  }
  if (resp.status >= 500) {
    const ok = DELIBERATE_5XX.some((d) => d.status === resp.status && typeof message === 'string' && d.message.test(message));
    if (!ok) return `server error ${resp.statusLine}: ${show(resp.body)}`;
  }
  return undefined;
}

function checkExpect(resp: Resp | undefined, e: Expect): string | undefined {
  if (!resp) return 'no response';
  if (e.status !== undefined && resp.status !== e.status) return `status ${resp.status}, want ${e.status}: ${show(resp.body)}`;
  if (e.contentType !== undefined && header(resp, 'content-type')[0] !== e.contentType) return `Content-Type ${JSON.stringify(header(resp, 'content-type'))}, want ${e.contentType}`;
  if (e.body !== undefined && resp.body !== e.body) return `body ${show(resp.body)}, want ${show(e.body)}`;
  if (e.emptyBody && resp.body !== '') return `body ${show(resp.body)}, want none`;
  if (e.jsonError) {
    if (header(resp, 'content-type')[0] !== 'application/json') return `Content-Type ${JSON.stringify(header(resp, 'content-type'))}, want application/json`;
    if (resp.method !== 'HEAD') {
      try {
        const m = (JSON.parse(resp.body) as { message?: unknown }).message;
        if (typeof m !== 'string') return `no string message in ${show(resp.body)}`;
      } catch {
        return `body is not JSON: ${show(resp.body)}`;
      }
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------
interface Outcome {
  raw: string;
  serverClosed: boolean;
  timedOut: boolean;
  clientError: string | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many file descriptors a process holds (undefined without /proc). */
function openFds(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

function runCase(socketPath: string, c: Case): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = connect(socketPath);
    const chunks: Buffer[] = [];
    let serverClosed = false;
    let timedOut = false;
    let clientError: string | undefined;
    let done = false;
    let idle: NodeJS.Timeout | undefined;
    const cap = setTimeout(() => {
      timedOut = true;
      finish();
    }, CASE_CAP_MS);
    function finish(): void {
      if (done) return;
      done = true;
      clearTimeout(idle);
      clearTimeout(cap);
      sock.destroy();
      resolve({ raw: Buffer.concat(chunks).toString('latin1'), serverClosed, timedOut, clientError });
    }
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        timedOut = true;
        finish();
      }, IDLE_MS);
    };
    const enough = (): boolean => {
      const p = parseAll(Buffer.concat(chunks).toString('latin1'), c.methods, false);
      return p.upgraded || p.error !== undefined || p.responses.length >= Math.max(1, c.methods.length);
    };
    sock.on('connect', () => {
      void (async () => {
        for (let i = 0; i < c.parts.length; i++) {
          if (done || sock.destroyed) return;
          sock.write(c.parts[i]!);
          if (c.gapMs > 0 && i < c.parts.length - 1) await sleep(c.gapMs);
        }
        if (c.after === 'end') sock.end();
        if (c.after === 'destroy') {
          if (c.destroyAfterMs > 0) await sleep(c.destroyAfterMs);
          finish();
          return;
        }
        arm();
      })();
    });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      if (c.after === 'keep' && enough()) finish();
      else if (!done && idle) arm();
    });
    sock.on('end', () => {
      serverClosed = true;
      finish();
    });
    sock.on('close', () => finish());
    sock.on('error', (err: Error & { code?: string }) => {
      clientError = err.code ?? err.message;
    });
  });
}

interface Failure {
  c: Case;
  problem: string;
  raw: string;
}

function describeCase(c: Case): string {
  const all = Buffer.concat(c.parts).toString('latin1');
  return `#${c.index} ${c.kind} after=${c.after} (${all.length} bytes): ${show(all, 300)}`;
}

/** Everything checked for one case; returns the problems found. */
function judge(c: Case, o: Outcome): string[] {
  const problems: string[] = [];
  const p = parseAll(o.raw, c.methods, o.serverClosed);
  if (p.error) problems.push(p.error);
  for (const resp of p.responses) {
    const bad = checkResponse(resp);
    if (bad) problems.push(bad);
  }
  if (c.expect) {
    const bad = checkExpect(p.responses[0], c.expect);
    if (bad) problems.push(`expected: ${bad}${o.clientError ? ` (client error ${o.clientError})` : ''}`);
  }
  if (c.after === 'end' && o.timedOut && !p.upgraded) {
    problems.push(`connection still open ${IDLE_MS} ms after the client half-closed it`);
  }
  // GET /events streams until the client leaves: an open chunked body there is not a truncation.
  const eventStream = /^GET \S*\/events[?\s]/m.test(Buffer.concat(c.parts).toString('latin1'));
  if (c.after !== 'destroy' && o.serverClosed && p.rest.length > 0 && !p.upgraded && !p.error && !eventStream) {
    problems.push(`truncated response: ${show(p.rest)}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------
test('the API survives thousands of malformed requests', { timeout: 180_000 }, async (t) => {
  const seed = process.env.SKIFF_FUZZ_SEED ? Number(process.env.SKIFF_FUZZ_SEED) >>> 0 : (Math.random() * 0x100000000) >>> 0;
  const banner = `fuzz seed ${seed} (replay with SKIFF_FUZZ_SEED=${seed}), ${COUNT} random cases`;
  console.log(banner);
  t.diagnostic(banner);

  let cases = generate(seed, COUNT);
  if (process.env.SKIFF_FUZZ_CASE !== undefined) cases = cases.filter((c) => c.index === Number(process.env.SKIFF_FUZZ_CASE));

  // A network namespace of its own: whatever a fuzzed pull asks for, the daemon
  // cannot reach beyond this machine (the API socket is a file, so it still works).
  const d: TestDaemon = await startDaemon({ args: ['--log-level', 'debug'], prefix: ['unshare', '--net'] });
  let stopped = false;
  t.after(() => {
    if (!stopped) d.cleanup();
  });

  const fdsBefore = openFds(d.child.pid!);
  const started = Date.now();
  const failures: Failure[] = [];
  const stats = { statuses: new Map<number, number>(), noResponse: 0, timeouts: 0, timeoutCases: [] as string[], clientErrors: new Map<string, number>(), bareErrors: new Map<string, number>() };
  const inFlight = new Set<number>();
  let crashedDuring: number[] | undefined;
  let next = 0;

  async function worker(): Promise<void> {
    while (next < cases.length && !crashedDuring) {
      const c = cases[next++]!;
      inFlight.add(c.index);
      const o = await runCase(d.socket, c);
      inFlight.delete(c.index);
      if (d.child.exitCode !== null || d.child.signalCode !== null) {
        crashedDuring ??= [c.index, ...inFlight];
        return;
      }
      const p = parseAll(o.raw, c.methods, o.serverClosed);
      if (p.responses.length === 0) stats.noResponse++;
      for (const r of p.responses) {
        stats.statuses.set(r.status, (stats.statuses.get(r.status) ?? 0) + 1);
        // Error answers without Docker's JSON body or without Api-Version come from node's
        // own HTTP layer, not from skiff; they are legal but worth knowing about.
        const bare = header(r, 'api-version').length === 0 || (r.method !== 'HEAD' && r.body.length === 0);
        if (r.status >= 400 && bare) {
          const key = `${r.status} ${r.method}${header(r, 'api-version').length === 0 ? ' no-Api-Version' : ''}${r.method !== 'HEAD' && r.body.length === 0 ? ' empty-body' : ''}`;
          stats.bareErrors.set(key, (stats.bareErrors.get(key) ?? 0) + 1);
        }
      }
      if (o.timedOut) {
        stats.timeouts++;
        if (stats.timeoutCases.length < 10) stats.timeoutCases.push(`#${c.index} ${c.kind}`);
      }
      if (o.clientError) stats.clientErrors.set(o.clientError, (stats.clientErrors.get(o.clientError) ?? 0) + 1);
      for (const problem of judge(c, o)) failures.push({ c, problem, raw: o.raw });
      if (process.env.SKIFF_FUZZ_CASE !== undefined) {
        console.log(`${describeCase(c)}\n  received${o.timedOut ? ' (idle timeout)' : ''}${o.serverClosed ? ' (server closed)' : ''}: ${show(o.raw, 2000)}`);
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker()));
  const elapsed = Date.now() - started;

  const summary = [
    `${cases.length} cases in ${(elapsed / 1000).toFixed(1)} s, seed ${seed}`,
    `statuses: ${[...stats.statuses].sort((a, z) => a[0] - z[0]).map(([s, n]) => `${s}×${n}`).join(' ')}`,
    `no response: ${stats.noResponse}, idle timeouts: ${stats.timeouts}${stats.timeoutCases.length ? ` (${stats.timeoutCases.join(', ')})` : ''}, client errors: ${[...stats.clientErrors].map(([k, n]) => `${k}×${n}`).join(' ') || 'none'}`,
    `errors without skiff's JSON body/headers: ${[...stats.bareErrors].map(([k, n]) => `${k}×${n}`).join(', ') || 'none'}`,
  ];
  for (const line of summary) t.diagnostic(line);
  console.log(summary.join('\n'));

  if (crashedDuring) {
    const suspects = cases.filter((c) => crashedDuring!.includes(c.index)).map(describeCase).join('\n');
    assert.fail(`daemon exited (code ${d.child.exitCode}, signal ${d.child.signalCode}) while these cases ran (seed ${seed}):\n${suspects}\n--- daemon log tail ---\n${d.logs().slice(-4000)}`);
  }

  if (failures.length > 0) {
    const shown = failures
      .slice(0, 25)
      .map((f) => `${describeCase(f.c)}\n    problem: ${f.problem}\n    received: ${show(f.raw, 400)}`)
      .join('\n');
    assert.fail(`${failures.length} problem(s) with seed ${seed} (replay one with SKIFF_FUZZ_SEED=${seed} SKIFF_FUZZ_CASE=<#>):\n${shown}`);
  }

  // The daemon is alive and still answers correctly.
  assert.equal(d.child.exitCode, null, 'daemon exited');
  assert.equal(d.child.signalCode, null, 'daemon was killed');
  process.kill(d.child.pid!, 0);
  const ping = parseResponse(await rawRequest(d.socket, 'GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n'));
  assert.equal(ping.status, 200);
  assert.equal(ping.body, 'OK');
  const version = parseResponse(await rawRequest(d.socket, 'GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n'));
  assert.equal(version.status, 200);
  assert.equal(version.headers['content-type'], 'application/json');
  assert.equal((JSON.parse(version.body) as { ApiVersion?: string }).ApiVersion, '1.41');

  // Every connection the fuzzer opened is closed on the daemon's side too (no
  // half-open sockets left behind: on a board each one is a file descriptor).
  if (fdsBefore !== undefined) {
    let fds = openFds(d.child.pid!) ?? 0;
    for (let i = 0; i < 40 && fds > fdsBefore + 2; i++) {
      await sleep(50);
      fds = openFds(d.child.pid!) ?? 0;
    }
    t.diagnostic(`daemon file descriptors: ${fdsBefore} before, ${fds} after`);
    assert.ok(fds <= fdsBefore + 2, `the daemon holds ${fds} file descriptors after the run, ${fdsBefore} before: connections leak`);
  }

  // Nothing blew up inside, even where the client never saw it.
  const logs = d.logs();
  if (process.env.SKIFF_FUZZ_LOG) writeFileSync(process.env.SKIFF_FUZZ_LOG, logs);
  assert.match(logs, /Daemon has completed initialization/);
  assert.match(logs, /rejected malformed request/, 'debug logging is off: the log check below would see little');
  const bad = logs.split('\n').filter(
    (line) =>
      /uncaught|unhandled|UnhandledPromiseRejection|\b(TypeError|ReferenceError|RangeError|SyntaxError|AssertionError)\b|level=fatal|\(node:\d+\) \w*Warning|^\s+at \S.*:\d+:\d+\)?$/i.test(line) ||
      (/level=error/.test(line) && !/not a swarm manager|127\.0\.0\.1:1\b/.test(line)),
  );
  assert.deepEqual(bad.slice(0, 20), [], `daemon logged errors:\n${bad.slice(0, 20).join('\n')}`);

  stopped = true;
  const code = await d.stop('SIGTERM');
  assert.equal(code, 0, `daemon exited with ${code} after SIGTERM:\n${d.logs().slice(-3000)}`);
  d.cleanup();
});
