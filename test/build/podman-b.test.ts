// The second half of the podman comparison corpus (test/build/corpus.ts).
import { cases, compareWithPodman } from './corpus.js';

compareWithPodman(cases.slice(7));
