// Runs every test/**/*.test.ts file in its own Node process (uvu suites), a few at a time,
// prints each file's output, then the plain closing line CI reads: "N passed, N failed".
// Usage: node scripts/test.mjs [substring…]   (only files whose path contains a substring)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.test.ts') ? [path] : [];
  });

const filters = process.argv.slice(2);
const files = walk('test')
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
const jobs = Number(process.env.TSD_TEST_JOBS ?? 2);

const runFile = (file) =>
  new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => {
      const num = (label) => Number((out.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? NaN);
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped');
      let result;
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        result = { passed: 0, failed: 1, skipped: 0 }; // crashed before uvu could report
      } else {
        const failed = total - passed - (skipped || 0) + (code !== 0 && total === passed ? 1 : 0);
        result = { passed, failed, skipped: skipped || 0 };
      }
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`\n── ${file} (${secs}s, exit ${code})\n${out.trimEnd()}\n`);
      resolve(result);
    });
  });

const queue = [...files];
const results = [];
await Promise.all(
  Array.from({ length: Math.min(jobs, queue.length) }, async () => {
    while (queue.length > 0) results.push(await runFile(queue.shift()));
  }),
);
const sum = (k) => results.reduce((n, r) => n + r[k], 0);
const skipped = sum('skipped');
console.log(`\n${sum('passed')} passed, ${sum('failed')} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(sum('failed') === 0 && files.length > 0 ? 0 : 1);
