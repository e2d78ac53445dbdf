// One tsd unpack of one layer into a store, as its own process (the bench times the process, as
// it times tar and umoci). Usage: node tsd-unpack.mjs ROOT LAYER_JSON DIFF_ID [sync|nosync]
import { chainIds, storePaths, unpackLayer } from '../../dist/index.mjs';

const [root, layerJson, diffId, sync = 'nosync'] = process.argv.slice(2);
const p = storePaths(root);
const [chainId] = chainIds([diffId]);
const r = await unpackLayer(p, JSON.parse(layerJson), diffId, chainId, { sync: sync === 'sync' })();
if (r._tag === 'Left') {
  process.stderr.write(`tsd-unpack: ${r.left.message}\n`);
  process.exit(r.left.exitCode);
}
if (!r.right.created) {
  process.stderr.write('tsd-unpack: the snapshot existed already (the bench must start from none)\n');
  process.exit(1);
}
