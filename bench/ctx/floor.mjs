// bench/ctx/floor.mjs DIR [--hash]: what Node alone needs to send a tree, as a floor for tsd-ctx.
// The same system calls as tsd-ctx (one readdir per directory, one lstat per name; open, read,
// fstat, close per file; 1 MiB writes to a blocking stdout), and with --hash a sha256 of each
// file, but no tar: each file is written as a zeroed 1 KiB "header" and its bytes padded to 512,
// about the size of a tar with one PAX header per file. Nothing else of tsd (no tar-stream, no
// cmd-ts, no fp-ts), so tsd-ctx minus this is what its own code costs.
import { hash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readSync, writeSync } from 'node:fs';

const [root, flag] = process.argv.slice(2);
const hashing = flag === '--hash';
process.stdout._handle?.setBlocking?.(true);
const out = Buffer.allocUnsafeSlow(1 << 20);
let used = 0;
const flush = () => {
  for (let at = 0; at < used; ) at += writeSync(1, out, at, used - at);
  used = 0;
};
let scratch = Buffer.allocUnsafeSlow(1 << 20);
const put = (bytes) => {
  for (let at = 0; at < bytes.length; ) {
    if (used === out.length) flush();
    const n = bytes.copy(out, used, at);
    used += n;
    at += n;
  }
};
const header = Buffer.alloc(1024);
const padding = Buffer.alloc(512);
const walk = (abs) => {
  for (const name of readdirSync(abs).sort()) {
    const full = `${abs}/${name}`;
    const s = lstatSync(full);
    if (s.isDirectory()) {
      put(header.subarray(0, 512));
      walk(full);
      continue;
    }
    if (scratch.length < s.size + 1) scratch = Buffer.allocUnsafeSlow(s.size + 1);
    const fd = openSync(full, 'r');
    const n = readSync(fd, scratch, 0, s.size + 1, null);
    fstatSync(fd);
    closeSync(fd);
    const data = scratch.subarray(0, n);
    if (hashing) hash('sha256', data, 'hex');
    put(header);
    put(data);
    put(padding.subarray(0, (512 - (n % 512)) % 512));
  }
};
walk(root);
put(header);
flush();
