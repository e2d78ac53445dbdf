// Tree: what extraction has made so far inside the snapshot directory, kept in memory. A
// snapshot starts as an empty private directory that only this extraction writes, so the tree is
// an exact picture of the disk and every path can be resolved without a system call.
//
// Resolution follows the rules of filepath-securejoin: each component is looked up inside the
// root; a symlink met on the way is expanded with its target read as if the root were "/"
// (absolute targets restart at the root, ".." stops at the root), at most MAX_LINKS times. The
// last component of an entry is never followed: an entry replaces whatever has its name.
import * as E from 'fp-ts/lib/Either.js';
import type { EntryPath, Meta, Xattr } from './entry.js';

export interface DirNode {
  readonly kind: 'dir';
  readonly children: Map<string, Node>;
  /** the header's metadata, applied once every child exists (mode and mtime would change) */
  meta?: Meta;
  opaque: boolean;
}
/** A node made by the special-node pass (mknod): whiteouts, devices, fifos. */
export interface SpecialNode {
  readonly kind: 'special';
  readonly type: 'whiteout' | 'char' | 'block' | 'fifo';
  readonly major: number;
  readonly minor: number;
  readonly meta?: Meta;
}
export type Node =
  | DirNode
  | { readonly kind: 'file'; readonly xattrs: readonly Xattr[] }
  | { readonly kind: 'symlink'; readonly target: string; readonly xattrs: readonly Xattr[] }
  | SpecialNode;

export const MAX_LINKS = 255;

export const newDir = (): DirNode => ({ kind: 'dir', children: new Map(), opaque: false });

export const showPath = (path: EntryPath): string => (path.length === 0 ? '/' : path.join('/'));

export class Tree {
  readonly root: DirNode = newDir();

  lookup(path: EntryPath): Node | undefined {
    let node: Node | undefined = this.root;
    for (const part of path) {
      if (node?.kind !== 'dir') return undefined;
      node = node.children.get(part);
    }
    return node;
  }

  /**
   * Where `path` really is: its components with every symlink expanded inside the root. The
   * result names no symlink but may name parts that do not exist yet (they will be directories).
   */
  resolve(path: EntryPath): E.Either<string, EntryPath> {
    const names: string[] = [];
    const nodes: (Node | undefined)[] = [this.root];
    const queue = [...path];
    let links = 0;
    while (queue.length > 0) {
      const part = queue.shift() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (names.length > 0) {
          names.pop();
          nodes.pop();
        }
        continue;
      }
      const here = nodes[nodes.length - 1];
      const child = here?.kind === 'dir' ? here.children.get(part) : undefined;
      if (child?.kind === 'symlink') {
        if (++links > MAX_LINKS) return E.left(`${showPath(path)}: too many levels of symbolic links`);
        if (child.target.startsWith('/')) {
          names.length = 0;
          nodes.length = 1;
        }
        queue.unshift(...child.target.split('/'));
        continue;
      }
      names.push(part);
      nodes.push(child);
    }
    return E.right(names);
  }

  /** The parent of an entry, resolved; its last component is kept as it is (never followed). */
  resolveEntry(path: EntryPath): E.Either<string, EntryPath> {
    const base = path[path.length - 1];
    if (base === undefined) return E.right([]);
    const parent = this.resolve(path.slice(0, -1));
    return E.isLeft(parent) ? parent : E.right([...parent.right, base]);
  }

  /**
   * Makes every component of the resolved `dir` a directory in the tree; returns the ones that
   * are new, outermost first, for the caller to mkdir. Refuses to go through a non-directory.
   */
  ensureDirs(dir: EntryPath): E.Either<string, EntryPath[]> {
    const made: EntryPath[] = [];
    let node: DirNode = this.root;
    for (let i = 0; i < dir.length; i++) {
      const part = dir[i] as string;
      const child = node.children.get(part);
      // a whiteout made earlier in this layer is not on disk yet: a directory of the same layer wins
      if (child === undefined || (child.kind === 'special' && child.type === 'whiteout')) {
        const fresh = newDir();
        node.children.set(part, fresh);
        made.push(dir.slice(0, i + 1));
        node = fresh;
      } else if (child.kind === 'dir') node = child;
      else return E.left(`${showPath(dir.slice(0, i + 1))} is not a directory`);
    }
    return E.right(made);
  }

  /** Puts `node` at a resolved path whose parent exists in the tree. */
  set(path: EntryPath, node: Node): void {
    const parent = this.lookup(path.slice(0, -1));
    if (parent?.kind !== 'dir') throw new Error(`tree: parent of ${showPath(path)} is not a directory`);
    parent.children.set(path[path.length - 1] as string, node);
  }

  delete(path: EntryPath): void {
    const parent = this.lookup(path.slice(0, -1));
    if (parent?.kind === 'dir') parent.children.delete(path[path.length - 1] as string);
  }

  /** Every node with its path, parents before children. */
  *walk(dir: DirNode = this.root, path: string[] = []): Generator<[EntryPath, Node]> {
    for (const [name, node] of dir.children) {
      const here = [...path, name];
      yield [here, node];
      if (node.kind === 'dir') yield* this.walk(node, here);
    }
  }
}
