// QuietCommand: runs a short helper program (mount, umount, cc) with its output dropped and its
// stderr kept for the one-line error.
import { spawn } from 'node:child_process';

export const runQuiet = (cmd: string, args: readonly string[]): Promise<{ code: number; stderr: string }> =>
  new Promise((done) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => done({ code: 127, stderr: e.message }));
    child.on('close', (code) => done({ code: code ?? 1, stderr }));
  });
