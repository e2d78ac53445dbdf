// FastList: a plain `tsd-store ls` without the argument parser, imported on demand by cli.ts
// (start-up budget: bench/store).
import { listImages } from './listing.js';
import { renderList, type ListStyle } from './list-output.js';
import { openStoreSync } from './store.js';

export const fastList = async (args: ListStyle & { root?: string }): Promise<void> => {
  // a complete layout costs four stats; a missing one is created, as the full `ls` does
  const p = openStoreSync(args.root);
  const rows = p._tag === 'Right' ? await listImages(p.right)() : p;
  if (rows._tag === 'Left') {
    process.stderr.write(`tsd-store: ${rows.left.message.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exitCode = rows.left.exitCode;
    return;
  }
  process.stdout.on('error', () => undefined);
  process.stdout.write(renderList(rows.right, args));
};
