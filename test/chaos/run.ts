// npm run chaos: the long form of the chaos suite (test/chaos/driver.ts).
//   node --import tsx test/chaos/run.ts [--kills N] [--per-op N] [--size-mb N] [--seed N] [--ops pull,push,…]
// --kills is the total, spread evenly over the operations (default 210: 30 each).
import { chaos, OPS, table, type OpName } from './driver.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const ops = (arg('ops')?.split(',') ?? [...OPS]) as OpName[];
const unknown = ops.filter((o) => !(OPS as readonly string[]).includes(o));
if (unknown.length > 0) {
  process.stderr.write(`chaos: unknown operation ${unknown.join(', ')} (one of ${OPS.join(', ')})\n`);
  process.exit(1);
}
const perOp = Number(arg('per-op') ?? Math.ceil(Number(arg('kills') ?? 210) / ops.length));
const seed = Number(arg('seed') ?? (Date.now() & 0x7fffffff));
const sizeMb = Number(arg('size-mb') ?? 12);
process.stderr.write(`chaos: ${perOp} kills for each of ${ops.join(', ')}; seed ${seed}; ${sizeMb} MiB image\n`);
const started = Date.now();
const figures = await chaos({ kills: perOp, ops, seed, sizeMb });
const failures = figures.reduce((n, f) => n + f.failures.length, 0);
process.stdout.write(`${table(figures)}\n\nseed ${seed}, ${sizeMb} MiB image, ${((Date.now() - started) / 1000).toFixed(0)} s, ${failures} failures\n`);
process.exit(failures === 0 ? 0 : 1);
