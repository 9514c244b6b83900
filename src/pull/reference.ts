// Image references ("busybox", "myrepo/bb:v1", "127.0.0.1:5000/a/b@sha256:..."), parsed and
// normalised with the rules of Docker's reference package (github.com/distribution/reference,
// ParseNormalizedNamed / FamiliarName / FamiliarString / TagNameOnly), including its error texts,
// so `skiff pull` and `POST /images/create` accept and refuse exactly what dockerd does.
//
// Grammar (from the reference package's documentation):
//
//   reference        := name [ ":" tag ] [ "@" digest ]
//   name             := [domain '/'] remote-name
//   domain           := host [':' port-number]
//   host             := domain-name | IPv4address | '[' IPv6address ']'
//   domain-name      := domain-component ['.' domain-component]*
//   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//   port-number      := /[0-9]+/
//   path-component   := alpha-numeric [separator alpha-numeric]*
//   remote-name      := path-component ['/' path-component]*
//   alpha-numeric    := /[a-z0-9]+/
//   separator        := /[_.]|__|[-]+/
//   tag              := /[\w][\w.-]{0,127}/
//   digest           := algorithm ":" hex, algorithm := /[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*/
//
// Digests are then checked like go-digest does for the algorithms dockerd links in
// (sha256, sha384, sha512: lowercase hex of exactly the hash's length).

import { InvalidParameter } from '../errors.js';

/** A normalised reference: `domain` is always set by parseReference (docker.io for Docker Hub). */
export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** Longest repository path (the part after the domain) Docker accepts. */
export const NAME_TOTAL_LENGTH_MAX = 255;

// --- the grammar as regular expressions ------------------------------------------------------

const ALPHANUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALPHANUMERIC}(?:${SEPARATOR}${ALPHANUMERIC})*`;
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_NAME_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_NAME_COMPONENT}(?:\\.${DOMAIN_NAME_COMPONENT})*`;
const IPV6_ADDRESS = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}';
const NAME = `(?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME}`;

