// Options every binary shares, declared once.
import { flag, option, optional, string } from 'cmd-ts';

export const rootOption = option({
  type: optional(string),
  long: 'root',
  env: 'TSD_ROOT',
  description: 'the store (default /var/lib/tsd for root, else $XDG_DATA_HOME/tsd)',
});

export const jsonFlag = flag({ long: 'json', description: 'print JSON lines instead of a table' });
