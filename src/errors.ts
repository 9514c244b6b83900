// The small set of typed errors every layer throws. api/ maps them to HTTP
// status codes in one place (like moby's errdefs), the CLI maps them to exit codes.

export type ErrorKind =
  | 'invalid-parameter'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'not-modified'
  | 'not-implemented'
  | 'unavailable'
  | 'system';

export class SkiffError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = new.target.name;
  }
}

/** 400: the request or a flag is malformed. */
export class InvalidParameter extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-parameter', message, options);
  }
}
/** 401 */
export class Unauthorized extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unauthorized', message, options);
  }
}
/** 403 */
export class Forbidden extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('forbidden', message, options);
  }
}
/** 404 */
export class NotFound extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('not-found', message, options);
  }
}
/** 409 */
export class Conflict extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('conflict', message, options);
  }
}
/** 304: the operation had nothing to do (start of a running container, ...). */
export class NotModified extends SkiffError {
  constructor(message = 'not modified') {
    super('not-modified', message);
  }
}
/** 501 */
export class NotImplemented extends SkiffError {
  constructor(message: string) {
    super('not-implemented', message);
  }
}
/** 503 */
export class Unavailable extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}
/** 500: something failed on the host (I/O, a system tool...). */
export class SystemError extends SkiffError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('system', message, options);
  }
}

const STATUS: Record<ErrorKind, number> = {
  'invalid-parameter': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'not-modified': 304,
  'not-implemented': 501,
  unavailable: 503,
  system: 500,
};

export function httpStatusOf(err: unknown): number {
  return err instanceof SkiffError ? STATUS[err.kind] : 500;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Node errors carry a `code` (ENOENT, EADDRINUSE, ...) that callers branch on. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
