// Writer for Node's single-executable-application (SEA) preparation blob.
//
// `node --experimental-sea-config` always writes the blob for the pointer width
// of the node that runs it. On our x64 build host that means 8-byte (size_t)
// length fields, and a 32-bit node (armv7l/armv6l) reads those as 4-byte
// lengths and aborts at startup ("v8::ToLocalChecked Empty MaybeLocal"). Node 20
// has no option to pick the width, and running the target node under qemu just
// to write a blob is slow, so for 32-bit targets we write the (small, stable)
// layout ourselves.
//
// Layout of a plain blob (no snapshot, no code cache, no assets), little-endian:
//
//   u32     magic  0x0143da20
//   u32     flags  bit 0 = disableExperimentalSEAWarning
//                  (2 = useSnapshot, 4 = useCodeCache, 8 = assets: unsupported here)
//   size_t  byte length of the code path, then the code path (UTF-8)
//   size_t  byte length of the main script, then the main script (raw bytes)
//
// where size_t is 8 bytes on 64-bit and 4 bytes on 32-bit targets. The code path
// is the config's "main" string verbatim (not resolved), which is what node writes.
// test/build/blob.test.mjs checks the 8-byte form is byte-identical to node's own
// output, and build.mjs repeats that check on every 32-bit build.

export const SEA_BLOB_MAGIC = 0x0143da20;
export const SEA_FLAG_DISABLE_EXPERIMENTAL_WARNING = 1;

/**
 * @param {object} opts
 * @param {string} opts.codePath        the sea-config "main" value, verbatim
 * @param {string | Uint8Array} opts.source  the main script (a string is UTF-8 encoded)
 * @param {boolean} [opts.disableWarning]   disableExperimentalSEAWarning
 * @param {4 | 8} opts.pointerBytes     size_t width of the target
 * @returns {Buffer}
 */
export function writeSeaBlob({ codePath, source, disableWarning = false, pointerBytes }) {
  if (pointerBytes !== 4 && pointerBytes !== 8) {
    throw new TypeError(`pointerBytes must be 4 or 8, got ${pointerBytes}`);
  }
  if (typeof codePath !== 'string') throw new TypeError('codePath must be a string');
  const pathBytes = Buffer.from(codePath, 'utf8');
  const code = typeof source === 'string' ? Buffer.from(source, 'utf8') : Buffer.from(source);

  const header = Buffer.alloc(8);
  header.writeUInt32LE(SEA_BLOB_MAGIC, 0);
  header.writeUInt32LE(disableWarning ? SEA_FLAG_DISABLE_EXPERIMENTAL_WARNING : 0, 4);
  return Buffer.concat([header, sizeField(pathBytes.length, pointerBytes), pathBytes,
    sizeField(code.length, pointerBytes), code]);
}

function sizeField(n, pointerBytes) {
  const b = Buffer.alloc(pointerBytes);
  if (pointerBytes === 8) {
    b.writeBigUInt64LE(BigInt(n));
  } else {
    if (n > 0xffffffff) throw new RangeError(`length ${n} does not fit a 32-bit size_t`);
    b.writeUInt32LE(n);
  }
  return b;
}
