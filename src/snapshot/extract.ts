// Extract: applies a layer tar stream to an empty snapshot directory, safely. Every header is
// decoded (entry.ts), placed by resolving its parents inside the root (tree.ts), and carried out
// through RootFs (rootfs-fs.ts), the only thing that touches the disk. Whiteouts become overlay
// whiteouts and `.wh..wh..opq` an opaque directory: the snapshot is an overlay lowerdir as is.
//
// The uncompressed bytes are hashed on the way in (the diff ID); the caller compares it with the
// image config before it commits the snapshot. Directory owners, modes and mtimes are set last
// (deepest first), because creating children would change them.
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as E from 'fp-ts/lib/Either.js';
import tar from 'tar-stream';
import { DigestingStream, type Digest } from '../oci/digest.js';
import { decodeEntry, showName, type EntryPath, type LayerEntry, type TarHeader } from './entry.js';
import { PaxXattrTap } from './pax-xattrs.js';
import type { RootFs, SpecialRequest } from './rootfs-fs.js';
import { showPath, Tree, type Node } from './tree.js';

export interface ExtractReport {
  /** sha256 of the uncompressed tar, every byte of it */
  readonly diffId: Digest;
  /** size of the uncompressed tar */
  readonly tarSize: number;
  readonly entries: number;
  /** devices and fifos the kernel refused (unpacking without root) */
  readonly skippedDevices: readonly string[];
  /** "path: xattr" pairs whose binary PAX value tar-stream cannot hand over (see entry.ts) */
  readonly lostXattrs: readonly string[];
}

/** An entry that would reach outside the snapshot or cannot be made sense of. */
export class HostileEntry extends Error {
  readonly code = 'EHOSTILE';
}

const OPAQUE_XATTR = 'trusted.overlay.opaque';

class Extraction {
  readonly tree = new Tree();
  entries = 0;
  readonly lostXattrs: string[] = [];
  constructor(readonly fs: RootFs) {}

  private check<A>(r: E.Either<string, A>, name: string): A {
    if (E.isLeft(r)) throw new HostileEntry(`entry ${showName(name)}: ${r.left}`);
    return r.right;
  }

  /** Resolves where an entry goes, makes its parents, and clears its name unless both are dirs. */
  private place(path: EntryPath, name: string, keepDir: boolean): EntryPath {
    const resolved = this.check(this.tree.resolveEntry(path), name);
    for (const dir of this.check(this.tree.ensureDirs(resolved.slice(0, -1)), name)) this.fs.mkdir(dir);
    const existing = resolved.length === 0 ? this.tree.root : this.tree.lookup(resolved);
    if (existing === undefined || (keepDir && existing.kind === 'dir')) return resolved;
    if (resolved.length === 0) throw new HostileEntry(`entry ${showName(name)} would replace the layer root`);
    if (existing.kind !== 'special') this.fs.remove(resolved, existing.kind === 'dir'); // specials are made at the end
    this.tree.delete(resolved);
    return resolved;
  }

  /** Applies every entry but a regular file's body; returns the fd of a file to fill. */
  apply(entry: LayerEntry, name: string): number | undefined {
    switch (entry.kind) {
      case 'ignored':
        return undefined;
      case 'dir': {
        const at = this.place(entry.path, name, true);
        let node = at.length === 0 ? this.tree.root : this.tree.lookup(at);
        if (node === undefined) {
          this.fs.mkdir(at);
          node = { kind: 'dir', children: new Map(), opaque: false };
          this.tree.set(at, node);
        }
        if (node.kind === 'dir') node.meta = entry.meta;
        return undefined;
      }
      case 'file': {
        const at = this.place(entry.path, name, false);
        const fd = this.fs.createFile(at, entry.meta);
        this.tree.set(at, { kind: 'file', xattrs: entry.meta.xattrs });
        return fd;
      }
      case 'symlink': {
        const at = this.place(entry.path, name, false);
        this.fs.symlink(at, entry.target, entry.meta);
        this.tree.set(at, { kind: 'symlink', target: entry.target, xattrs: entry.meta.xattrs });
        return undefined;
      }
      case 'hardlink': {
        const target = this.check(this.tree.resolveEntry(entry.target), name);
        const node = this.tree.lookup(target);
        if (node === undefined) throw new HostileEntry(`hard link ${showName(name)}: target ${showPath(entry.target)} is not in this layer`);
        if (node.kind === 'dir') throw new HostileEntry(`hard link ${showName(name)}: target ${showPath(entry.target)} is a directory`);
        const at = this.check(this.tree.resolveEntry(entry.path), name);
        if (showPath(at) === showPath(target)) return undefined; // a link to itself
        this.place(entry.path, name, false);
        // devices and fifos are made at the end: a link to one becomes a twin node
        if (node.kind !== 'special' && this.tree.lookup(target) === node) this.fs.link(target, at);
        else if (node.kind !== 'special') throw new HostileEntry(`hard link ${showName(name)}: target ${showPath(entry.target)} was replaced`);
        this.tree.set(at, node);
        return undefined;
      }
      case 'device':
      case 'fifo': {
        const at = this.place(entry.path, name, false);
        const type = entry.kind === 'fifo' ? 'fifo' : entry.device;
        const [major, minor] = entry.kind === 'device' ? [entry.major, entry.minor] : [0, 0];
        this.tree.set(at, { kind: 'special', type, major, minor, meta: entry.meta });
        return undefined;
      }
      case 'whiteout': {
        const at = this.check(this.tree.resolveEntry(entry.path), name);
        // A whiteout hides the layers below, never what this layer itself holds (image spec).
        if (this.tree.lookup(at) !== undefined) return undefined;
        for (const dir of this.check(this.tree.ensureDirs(at.slice(0, -1)), name)) this.fs.mkdir(dir);
        this.tree.set(at, { kind: 'special', type: 'whiteout', major: 0, minor: 0 });
        return undefined;
      }
      case 'opaque': {
        const at = this.check(this.tree.resolve(entry.path), name);
        for (const dir of this.check(this.tree.ensureDirs(at), name)) this.fs.mkdir(dir);
        const node = at.length === 0 ? this.tree.root : this.tree.lookup(at);
        if (node?.kind === 'dir') node.opaque = true;
        return undefined;
      }
    }
  }

