// Tls: what an https connection trusts. Node's roots, plus the certificates a user names in
// NODE_EXTRA_CA_CERTS, as in any Node program, with one difference: Node 20 reads that file (and
// parses its own ~140 roots with it) when it starts, before any JavaScript runs, whether or not
// the process will ever open a TLS connection: ~40 ms of every start on this machine, where it is
// set, against a whole `tsd-run` of ~105 ms. So bin/tsd-* (sh, then Node) start Node with the
// variable moved to TSD_EXTRA_CA_CERTS, and the file is read here, by the first https request.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/**
 * The `ca` option that adds $TSD_EXTRA_CA_CERTS to Node's roots; none when it is not set (a Node
 * started with NODE_EXTRA_CA_CERTS trusts that file already). A file that cannot be read (Node
 * warns too) or holds no PEM certificate (Node says nothing) is skipped with a warning.
 */
export const extraCaOptions = (): { ca?: string[] } => {
  const warn = (why: string) => process.stderr.write(`warning: NODE_EXTRA_CA_CERTS ${file}: ${why}; not trusted\n`);
  const file = process.env.TSD_EXTRA_CA_CERTS;
  if (!file) return {};
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    warn(code === 'ENOENT' ? 'no such file' : (e as Error).message);
    return {};
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    warn('holds no PEM certificate');
    return {};
  }
  return { ca: [...rootCertificates, pem] };
};
