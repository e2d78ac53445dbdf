// Options tsd-pull and tsd-push share, declared once and decoded at the boundary.
export { decodeProgress } from './mode.js';
import { flag, multioption, option, optional, string, array } from 'cmd-ts';
import * as E from 'fp-ts/lib/Either.js';
import { failure, type Failure } from '../failure.js';

export const insecureOption = multioption({
  type: array(string),
  long: 'insecure',
  description: 'reach this registry (host[:port]) over plain HTTP; loopback hosts always are',
});

export const progressOption = option({
  type: optional(string),
  long: 'progress',
  description: 'auto (live lines on a terminal, plain lines elsewhere), tty, plain or json',
});

export const quietFlag = flag({ long: 'quiet', short: 'q', description: 'print only the JSON result' });

export const concurrencyOption = option({
  type: optional(string),
  long: 'concurrency',
  description: 'blobs transferred at once (default 6)',
});

export const decodeConcurrency = (value: string | undefined): E.Either<Failure, number> => {
  if (value === undefined) return E.right(6);
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 && n <= 64 ? E.right(n) : E.left(failure('InvalidOption', `--concurrency ${JSON.stringify(value)}: expected a whole number from 1 to 64`));
};
