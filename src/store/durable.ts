// Durable: fsync by path — what makes a written file, or a rename inside a directory, survive a
// crash. Linux allows fsync on a read-only descriptor, so files and directories are opened alike.
import { promises as fs } from 'node:fs';

export const fsyncPath = async (path: string): Promise<void> => {
  const fh = await fs.open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
};
