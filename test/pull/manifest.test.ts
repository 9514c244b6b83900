import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidParameter } from '../../src/errors.js';
import {
  ACCEPT_MANIFESTS,
  ACCEPT_MANIFESTS_HEADER,
  isForeignLayer,
  layerCompression,
  LAYER_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  parseImageConfig,
  parseManifest,
  schema1Error,
  type Descriptor,
} from '../../src/pull/manifest.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

const dg = (c: string) => `sha256:${c.repeat(64)}`;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function fails(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidParameter, `expected InvalidParameter, got ${String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

function dockerManifest(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, size: 1457, digest: dg('a') },
    layers: [
      { mediaType: DOCKER_LAYER, size: 2218767, digest: dg('b') },
      { mediaType: DOCKER_LAYER, size: 32, digest: dg('c') },
    ],
    ...extra,
  };
}

function ociManifest(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, size: 600, digest: dg('a') },
    layers: [{ mediaType: OCI_LAYER, size: 3000, digest: dg('b') }],
    annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    ...extra,
  };
}

function dockerList(): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: DOCKER_LIST,
    manifests: [
      { mediaType: DOCKER_MANIFEST, size: 528, digest: dg('1'), platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: DOCKER_MANIFEST, size: 528, digest: dg('2'), platform: { architecture: 'arm', os: 'linux', variant: 'v6' } },
      { mediaType: DOCKER_MANIFEST, size: 528, digest: dg('3'), platform: { architecture: 'arm', os: 'linux', variant: 'v7' } },
      { mediaType: DOCKER_MANIFEST, size: 528, digest: dg('4'), platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
      {
        mediaType: DOCKER_MANIFEST,
        size: 1125,
        digest: dg('5'),
        platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.5329' },
      },
    ],
  };
}

function ociIndex(): Record<string, unknown> {
  return {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: OCI_MANIFEST, size: 1000, digest: dg('1'), platform: { architecture: 'arm64', os: 'linux' } },
      {
        mediaType: OCI_MANIFEST,
        size: 566,
        digest: dg('2'),
        platform: { architecture: 'unknown', os: 'unknown' },
        annotations: { 'vnd.docker.reference.digest': dg('1'), 'vnd.docker.reference.type': 'attestation-manifest' },
      },
    ],
  };
}

test('Docker schema 2 manifest', () => {
  const m = parseManifest(json(dockerManifest()), DOCKER_MANIFEST);
  assert.deepEqual(m, {
    kind: 'image',
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, size: 1457, digest: dg('a') },
    layers: [
      { mediaType: DOCKER_LAYER, size: 2218767, digest: dg('b') },
      { mediaType: DOCKER_LAYER, size: 32, digest: dg('c') },
    ],
  });
  // The body decides when the Content-Type says nothing useful.
  for (const ct of [undefined, '', 'application/json', 'application/octet-stream', 'text/plain; charset=utf-8']) {
    assert.equal(parseManifest(json(dockerManifest()), ct).mediaType, DOCKER_MANIFEST, String(ct));
  }
});

test('OCI manifest, with and without mediaType in the body', () => {
  const m = parseManifest(json(ociManifest()), OCI_MANIFEST);
  assert.equal(m.kind, 'image');
  assert.equal(m.mediaType, OCI_MANIFEST);
  if (m.kind !== 'image') return;
  assert.deepEqual(m.config, { mediaType: OCI_CONFIG, size: 600, digest: dg('a') });
  assert.equal(m.layers.length, 1);

  const bare = ociManifest();
  delete bare.mediaType;
  assert.equal(parseManifest(json(bare), `${OCI_MANIFEST}; charset=utf-8`).mediaType, OCI_MANIFEST);
  assert.equal(parseManifest(json(bare), 'application/json').mediaType, OCI_MANIFEST, 'inferred from the shape');
  assert.equal(parseManifest(json(bare), undefined).kind, 'image');
  // Zero layers is allowed.
  const empty = parseManifest(json(ociManifest({ layers: [] })), undefined);
  assert.equal(empty.kind === 'image' && empty.layers.length, 0);
});

test('manifest lists and OCI indexes keep platforms, urls and annotations', () => {
  const list = parseManifest(json(dockerList()), DOCKER_LIST);
  assert.equal(list.kind, 'index');
  if (list.kind !== 'index') return;
  assert.equal(list.mediaType, DOCKER_LIST);
  assert.deepEqual(
    list.manifests.map((d) => d.platform),
    [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm', variant: 'v6' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'windows', architecture: 'amd64' },
    ],
  );
  assert.deepEqual(list.manifests[0], { mediaType: DOCKER_MANIFEST, size: 528, digest: dg('1'), platform: { os: 'linux', architecture: 'amd64' } });

  const index = parseManifest(json(ociIndex()), OCI_INDEX);
  assert.equal(index.kind, 'index');
  if (index.kind !== 'index') return;
  assert.equal(index.manifests[1]?.annotations?.['vnd.docker.reference.type'], 'attestation-manifest');

  const bare = ociIndex();
  delete bare.mediaType;
  assert.equal(parseManifest(json(bare), 'application/json').mediaType, OCI_INDEX);
  assert.equal(parseManifest(json(bare), OCI_INDEX).mediaType, OCI_INDEX);

  // Entries without a platform, an empty index, nested indexes.
  const odd = parseManifest(
    json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, size: 10, digest: dg('9') }] }),
    OCI_INDEX,
  );
  assert.deepEqual(odd, { kind: 'index', mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, size: 10, digest: dg('9') }] });
  assert.deepEqual(parseManifest(json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }), undefined), {
    kind: 'index',
    mediaType: OCI_INDEX,
    manifests: [],
  });
});

test('foreign and non-distributable layers', () => {
  const foreign: Descriptor = {
    mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
    size: 1234,
    digest: dg('d'),
    urls: ['https://example.com/layer.tar.gz'],
  };
  const nd: Descriptor = { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', size: 1, digest: dg('e') };
  const m = parseManifest(json(dockerManifest({ layers: [foreign, nd] })), DOCKER_MANIFEST);
  assert.ok(m.kind === 'image');
  assert.deepEqual(m.layers, [foreign, nd]);
  assert.equal(isForeignLayer(foreign.mediaType), true);
  assert.equal(isForeignLayer(nd.mediaType), true);
  assert.equal(isForeignLayer(DOCKER_LAYER), false);
});

test('schema 1 is refused with dockerd\'s message', () => {
  const s1 = { schemaVersion: 1, name: 'library/busybox', tag: 'latest', architecture: 'amd64', fsLayers: [], history: [] };
  const plain =
    'Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. ' +
    'More information at https://docs.docker.com/go/deprecated-image-specs/';
  const named =
    'Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. ' +
    'Suggest the author of docker.io/library/old:1 to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. ' +
    'More information at https://docs.docker.com/go/deprecated-image-specs/';
  fails(() => parseManifest(json(s1), 'application/vnd.docker.distribution.manifest.v1+prettyjws'), plain);
  fails(() => parseManifest(json(s1), 'application/vnd.docker.distribution.manifest.v1+json'), plain);
  fails(() => parseManifest(json(s1), 'application/json'), plain);
  fails(() => parseManifest(json(s1), undefined, 'docker.io/library/old:1'), named);
  fails(() => parseManifest(json({ schemaVersion: 2, fsLayers: [] }), undefined), plain);
  fails(() => parseManifest(json({ mediaType: 'application/vnd.docker.distribution.manifest.v1+json' }), undefined), plain);
  // Even when the body is not JSON (a signed manifest we never parse).
  fails(() => parseManifest(Buffer.from('{not json'), 'application/vnd.docker.distribution.manifest.v1+prettyjws'), plain);
  assert.equal(schema1Error('x').message.includes('Suggest the author of x'), true);
});

test('media type disagreements and unknown types', () => {
  fails(
    () => parseManifest(json(dockerManifest()), OCI_MANIFEST),
    `invalid manifest: Content-Type ${OCI_MANIFEST} does not match the manifest's mediaType ${DOCKER_MANIFEST}`,
  );
  fails(
    () => parseManifest(json(dockerList()), DOCKER_MANIFEST),
    `invalid manifest: Content-Type ${DOCKER_MANIFEST} does not match the manifest's mediaType ${DOCKER_LIST}`,
  );
  fails(
    () => parseManifest(json(ociIndex()), `${OCI_MANIFEST}`),
    `invalid manifest: Content-Type ${OCI_MANIFEST} does not match the manifest's mediaType ${OCI_INDEX}`,
  );
  // The Content-Type says index, the body (without mediaType) is a manifest, and vice versa.
  const bareManifest = ociManifest();
  delete bareManifest.mediaType;
  fails(() => parseManifest(json(bareManifest), OCI_INDEX), `invalid manifest: expected an index (${OCI_INDEX}) but found an image manifest`);
  const bareIndex = ociIndex();
  delete bareIndex.mediaType;
  fails(() => parseManifest(json(bareIndex), OCI_MANIFEST), `invalid manifest: expected an image manifest (${OCI_MANIFEST}) but found an index`);
  // A body claiming one kind but shaped as the other.
  fails(
    () => parseManifest(json({ ...dockerList(), config: { mediaType: DOCKER_CONFIG, size: 1, digest: dg('a') } }), undefined),
    `invalid manifest: expected an index (${DOCKER_LIST}) but found an image manifest`,
  );
  fails(
    () => parseManifest(json({ ...dockerManifest(), manifests: [] }), undefined),
    `invalid manifest: expected an image manifest (${DOCKER_MANIFEST}) but found an index`,
  );
  // Docker schema 2 must say what it is.
  const noType = dockerManifest();
  delete noType.mediaType;
  fails(() => parseManifest(json(noType), DOCKER_MANIFEST), `invalid manifest: missing mediaType (expected ${DOCKER_MANIFEST})`);
  const listNoType = dockerList();
  delete listNoType.mediaType;
  fails(() => parseManifest(json(listNoType), DOCKER_LIST), `invalid manifest: missing mediaType (expected ${DOCKER_LIST})`);

  fails(
    () => parseManifest(json({ schemaVersion: 2, mediaType: 'application/vnd.cncf.helm.chart.v1+json' }), undefined),
    'unsupported manifest media type "application/vnd.cncf.helm.chart.v1+json"',
  );
  fails(() => parseManifest(json({ schemaVersion: 2 }), 'application/json'), 'unsupported manifest media type "application/json"');
  fails(() => parseManifest(json({ schemaVersion: 2, mediaType: 7 }), undefined), 'invalid manifest: mediaType must be a string');
});