  /** Special files and xattrs, then directory metadata, deepest first. */
  async finish(): Promise<readonly string[]> {
    const mknods: SpecialRequest[] = [];
    const xattrs: SpecialRequest[] = [];
    const dirs: [EntryPath, Node][] = [];
    const visit = (path: EntryPath, node: Node) => {
      const add = (list: readonly { name: string; value: Buffer }[]) => {
        for (const x of list) xattrs.push({ op: 'xattr', path, name: x.name, value: x.value });
      };
      if (node.kind === 'special') {
        mknods.push({ op: 'mknod', path, type: node.type, major: node.major, minor: node.minor, ...(node.meta ? { meta: node.meta } : {}) });
        add(node.meta?.xattrs ?? []);
      } else if (node.kind === 'dir') {
        if (node.opaque) xattrs.push({ op: 'xattr', path, name: OPAQUE_XATTR, value: Buffer.from('y') });
        add(node.meta?.xattrs ?? []);
        if (node.meta) dirs.push([path, node]);
      } else add(node.xattrs);
    };
    visit([], this.tree.root);
    for (const [path, node] of this.tree.walk()) visit(path, node);
    const { skipped } = await this.fs.special([...mknods, ...xattrs]);
    for (let i = dirs.length - 1; i >= 0; i--) {
      const [path, node] = dirs[i] as [EntryPath, Node];
      if (node.kind === 'dir' && node.meta) this.fs.setDirMeta(path, node.meta);
    }
    return skipped;
  }
}

/**
 * Unpacks the layer tar `source`, decompressed by `decoder`, into the empty directory behind `fs`. Rejects with
 * HostileEntry, a stream error (truncation, bad gzip) or an errno error (ENOSPC); the caller
 * throws the directory away then.
 */
export const extractLayer = async (source: Readable, fs: RootFs, decoder: Duplex = new PassThrough()): Promise<ExtractReport> => {
  const x = new Extraction(fs);
  const hasher = new DigestingStream('sha256');
  const extract = tar.extract();
  const tap = new PaxXattrTap();
  let openFd: number | undefined;
  extract.on('entry', (header, body, next) => {
    body.on('error', () => undefined); // the extraction's own error is what the caller gets
    try {
      x.entries++;
      const h = header as unknown as TarHeader;
      const decoded = decodeEntry(h, tap.xattrsAt(h.byteOffset));
      if (E.isLeft(decoded)) throw new HostileEntry(`entry ${decoded.left}`);
      for (const lost of decoded.right.lostXattrs) x.lostXattrs.push(`${header.name}: ${lost}`);
      const fd = x.apply(decoded.right.entry, header.name);
      if (fd === undefined) {
        body.on('end', () => next());
        body.resume();
        return;
      }
      openFd = fd;
      const meta = decoded.right.entry.kind === 'file' ? decoded.right.entry.meta : undefined;
      body.on('data', (chunk: unknown) => {
        try {
          x.fs.write(fd, chunk as Buffer);
        } catch (e) {
          extract.destroy(e as Error);
        }
      });
      body.on('end', () => {
        try {
          openFd = undefined;
          if (meta) x.fs.finishFile(fd, meta);
          next();
        } catch (e) {
          extract.destroy(e as Error);
        }
      });
    } catch (e) {
      extract.destroy(e as Error);
    }
  });
  try {
    await pipeline(source, decoder, hasher, tap, extract);
  } finally {
    if (openFd !== undefined) fs.abandonFile(openFd);
  }
  const skippedDevices = await x.finish();
  return { diffId: hasher.digest(), tarSize: hasher.size, entries: x.entries, skippedDevices, lostXattrs: x.lostXattrs };
};
