import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidParameter } from '../../src/errors.js';
import {
  canonicalName,
  canonicalString,
  familiarName,
  familiarString,
  fromPullQuery,
  isDigest,
  isTag,
  parseDigest,
  parseReference,
  shortId,
  withDefaultTag,
  type Reference,
} from '../../src/pull/reference.js';

const H64 = 'f'.repeat(64);
const D = `sha256:${H64}`;
const D2 = `sha256:${'0123456789abcdef'.repeat(4)}`;

function fails(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidParameter, `expected InvalidParameter, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

// input, domain, path, tag, digest, familiar string
const valid: [string, string, string, string?, string?, string?][] = [
  ['busybox', 'docker.io', 'library/busybox', undefined, undefined, 'busybox'],
  ['busybox:latest', 'docker.io', 'library/busybox', 'latest', undefined, 'busybox:latest'],
  ['docker.io/library/busybox', 'docker.io', 'library/busybox', undefined, undefined, 'busybox'],
  ['docker.io/busybox', 'docker.io', 'library/busybox', undefined, undefined, 'busybox'],
  ['library/busybox', 'docker.io', 'library/busybox', undefined, undefined, 'busybox'],
  ['index.docker.io/busybox', 'docker.io', 'library/busybox', undefined, undefined, 'busybox'],
  ['index.docker.io/library/busybox:1.36', 'docker.io', 'library/busybox', '1.36', undefined, 'busybox:1.36'],
  ['index.docker.io/myrepo/bb', 'docker.io', 'myrepo/bb', undefined, undefined, 'myrepo/bb'],
  ['myrepo/bb:v1', 'docker.io', 'myrepo/bb', 'v1', undefined, 'myrepo/bb:v1'],
  ['library/foo/bar', 'docker.io', 'library/foo/bar', undefined, undefined, 'library/foo/bar'],
  ['a/b/c/d', 'docker.io', 'a/b/c/d', undefined, undefined, 'a/b/c/d'],
  ['localhost/x', 'localhost', 'x', undefined, undefined, 'localhost/x'],
  ['localhost/fooo/bar', 'localhost', 'fooo/bar', undefined, undefined, 'localhost/fooo/bar'],
  ['localhost:5000/foo', 'localhost:5000', 'foo', undefined, undefined, 'localhost:5000/foo'],
  ['localhost:5000/foo:1', 'localhost:5000', 'foo', '1', undefined, 'localhost:5000/foo:1'],
  [`127.0.0.1:5000/a/b@${D}`, '127.0.0.1:5000', 'a/b', undefined, D, `127.0.0.1:5000/a/b@${D}`],
  ['192.168.1.1/repo', '192.168.1.1', 'repo', undefined, undefined, '192.168.1.1/repo'],
  ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000', 'repo', '5050', undefined, '192.168.1.1:5000/repo:5050'],
  [`foo:bar@${D}`, 'docker.io', 'library/foo', 'bar', D, `foo:bar@${D}`],
  [`foo@${D}`, 'docker.io', 'library/foo', undefined, D, `foo@${D}`],
  ['[::1]:5000/x', '[::1]:5000', 'x', undefined, undefined, '[::1]:5000/x'],
  ['[2001:db8::1]/repo', '[2001:db8::1]', 'repo', undefined, undefined, '[2001:db8::1]/repo'],
  [`[2001:db8::1]:5000/repo:tag@${D}`, '[2001:db8::1]:5000', 'repo', 'tag', D, `[2001:db8::1]:5000/repo:tag@${D}`],
  ['test_com/foo', 'docker.io', 'test_com/foo', undefined, undefined, 'test_com/foo'],
  ['test.com:8080/foo', 'test.com:8080', 'foo', undefined, undefined, 'test.com:8080/foo'],
  ['test-com:8080/foo', 'test-com:8080', 'foo', undefined, undefined, 'test-com:8080/foo'],
  ['foo_bar.com:8080', 'docker.io', 'library/foo_bar.com', '8080', undefined, 'foo_bar.com:8080'],
  ['foo:5000', 'docker.io', 'library/foo', '5000', undefined, 'foo:5000'],
  ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com', 'myimage', 'xn--n3h.com', undefined, 'xn--n3h.com/myimage:xn--n3h.com'],
  ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io', 'test.example.com/my-app', 'test.example.com', undefined, undefined],
  ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com', 'bar/baz/quux', 'some-long-tag', undefined, undefined],
  ['ghcr.io/owner/app', 'ghcr.io', 'owner/app', undefined, undefined, 'ghcr.io/owner/app'],
  // An uppercase first component can only be a host name (namespaces are lowercase).
  ['Foo/bar', 'Foo', 'bar', undefined, undefined, 'Foo/bar'],
  ['LOCALDOMAIN/fooo/bar', 'LOCALDOMAIN', 'fooo/bar', undefined, undefined, 'LOCALDOMAIN/fooo/bar'],
  ['Example.COM/foo', 'Example.COM', 'foo', undefined, undefined, 'Example.COM/foo'],
  // Separators inside path components.
  ['a__b/c.d/e_f/g-h/i---j', 'docker.io', 'a__b/c.d/e_f/g-h/i---j', undefined, undefined, 'a__b/c.d/e_f/g-h/i---j'],
  // Tags may have uppercase letters, dots and dashes (not first).
  ['lowercase:Uppercase', 'docker.io', 'library/lowercase', 'Uppercase', undefined, 'lowercase:Uppercase'],
  ['x:_v1.2-rc.3', 'docker.io', 'library/x', '_v1.2-rc.3', undefined, 'x:_v1.2-rc.3'],
  [`x:${'t'.repeat(128)}`, 'docker.io', 'library/x', 't'.repeat(128), undefined, undefined],
  // sha384 and sha512 are valid digests too.
  [`x@sha384:${'a'.repeat(96)}`, 'docker.io', 'library/x', undefined, `sha384:${'a'.repeat(96)}`, undefined],
  [`x@sha512:${'b'.repeat(128)}`, 'docker.io', 'library/x', undefined, `sha512:${'b'.repeat(128)}`, undefined],
  // 255 characters of path is the most Docker allows (the domain does not count).
  [`example.com/${'a'.repeat(255)}`, 'example.com', 'a'.repeat(255), undefined, undefined, undefined],
  [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, 'docker.io', `${'a/'.repeat(127)}a`, 'tag-puts-this-over-max', undefined, undefined],
  ['a'.repeat(247), 'docker.io', `library/${'a'.repeat(247)}`, undefined, undefined, 'a'.repeat(247)],
];

test('valid references are parsed and normalised like ParseNormalizedNamed', () => {
  for (const [input, domain, path, tag, digest, familiar] of valid) {
    const r = parseReference(input);
    const want: Reference = { domain, path };
    if (tag !== undefined) want.tag = tag;
    if (digest !== undefined) want.digest = digest;
    assert.deepEqual(r, want, input);
    assert.equal(familiarString(r), familiar ?? input, `familiarString(${input})`);
    // The familiar string parses back to the same reference.
    assert.deepEqual(parseReference(familiarString(r)), r, `round trip of ${input}`);
    assert.deepEqual(parseReference(canonicalString(r)), r, `canonical round trip of ${input}`);
  }
});

const invalid: [string, string][] = [
  ['', 'invalid reference format'],
  ['-foo', 'invalid reference format'],
  ['-docker/docker', 'invalid reference format'],
  ['-docker.io/docker/docker', 'invalid reference format'],
  ['docker///docker', 'invalid reference format'],
  ['docker.io/docker///docker', 'invalid reference format'],
  ['foo/', 'invalid reference format'],
  ['/foo', 'invalid reference format'],
  ['foo/-bar', 'invalid reference format'],
  ['foo/bar-', 'invalid reference format'],
  ['foo/bar.', 'invalid reference format'],
  ['foo/a___b', 'invalid reference format'],
  ['foo/a..b', 'invalid reference format'],
  [':justtag', 'invalid reference format'],
  [`@${D}`, 'invalid reference format'],
  ['aa/asdf$$^/aa', 'invalid reference format'],
  ['https://github.com/docker/docker', 'invalid reference format'],
  ['busybox:', 'invalid reference format'],
  ['busybox:-tag', 'invalid reference format'],
  ['busybox:.tag', 'invalid reference format'],
  [`busybox:${'t'.repeat(129)}`, 'invalid reference format'],
  ['busybox:a/b', 'invalid reference format'],
  ['busybox@sha256:abc', 'invalid reference format'],
  ['busybox@', 'invalid reference format'],
  ['busybox latest', 'invalid reference format'],
  // A port needs a host in front of it.
  [':5000/foo', 'invalid reference format'],
  ['localhost:/foo', 'invalid reference format'],
  ['localhost:port/foo', 'invalid reference format'],
  // IPv6 literals only as the domain of a longer name, without zones.
  ['[2001:db8::1]', 'invalid reference format'],
  ['[2001:db8::1]:5000', 'invalid reference format'],
  ['[2001:db8::1]:tag', 'invalid reference format'],
  ['[fe80::1%eth0]:5000/repo', 'invalid reference format'],
  ['::1/foo', 'invalid reference format'],
  // Uppercase in the repository name (the domain may have it).
  ['Busybox', 'invalid reference format: repository name (library/Busybox) must be lowercase'],
  ['docker.io/library/Busybox', 'invalid reference format: repository name (library/Busybox) must be lowercase'],
  ['docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase'],
  ['docker.io/docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase'],
  ['test:5000/Uppercase/lowercase:tag', 'invalid reference format: repository name (Uppercase/lowercase) must be lowercase'],
  ['Uppercase:tag', 'invalid reference format: repository name (library/Uppercase) must be lowercase'],
  // Image IDs are not names.
  [H64, `invalid repository name (${H64}), cannot specify 64-byte hexadecimal strings`],
  // Too long: more than 255 characters of path (library/ counts, the domain does not).
  [`example.com/${'a'.repeat(256)}`, 'repository name must not be more than 255 characters'],
  [`domain/${'a'.repeat(256)}:tag`, 'repository name must not be more than 255 characters'],
  ['a'.repeat(248), 'repository name must not be more than 255 characters'],
  ['a'.repeat(256), 'repository name must not be more than 255 characters'],
  // Digests are checked like go-digest does.
  [`repo@sha256:${'f'.repeat(34)}`, 'invalid checksum digest length'],
  [`repo@sha256:${'f'.repeat(65)}`, 'invalid checksum digest length'],
  [`repo@sha256:${'F'.repeat(64)}`, 'invalid checksum digest format'],
  [`validname@invaliddigest:${H64}`, 'unsupported digest algorithm'],
  [`validname@md5:${'f'.repeat(32)}`, 'unsupported digest algorithm'],
  [`validname@sha256+b64:${H64}`, 'unsupported digest algorithm'],
  [`validname@sha512:${H64}`, 'invalid checksum digest length'],
];

test('invalid references are refused with Docker\'s messages', () => {
  for (const [input, message] of invalid) {
    fails(() => parseReference(input), message);
  }
});

test('parsing a huge input stays fast', () => {
  const start = process.hrtime.bigint();
  for (const s of ['a'.repeat(100_000) + '!', `${'a-'.repeat(50_000)}!`, `${'a.'.repeat(50_000)}a/!`, `x:${'t'.repeat(100_000)}`]) {
    assert.throws(() => parseReference(s), InvalidParameter);
  }
  assert.ok(process.hrtime.bigint() - start < 2_000_000_000n);
});

test('withDefaultTag adds latest only to bare names', () => {
  assert.deepEqual(withDefaultTag(parseReference('busybox')), { domain: 'docker.io', path: 'library/busybox', tag: 'latest' });
  assert.deepEqual(withDefaultTag(parseReference('busybox:1')), { domain: 'docker.io', path: 'library/busybox', tag: '1' });
  assert.deepEqual(withDefaultTag(parseReference(`busybox@${D}`)), { domain: 'docker.io', path: 'library/busybox', digest: D });
  const r = parseReference('busybox');
  withDefaultTag(r);
  assert.equal(r.tag, undefined, 'the argument is not modified');
});

test('familiar and canonical forms', () => {
  const cases: [string, string, string, string, string][] = [
    // input, familiarName, familiarString, canonicalName, canonicalString
    ['busybox', 'busybox', 'busybox', 'docker.io/library/busybox', 'docker.io/library/busybox'],
    ['busybox:latest', 'busybox', 'busybox:latest', 'docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['myrepo/bb:v1', 'myrepo/bb', 'myrepo/bb:v1', 'docker.io/myrepo/bb', 'docker.io/myrepo/bb:v1'],
    ['127.0.0.1:5000/a', '127.0.0.1:5000/a', '127.0.0.1:5000/a', '127.0.0.1:5000/a', '127.0.0.1:5000/a'],
    [`x@${D}`, 'x', `x@${D}`, 'docker.io/library/x', `docker.io/library/x@${D}`],
    [`x:t@${D}`, 'x', `x:t@${D}`, 'docker.io/library/x', `docker.io/library/x:t@${D}`],
    ['library/a/b', 'library/a/b', 'library/a/b', 'docker.io/library/a/b', 'docker.io/library/a/b'],
    ['ghcr.io/library/x', 'ghcr.io/library/x', 'ghcr.io/library/x', 'ghcr.io/library/x', 'ghcr.io/library/x'],
  ];
  for (const [input, fn, fs, cn, cs] of cases) {
    const r = parseReference(input);
    assert.equal(familiarName(r), fn, input);
    assert.equal(familiarString(r), fs, input);
    assert.equal(canonicalName(r), cn, input);
    assert.equal(canonicalString(r), cs, input);
  }
  assert.equal(familiarString(withDefaultTag(parseReference('docker.io/library/busybox'))), 'busybox:latest');
  // A reference without a domain (built by hand) prints just its path.
  assert.equal(canonicalString({ domain: '', path: 'x', tag: 't' }), 'x:t');
});

test('fromPullQuery follows POST /images/create semantics', () => {
  const cases: [string, string | undefined, Reference][] = [
    // What the docker CLI sends.
    ['docker.io/library/busybox', 'latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['docker.io/library/busybox', D, { domain: 'docker.io', path: 'library/busybox', digest: D }],
    // What other clients send.
    ['busybox', undefined, { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['busybox', '', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['busybox:', undefined, { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['busybox:1.36', undefined, { domain: 'docker.io', path: 'library/busybox', tag: '1.36' }],
    ['busybox:1.36', '', { domain: 'docker.io', path: 'library/busybox', tag: '1.36' }],
    ['busybox:1.36', '1.37', { domain: 'docker.io', path: 'library/busybox', tag: '1.37' }],
    // A digest in `tag` replaces the tag of fromImage.
    ['busybox:1.36', D2, { domain: 'docker.io', path: 'library/busybox', digest: D2 }],
    [`busybox@${D}`, D2, { domain: 'docker.io', path: 'library/busybox', digest: D2 }],
    // fromImage's digest stays when no tag comes, and next to a tag that does.
    [`busybox@${D}`, undefined, { domain: 'docker.io', path: 'library/busybox', digest: D }],
    [`busybox@${D}`, 'v1', { domain: 'docker.io', path: 'library/busybox', tag: 'v1', digest: D }],
    [`busybox:old@${D}`, 'v1', { domain: 'docker.io', path: 'library/busybox', tag: 'v1', digest: D }],
    ['localhost:5000/app', 'dev', { domain: 'localhost:5000', path: 'app', tag: 'dev' }],
  ];
  for (const [fromImage, tag, want] of cases) {
    assert.deepEqual(fromPullQuery(fromImage, tag), want, `${fromImage} + ${String(tag)}`);
  }
  fails(() => fromPullQuery('busybox', 'bad tag'), 'invalid tag format');
  fails(() => fromPullQuery('busybox', 'sha256:abc'), 'invalid tag format');
  fails(() => fromPullQuery('busybox', '-x'), 'invalid tag format');
  fails(() => fromPullQuery('Busybox', 'latest'), 'invalid reference format: repository name (library/Busybox) must be lowercase');
  fails(() => fromPullQuery('', 'latest'), 'invalid reference format');
});

test('digests, tags and short ids', () => {
  const digests: [string, boolean][] = [
    [D, true],
    [`sha384:${'a'.repeat(96)}`, true],
    [`sha512:${'a'.repeat(128)}`, true],
    [`sha256:${'A'.repeat(64)}`, false],
    [`sha256:${'a'.repeat(63)}`, false],
    [H64, false],
    ['sha256:', false],
    [':abc', false],
    [`md5:${'a'.repeat(32)}`, false],
    [`SHA256:${H64}`, false],
    ['', false],
  ];
  for (const [s, ok] of digests) assert.equal(isDigest(s), ok, s);
  assert.equal(parseDigest(D), D);
  fails(() => parseDigest('sha256:'), 'invalid checksum digest format');
  fails(() => parseDigest(`sha256:${'a'.repeat(10)}`), 'invalid checksum digest length');
  fails(() => parseDigest(`blake3:${H64}`), 'unsupported digest algorithm');
  fails(() => parseDigest('Not A Digest:x'), 'invalid checksum digest format');

  assert.equal(isTag('latest'), true);
  assert.equal(isTag('_'), true);
  assert.equal(isTag('.x'), false);
  assert.equal(isTag('t'.repeat(129)), false);

  assert.equal(shortId(`sha256:${'0123456789abcdef'.repeat(4)}`), '0123456789ab');
  assert.equal(shortId('0123456789abcdef'), '0123456789ab');
  assert.equal(shortId('sha256:abc'), 'abc');
});