const REFERENCE_RE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})$`);
const ANCHORED_TAG_RE = new RegExp(`^${TAG}$`);
const ANCHORED_IDENTIFIER_RE = /^[a-f0-9]{64}$/;
// go-digest's syntax check for digests whose algorithm it does not know.
const GO_DIGEST_SYNTAX_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Hex length of each digest algorithm skiff (like dockerd) can verify. */
const DIGEST_HEX_LENGTH: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 };

// Docker's messages, word for word.
const ERR_INVALID_FORMAT = 'invalid reference format';
const ERR_NAME_UPPERCASE = 'repository name must be lowercase';
const ERR_NAME_EMPTY = 'repository name must have at least one component';
const ERR_NAME_TOO_LONG = `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`;
const ERR_TAG_FORMAT = 'invalid tag format';
const ERR_DIGEST_FORMAT = 'invalid checksum digest format';
const ERR_DIGEST_LENGTH = 'invalid checksum digest length';
const ERR_DIGEST_UNSUPPORTED = 'unsupported digest algorithm';

// --- digests ----------------------------------------------------------------------------------

/** Why `s` is not a usable digest (go-digest's message), or undefined when it is one. */
function digestProblem(s: string): string | undefined {
  const colon = s.indexOf(':');
  if (colon < 0 || colon === s.length - 1) return ERR_DIGEST_FORMAT;
  const algorithm = s.slice(0, colon);
  const encoded = s.slice(colon + 1);
  const length = Object.hasOwn(DIGEST_HEX_LENGTH, algorithm) ? DIGEST_HEX_LENGTH[algorithm] : undefined;
  if (length === undefined) return GO_DIGEST_SYNTAX_RE.test(s) ? ERR_DIGEST_UNSUPPORTED : ERR_DIGEST_FORMAT;
  if (encoded.length !== length) return ERR_DIGEST_LENGTH;
  return /^[a-f0-9]+$/.test(encoded) ? undefined : ERR_DIGEST_FORMAT;
}

/** True for a digest skiff can verify: `sha256:` + 64 lowercase hex (or sha384 / sha512). */
export function isDigest(s: string): boolean {
  return digestProblem(s) === undefined;
}

/** Returns `s` when it is a valid digest, else throws InvalidParameter with go-digest's message. */
export function parseDigest(s: string): string {
  const problem = digestProblem(s);
  if (problem !== undefined) throw new InvalidParameter(problem);
  return s;
}

/** The short form of an image or layer id: the first 12 characters after the algorithm. */
export function shortId(id: string): string {
  const colon = id.indexOf(':');
  const hex = colon >= 0 ? id.slice(colon + 1) : id;
  return hex.slice(0, 12);
}

/** True when `s` is a valid tag (`[\w][\w.-]{0,127}`). */
export function isTag(s: string): boolean {
  return ANCHORED_TAG_RE.test(s);
}

// --- parsing ----------------------------------------------------------------------------------

/** Docker's splitDockerDomain: which part of a familiar name is the registry. */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  if (slash < 0) return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPO_PREFIX + name };
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    // localhost, anything with a dot or a port (or an IPv6 literal), and anything with
    // uppercase letters (namespaces cannot have them, so it must be a host name).
    domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
    remainder = rest;
  } else {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/** Docker's reference.Parse on an already-qualified string. */
function parseQualified(s: string): Reference {
  if (s === '') throw new InvalidParameter(ERR_NAME_EMPTY);
  const m = REFERENCE_RE.exec(s);
  if (m === null) {
    const lower = s.toLowerCase();
    if (lower !== s && REFERENCE_RE.test(lower)) throw new InvalidParameter(ERR_NAME_UPPERCASE);
    throw new InvalidParameter(ERR_INVALID_FORMAT);
  }
  const name = m[1] ?? '';
  const nm = ANCHORED_NAME_RE.exec(name);
  const domain = nm?.[1] ?? '';
  const path = nm?.[2] ?? name;
  if (path.length > NAME_TOTAL_LENGTH_MAX) throw new InvalidParameter(ERR_NAME_TOO_LONG);
  const ref: Reference = { domain, path };
  if (m[2] !== undefined && m[2] !== '') ref.tag = m[2];
  if (m[3] !== undefined && m[3] !== '') ref.digest = parseDigest(m[3]);
  return ref;
}

/**
 * Parses a reference as the docker CLI and dockerd do (ParseNormalizedNamed): `busybox` becomes
 * docker.io/library/busybox, `index.docker.io/x` becomes docker.io/library/x. No tag is implied
 * (see withDefaultTag). Throws InvalidParameter with Docker's message on bad input.
 */
export function parseReference(s: string): Reference {
  if (ANCHORED_IDENTIFIER_RE.test(s)) {
    throw new InvalidParameter(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const { domain, remainder } = splitDockerDomain(s);
  const colon = remainder.indexOf(':');
  const remote = colon >= 0 ? remainder.slice(0, colon) : remainder;
  if (remote.toLowerCase() !== remote) {
    throw new InvalidParameter(`${ERR_INVALID_FORMAT}: repository name (${remote}) must be lowercase`);
  }
  return parseQualified(`${domain}/${remainder}`);
}

/** Docker's TagNameOnly: adds the tag `latest` when the reference has neither tag nor digest. */
export function withDefaultTag(r: Reference): Reference {
  if (r.tag !== undefined || r.digest !== undefined) return { ...r };
  return { ...r, tag: DEFAULT_TAG };
}

function joinName(domain: string, path: string): string {
  return domain === '' ? path : `${domain}/${path}`;
}

function suffix(r: Reference): string {
  return (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** `docker.io/library/busybox` → `busybox`, `docker.io/myrepo/bb` → `myrepo/bb`, others unchanged. */
export function familiarName(r: Reference): string {
  if (r.domain !== DEFAULT_DOMAIN) return joinName(r.domain, r.path);
  if (r.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = r.path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return r.path;
}

/** The familiar name with tag and digest: `busybox:latest`, `x@sha256:...`, `x:t@sha256:...`. */
export function familiarString(r: Reference): string {
  return familiarName(r) + suffix(r);
}

/** `docker.io/library/busybox` */
export function canonicalName(r: Reference): string {
  return joinName(r.domain, r.path);
}

/** `docker.io/library/busybox:latest`, `docker.io/library/busybox@sha256:...` */
export function canonicalString(r: Reference): string {
  return canonicalName(r) + suffix(r);
}

/**
 * The reference a `POST /images/create?fromImage=...&tag=...` pull asks for. `tag` may be a tag or
 * a digest; a digest replaces any tag fromImage carries, a tag replaces fromImage's tag (and keeps
 * its digest), as in dockerd. Unlike dockerd, which pulls every tag of the repository when neither
 * fromImage nor tag names one, skiff pulls `latest` then.
 */
export function fromPullQuery(fromImage: string, tag: string | undefined): Reference {
  // `docker pull -a` from old clients may send a trailing ':'; dockerd strips it.
  const image = fromImage.endsWith(':') ? fromImage.slice(0, -1) : fromImage;
  const ref = parseReference(image);
  if (tag === undefined || tag === '') return withDefaultTag(ref);
  if (isDigest(tag)) return { domain: ref.domain, path: ref.path, digest: tag };
  if (!isTag(tag)) throw new InvalidParameter(ERR_TAG_FORMAT);
  const out: Reference = { domain: ref.domain, path: ref.path, tag };
  if (ref.digest !== undefined) out.digest = ref.digest;
  return out;
}