test('malformed manifests are refused with a clear message', () => {
  const cases: [unknown, string | RegExp][] = [
    [dockerManifest({ schemaVersion: 3 }), 'invalid manifest: unsupported schemaVersion 3'],
    [dockerManifest({ schemaVersion: '2' }), 'invalid manifest: unsupported schemaVersion "2"'],
    [dockerManifest({ schemaVersion: undefined }), 'invalid manifest: unsupported schemaVersion null'],
    [dockerManifest({ config: undefined }), 'invalid manifest: missing config'],
    [dockerManifest({ config: null }), 'invalid manifest: missing config'],
    [dockerManifest({ layers: undefined }), 'invalid manifest: missing layers'],
    [dockerManifest({ layers: {} }), 'invalid manifest: layers must be an array'],
    [dockerManifest({ layers: ['x'] }), 'invalid manifest: layers[0]: must be an object'],
    [
      dockerManifest({ config: { mediaType: DOCKER_CONFIG, size: 1, digest: 'sha256:xyz' } }),
      'invalid manifest: config.digest: "sha256:xyz": invalid checksum digest length',
    ],
    [
      dockerManifest({ config: { mediaType: DOCKER_CONFIG, size: 1, digest: `sha256:${'A'.repeat(64)}` } }),
      `invalid manifest: config.digest: "sha256:${'A'.repeat(64)}": invalid checksum digest format`,
    ],
    [
      dockerManifest({ config: { mediaType: DOCKER_CONFIG, size: 1, digest: `md5:${'a'.repeat(32)}` } }),
      `invalid manifest: config.digest: "md5:${'a'.repeat(32)}": unsupported digest algorithm`,
    ],
    [dockerManifest({ config: { mediaType: DOCKER_CONFIG, size: 1 } }), 'invalid manifest: config: missing digest'],
    [dockerManifest({ config: { mediaType: DOCKER_CONFIG, size: 1, digest: 5 } }), 'invalid manifest: config: digest must be a string'],
    [dockerManifest({ config: { size: 1, digest: dg('a') } }), 'invalid manifest: config: missing mediaType'],
    [dockerManifest({ config: { mediaType: '', size: 1, digest: dg('a') } }), 'invalid manifest: config: empty mediaType'],
    [dockerManifest({ config: { mediaType: DOCKER_CONFIG, digest: dg('a') } }), 'invalid manifest: config: missing size'],
    [dockerManifest({ layers: [{ mediaType: DOCKER_LAYER, size: -1, digest: dg('b') }] }), 'invalid manifest: layers[0].size: must be a non-negative integer'],
    [dockerManifest({ layers: [{ mediaType: DOCKER_LAYER, size: 1.5, digest: dg('b') }] }), 'invalid manifest: layers[0].size: must be a non-negative integer'],
    [dockerManifest({ layers: [{ mediaType: DOCKER_LAYER, size: '12', digest: dg('b') }] }), 'invalid manifest: layers[0].size: must be a non-negative integer'],
    [dockerManifest({ layers: [{ mediaType: DOCKER_LAYER, size: 2 ** 60, digest: dg('b') }] }), 'invalid manifest: layers[0].size: must be a non-negative integer'],
    [
      dockerManifest({ layers: [{ mediaType: 'application/vnd.example.thing', size: 1, digest: dg('b') }] }),
      'invalid manifest: layers[0]: unsupported layer media type "application/vnd.example.thing"',
    ],
    [
      dockerManifest({ layers: [{ mediaType: DOCKER_LAYER, size: 1, digest: dg('b'), urls: 'https://x' }] }),
      'invalid manifest: layers[0].urls: must be an array of strings',
    ],
    [
      dockerManifest({ layers: [{ mediaType: DOCKER_LAYER, size: 1, digest: dg('b'), annotations: { a: 1 } }] }),
      'invalid manifest: layers[0].annotations: must be an object of strings',
    ],
    [
      dockerManifest({ config: { mediaType: 'application/vnd.docker.plugin.v1+json', size: 1, digest: dg('a') } }),
      'Encountered remote "application/vnd.docker.plugin.v1+json"(plugin) when fetching',
    ],
    [
      dockerManifest({ config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', size: 1, digest: dg('a') } }),
      'Encountered remote "application/vnd.cncf.helm.config.v1+json"(unknown) when fetching',
    ],
    [{ ...dockerList(), manifests: undefined }, 'invalid manifest: missing manifests'],
    [{ ...dockerList(), manifests: [{ mediaType: DOCKER_MANIFEST, size: 1, digest: dg('1'), platform: { os: 'linux' } }] }, 'invalid manifest: manifests[0].platform: missing architecture'],
    [{ ...dockerList(), manifests: [{ mediaType: DOCKER_MANIFEST, size: 1, digest: dg('1'), platform: 'linux/amd64' }] }, 'invalid manifest: manifests[0].platform: must be an object'],
    [
      { ...dockerList(), manifests: [{ mediaType: DOCKER_MANIFEST, size: 1, digest: dg('1'), platform: { os: 'linux', architecture: 'arm', variant: 7 } }] },
      'invalid manifest: manifests[0].platform: variant must be a string',
    ],
    [
      { ...dockerList(), manifests: [{ mediaType: DOCKER_MANIFEST, size: 1, digest: dg('1'), platform: { os: 'linux', architecture: 'x', 'os.features': [1] } }] },
      'invalid manifest: manifests[0].platform.os.features: must be an array of strings',
    ],
    [[dockerManifest()], 'invalid manifest: not a JSON object'],
    ['a string', 'invalid manifest: not a JSON object'],
    [null, 'invalid manifest: not a JSON object'],
  ];
  for (const [doc, message] of cases) {
    fails(() => parseManifest(json(doc), undefined), message);
  }
  fails(() => parseManifest(Buffer.from('{"schemaVersion": 2,'), DOCKER_MANIFEST), /^invalid manifest: .*JSON/);
  fails(() => parseManifest(Buffer.alloc(0), DOCKER_MANIFEST), /^invalid manifest: /);
});

test('manifests over 4 MiB are refused before parsing', () => {
  assert.equal(MAX_MANIFEST_BYTES, 4 * 1024 * 1024);
  const padding = ' '.repeat(MAX_MANIFEST_BYTES);
  fails(() => parseManifest(Buffer.from(JSON.stringify(dockerManifest()) + padding), DOCKER_MANIFEST), /^manifest too large: \d+ bytes \(limit 4194304\)$/);
  const exact = JSON.stringify(dockerManifest());
  const fits = Buffer.from(exact + ' '.repeat(MAX_MANIFEST_BYTES - exact.length));
  assert.equal(fits.length, MAX_MANIFEST_BYTES);
  assert.equal(parseManifest(fits, DOCKER_MANIFEST).kind, 'image');
});

test('layer compression by media type', () => {
  const cases: [string, 'gzip' | 'zstd' | 'none'][] = [
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
    ['application/vnd.docker.image.rootfs.diff.tar.zstd', 'zstd'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar', 'none'],
    ['application/vnd.oci.image.layer.v1.tar', 'none'],
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  ];
  for (const [mt, c] of cases) assert.equal(layerCompression(mt), c, mt);
  assert.deepEqual([...LAYER_MEDIA_TYPES].sort(), cases.map(([mt]) => mt).sort());
  fails(() => layerCompression('application/vnd.oci.image.layer.v1.tar+bzip2'), 'unsupported layer media type "application/vnd.oci.image.layer.v1.tar+bzip2"');
  fails(() => layerCompression('toString'), 'unsupported layer media type "toString"');
});

test('the Accept list names the four manifest types and no schema 1', () => {
  assert.deepEqual([...ACCEPT_MANIFESTS].sort(), [DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST].sort());
  assert.equal(ACCEPT_MANIFESTS_HEADER, ACCEPT_MANIFESTS.join(', '));
  assert.ok(!ACCEPT_MANIFESTS_HEADER.includes('distribution.manifest.v1'));
  assert.ok(Object.isFrozen(ACCEPT_MANIFESTS));
});

// --- image configs ----------------------------------------------------------------------------

function busyboxConfig(): Record<string, unknown> {
  return {
    architecture: 'arm',
    variant: 'v7',
    os: 'linux',
    created: '2023-07-18T23:19:33.655005962Z',
    config: {
      Hostname: '',
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['sh'],
      Image: dg('9'),
      Volumes: null,
      WorkingDir: '',
      Entrypoint: null,
      OnBuild: null,
      Labels: null,
      ExposedPorts: { '80/tcp': {} },
      Healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 30_000_000_000, Retries: 3 },
      StopSignal: 'SIGQUIT',
    },
    container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ', 'CMD ["sh"]'] },
    docker_version: '20.10.23',
    history: [
      { created: '2023-07-18T23:19:33.538571854Z', created_by: '/bin/sh -c #(nop) ADD file:abc in / ' },
      { created: '2023-07-18T23:19:33.655005962Z', created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
    ],
    rootfs: { type: 'layers', diff_ids: [dg('d')] },
    'moby.buildkit.buildinfo.v1': 'e30=',
  };
}

test('image configs are checked and keep every field', () => {
  const c = parseImageConfig(json(busyboxConfig()));
  assert.equal(c.architecture, 'arm');
  assert.equal(c.variant, 'v7');
  assert.equal(c.os, 'linux');
  assert.equal(c.created, '2023-07-18T23:19:33.655005962Z');
  assert.deepEqual(c.rootfs, { type: 'layers', diff_ids: [dg('d')] });
  assert.deepEqual(c.config?.Cmd, ['sh']);
  assert.equal(c.config?.Entrypoint, null);
  assert.deepEqual(c.config?.ExposedPorts, { '80/tcp': {} });
  assert.equal(c.config?.Healthcheck?.Interval, 30_000_000_000);
  assert.equal(c.config?.StopSignal, 'SIGQUIT');
  assert.equal(c.config?.Hostname, '');
  assert.deepEqual(c.container_config?.Cmd, ['/bin/sh', '-c', '#(nop) ', 'CMD ["sh"]']);
  assert.equal(c.history?.length, 2);
  assert.equal(c.history?.[1]?.empty_layer, true);
  assert.equal(c['moby.buildkit.buildinfo.v1'], 'e30=');
  assert.equal(c.docker_version, '20.10.23');
  // The whole document survives.
  assert.deepEqual(JSON.parse(JSON.stringify(c)), busyboxConfig());
});

test('image config details: string commands, missing fields, OCI configs', () => {
  const c = parseImageConfig(json({ ...busyboxConfig(), config: { Cmd: 'sh', Entrypoint: '/init', Shell: '/bin/bash' } }));
  assert.deepEqual(c.config?.Cmd, ['sh']);
  assert.deepEqual(c.config?.Entrypoint, ['/init']);
  assert.deepEqual(c.config?.Shell, ['/bin/bash']);

  const minimal = parseImageConfig(json({ rootfs: { type: 'layers', diff_ids: [] } }));
  assert.equal(minimal.architecture, '');
  assert.equal(minimal.os, '');
  assert.equal(minimal.config, undefined);
  assert.deepEqual(minimal.rootfs.diff_ids, []);

  const noDiffIds = parseImageConfig(json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }));
  assert.deepEqual(noDiffIds.rootfs.diff_ids, []);

  const oci = parseImageConfig(
    json({
      created: '2024-05-01T10:00:00+02:00',
      architecture: 'arm64',
      os: 'linux',
      config: { User: '1000:1000', Env: ['A=1'], Entrypoint: ['/app'], WorkingDir: '/srv', Labels: { 'org.opencontainers.image.title': 'app' }, StopSignal: 'SIGTERM', ArgsEscaped: true },
      rootfs: { type: 'layers', diff_ids: [dg('1'), dg('2')] },
      history: null,
    }),
  );
  assert.equal(oci.config?.User, '1000:1000');
  assert.deepEqual(oci.config?.Labels, { 'org.opencontainers.image.title': 'app' });
  assert.equal(oci.history, null);
  assert.deepEqual(oci.rootfs.diff_ids, [dg('1'), dg('2')]);
  assert.equal(parseImageConfig(json({ ...busyboxConfig(), config: null })).config, null);
});

test('malformed image configs are refused', () => {
  const base = busyboxConfig();
  const withConfig = (config: Record<string, unknown>) => ({ ...base, config });
  const cases: [unknown, string | RegExp][] = [
    [{ ...base, rootfs: undefined }, 'invalid image config: missing rootfs'],
    [{ ...base, rootfs: 'layers' }, 'invalid image config: missing rootfs'],
    [{ ...base, rootfs: { type: 'layers+base', diff_ids: [] } }, 'invalid image config: rootfs.type: must be "layers", not "layers+base"'],
    [{ ...base, rootfs: { diff_ids: [] } }, 'invalid image config: rootfs.type: must be "layers", not null'],
    [{ ...base, rootfs: { type: 'layers', diff_ids: 'x' } }, 'invalid image config: rootfs.diff_ids: must be an array'],
    [{ ...base, rootfs: { type: 'layers', diff_ids: ['sha256:1234'] } }, 'invalid image config: rootfs.diff_ids[0]: "sha256:1234": invalid checksum digest length'],
    [{ ...base, rootfs: { type: 'layers', diff_ids: [dg('a'), 7] } }, 'invalid image config: rootfs.diff_ids[1]: must be a string'],
    [{ ...base, architecture: 64 }, 'invalid image config: architecture must be a string'],
    [{ ...base, os: ['linux'] }, 'invalid image config: os must be a string'],
    [{ ...base, variant: 7 }, 'invalid image config: variant must be a string'],
    [{ ...base, 'os.features': 'x' }, 'invalid image config: os.features: must be an array of strings'],
    [{ ...base, created: 'yesterday' }, 'invalid image config: created must be an RFC 3339 time'],
    [{ ...base, created: 1690000000 }, 'invalid image config: created must be an RFC 3339 time'],
    [{ ...base, config: 'sh' }, 'invalid image config: config: must be an object'],
    [withConfig({ Env: 'A=1' }), 'invalid image config: config.Env: must be an array of strings'],
    [withConfig({ Env: ['A=1', 2] }), 'invalid image config: config.Env: must be an array of strings'],
    [withConfig({ Cmd: [1] }), 'invalid image config: config.Cmd: must be an array of strings'],
    [withConfig({ Entrypoint: {} }), 'invalid image config: config.Entrypoint: must be an array of strings'],
    [withConfig({ User: 0 }), 'invalid image config: config.User: must be a string'],
    [withConfig({ WorkingDir: ['/'] }), 'invalid image config: config.WorkingDir: must be a string'],
    [withConfig({ Tty: 'yes' }), 'invalid image config: config.Tty: must be a boolean'],
    [withConfig({ Labels: { a: 1 } }), 'invalid image config: config.Labels: must be an object of strings'],
    [withConfig({ ExposedPorts: ['80/tcp'] }), 'invalid image config: config.ExposedPorts: must be an object of objects'],
    [withConfig({ Volumes: { '/data': 1 } }), 'invalid image config: config.Volumes: must be an object of objects'],
    [withConfig({ StopTimeout: 1.5 }), 'invalid image config: config.StopTimeout: must be an integer'],
    [withConfig({ Healthcheck: 'CMD true' }), 'invalid image config: config.Healthcheck: must be an object'],
    [withConfig({ Healthcheck: { Test: 'true' } }), 'invalid image config: config.Healthcheck.Test: must be an array of strings'],
    [withConfig({ Healthcheck: { Interval: '30s' } }), 'invalid image config: config.Healthcheck.Interval: must be an integer'],
    [{ ...base, container_config: { Env: 1 } }, 'invalid image config: container_config.Env: must be an array of strings'],
    [{ ...base, history: {} }, 'invalid image config: history: must be an array'],
    [{ ...base, history: ['x'] }, 'invalid image config: history[0]: must be an object'],
    [{ ...base, history: [{ created_by: 5 }] }, 'invalid image config: history[0]: created_by must be a string'],
    [{ ...base, history: [{ created: 'now' }] }, 'invalid image config: history[0]: created must be an RFC 3339 time'],
    [{ ...base, history: [{ empty_layer: 'true' }] }, 'invalid image config: history[0].empty_layer: must be a boolean'],
    [[base], 'invalid image config: not a JSON object'],
  ];
  for (const [doc, message] of cases) fails(() => parseImageConfig(json(doc)), message);
  fails(() => parseImageConfig(Buffer.from('nope')), /^invalid image config: .*JSON/);
});
