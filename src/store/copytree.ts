// Copies a directory tree with what a volume seeded from an image needs to
// keep: owners, modes (setuid/setgid/sticky included), symlinks as symlinks,
// hard links as links, timestamps, FIFOs and device nodes (through the mknod
// tool, SpecialFiles). Extended attributes are not copied (Node cannot read
// them). Docker's equivalent is chrootarchive.CopyWithTar plus copyOwnership.
import { promises as fs, type Stats } from 'node:fs';
import { join } from 'node:path';
import { SpecialFiles } from './special.js';

/** Copies the contents of `src` into the existing directory `dst`, then gives `dst` src's owner and mode. */
export async function copyTree(src: string, dst: string): Promise<void> {
  const links = new Map<string, string>();
  const special = new SpecialFiles();
  const dirTimes: Array<[string, Stats]> = [];
  const walk = async (from: string, to: string): Promise<void> => {
    for (const name of await fs.readdir(from)) {
      const s = join(from, name);
      const d = join(to, name);
      const st = await fs.lstat(s);
      if (st.isDirectory()) {
        await fs.mkdir(d, { mode: 0o700 });
        await walk(s, d);
        await fs.lchown(d, st.uid, st.gid);
        await fs.chmod(d, st.mode & 0o7777);
        dirTimes.push([d, st]);
        continue;
      }
      if (!st.isSymbolicLink() && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          await fs.link(first, d);
          continue;
        }
        links.set(key, d);
      }
      if (st.isSymbolicLink()) {
        await fs.symlink(await fs.readlink(s), d);
        await fs.lchown(d, st.uid, st.gid);
        await fs.lutimes(d, st.atime, st.mtime);
      } else if (st.isFile()) {
        await fs.copyFile(s, d);
        // chown before chmod: chown clears setuid/setgid.
        await fs.lchown(d, st.uid, st.gid);
        await fs.chmod(d, st.mode & 0o7777);
        await fs.utimes(d, st.atime, st.mtime);
      } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
        const type = st.isFIFO() ? 'p' : st.isCharacterDevice() ? 'c' : 'b';
        special.mknod(d, type, Math.floor(st.rdev / 256) & 0xfff, (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00), st.mode, st.uid, st.gid);
      }
      // Sockets are not copied (tar does not carry them either).
    }
  };
  const root = await fs.stat(src);
  await walk(src, dst);
  await special.flush();
  // Directory times last: creating their entries changed them.
  for (const [d, st] of dirTimes.reverse()) await fs.utimes(d, st.atime, st.mtime);
  await fs.chown(dst, root.uid, root.gid);
  await fs.chmod(dst, root.mode & 0o7777);
}
