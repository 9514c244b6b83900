// V8 settings that must be in place before any other module loads. A SEA
// takes no V8 flags on its command line, so they are set here, first thing.
//
// --liftoff-only: undici parses HTTP with llhttp compiled to WebAssembly. V8
// first compiles it with its baseline compiler (Liftoff), then re-compiles the
// hot parser function with TurboFan in a background thread once a download
// gets going; that one compile allocates ~30 MB of zone memory for a moment,
// which was the daemon's peak memory during a pull. Liftoff code parses
// response headers and frames bodies just as well for what skiff downloads
// (the body bytes are not touched by the parser, only counted).
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
