// The hostile corpus (corpus.ts), encodings and documents: decompression bombs (peak RSS bounded),
// truncated and mislabelled blobs, manifests and configs that lie or are not JSON, deep and looping
// indexes, through load → run (unpack) and pull --unpack (see hostile-paths.ts).
import { corpusSuite } from './hostile-paths.js';

corpusSuite('blobs and documents', ['blob', 'document']);
