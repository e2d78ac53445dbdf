// Suggest: the "did you mean" hint BuildKit adds to an unknown instruction. The closest option
// by edit distance (Levenshtein, case-insensitive) wins when it is fewer than 3 edits away; ties
// go to the earlier option. The hint takes the case of what was written: `coppy` suggests
// `copy`, `COPPY` and `Coppy` suggest `COPY`.

/** Levenshtein distance: insertions, deletions and substitutions, one each. */
export const editDistance = (a: string, b: string): number => {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
};

/** Fewer edits than this and an option is offered (BuildKit's bound, taken from HCL). */
const MAX_EDITS = 3;

/** The option `word` probably meant, in the case it was written, or undefined. */
export const closest = (word: string, options: readonly string[]): string | undefined => {
  const w = word.toLowerCase();
  // a word much longer than every option cannot be within reach: skip the quadratic work
  if (w === '' || w.length > 64) return undefined;
  let best: string | undefined;
  let min = MAX_EDITS;
  for (const option of options) {
    const o = option.toLowerCase();
    if (o === w) return undefined;
    const d = editDistance(w, o);
    if (d < min) {
      min = d;
      best = o;
    }
  }
  if (best === undefined) return undefined;
  return word === word.toLowerCase() ? best : best.toUpperCase();
};

/** `message (did you mean X?)` when there is an X. */
export const withSuggestion = (message: string, word: string, options: readonly string[]): string => {
  const hint = closest(word, options);
  return hint === undefined ? message : `${message} (did you mean ${hint}?)`;
};
