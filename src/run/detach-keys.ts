// Detach keys: Docker's --detach-keys ("ctrl-p,ctrl-q", "ctrl-a,x") decoded into the bytes that,
// typed or piped in a row into a container with a terminal, leave it running. Pure; shared by
// `tsd-run attach` and the run options (decoded there, before anything is created).
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';
/** DEFAULT_DETACH_KEYS as the bytes typed */
export const DEFAULT_DETACH_BYTES: readonly number[] = [0x10, 0x11];

/** Docker's --detach-keys: "ctrl-p,ctrl-q", "ctrl-a,x"; ctrl-@ … ctrl-_ and single characters. */
export const parseDetachKeys = (s: string): E.Either<Failure, readonly number[]> => {
  const keys: number[] = [];
  for (const k of s.split(',')) {
    const ctrl = /^ctrl-(.)$/i.exec(k);
    if (ctrl) {
      const c = (ctrl[1] as string).toUpperCase().charCodeAt(0);
      if (c < 0x40 || c > 0x5f) return E.left(failure('Usage', `--detach-keys: invalid key ${JSON.stringify(k)}`, ExitCode.user));
      keys.push(c & 0x1f);
    } else if (k.length === 1) keys.push(k.charCodeAt(0));
    else return E.left(failure('Usage', `--detach-keys: invalid key ${JSON.stringify(k)} (ctrl-X or one character, comma separated)`, ExitCode.user));
  }
  return keys.length > 0 ? E.right(keys) : E.left(failure('Usage', '--detach-keys: no key given', ExitCode.user));
};
