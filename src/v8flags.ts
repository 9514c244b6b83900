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
//
// --semi-space-growth-factor=1: the young generation stays at its initial
// size instead of growing to 8 MB. Buffers of a pull (socket reads, gunzip
// output) live in malloc'd memory that is freed only when a scavenge finds
// their small JS handles dead; with a big young generation scavenges are
// rare while data flows, ~15 MB of dead buffers piled up between them, and
// glibc kept the high-water mark resident. Scavenges of a small young
// generation are cheap: the pipeline keeps few young objects alive.
//
// --no-opt: no TurboFan for JavaScript either. skiff's heavy lifting is
// native (zlib, hashing, file I/O); its JS is glue that runs fast enough as
// bytecode and Sparkplug baseline code. TurboFan's background compiles and
// their code cost ~8 MB of a pull's peak memory and bought no measurable
// CPU time (pull CPU 1.06-1.29 s with it, 1.09-1.25 s without).
//
// --optimize-for-size: V8 then runs memory-reducing mark-compacts as the old
// generation grows (three short ones during a 60 MB pull). Chunks that were
// in flight across two scavenges (a layer waiting on a write while the other
// layer moves on) are promoted, and their malloc'd bytes come back only with a
// full GC: without these they piled up to ~10 MB. 7 MB less peak RSS; the
// CPU time of a pull did not change measurably (1.33 s with, 1.45 s without).
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
setFlagsFromString('--semi-space-growth-factor=1');
setFlagsFromString('--no-opt');
setFlagsFromString('--optimize-for-size');
