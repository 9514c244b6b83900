// Build facts are injected by build.mjs through esbuild's `define`; sources run
// unbundled (unit tests) fall back to "dev" so nothing needs a build to import this.
declare const __SKIFF_BUILD__: { version: string; commit: string; time: string } | undefined;

const injected = typeof __SKIFF_BUILD__ === 'undefined' ? undefined : __SKIFF_BUILD__;

export const VERSION: string = injected?.version ?? '0.0.0-dev';
export const GIT_COMMIT: string = injected?.commit ?? 'unknown';
export const BUILD_TIME: string = injected?.time ?? '';

/** The Engine API version skiff speaks, the same as balenaEngine 20.10. */
export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.12';
