// FastList: a plain `tsd-store ls` without the argument parser, imported on demand by cli.ts
// (start-up budget: bench/store).
import * as E from 'fp-ts/lib/Either.js';
import { listImages } from './listing.js';
import { renderList, type ListStyle } from './list-output.js';
import { openExistingStore, openStore } from './store.js';

export const fastList = async (args: ListStyle & { root?: string }): Promise<void> => {
  // a complete layout costs four stats; a missing one is created, as the full `ls` does
  const existing = openExistingStore(args.root);
  const p = existing !== undefined ? E.right(existing) : await openStore(args.root)();
  const rows = p._tag === 'Right' ? await listImages(p.right)() : p;
  if (rows._tag === 'Left') {
    process.stderr.write(`tsd-store: ${rows.left.message.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exitCode = rows.left.exitCode;
    return;
  }
  process.stdout.on('error', () => undefined);
  process.stdout.write(renderList(rows.right, args));
};
