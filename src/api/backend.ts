// What the API needs from the engine, as narrow interfaces: api/ translates
// HTTP to these calls and never touches the host or the data root itself.
import type { SystemInfo, VersionInfo } from '../system/info.js';

export interface SystemBackend {
  version(): VersionInfo;
  info(): SystemInfo;
}

export interface Backend {
  system: SystemBackend;
}
