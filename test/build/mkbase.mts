import { openStore } from '../../src/store/store.js';
import { paths } from '../../src/store/layout.js';
import { makeBusybox } from './support.js';
const root = process.argv[2]!;
await openStore(root)();
await makeBusybox(paths(root));
console.log('ok');
