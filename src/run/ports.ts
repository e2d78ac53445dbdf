// Ports: `-p [IP:]HOST:CONTAINER[/tcp]` decoded. Publishing needs no iptables: the supervisor
// binds HOST on the host, then enters the container's network namespace (setns) and, for each
// connection it accepts, opens one to 127.0.0.1:CONTAINER inside and copies bytes both ways.
// A socket keeps the namespace it was made in, so one process serves both sides.
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';

export interface PortMapping {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp';
}

const bad = (s: string, why: string): Failure => failure('InvalidPort', `-p ${s}: ${why}`, ExitCode.tool);
const port = (s: string): number | undefined => (/^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? Number(s) : undefined);

export const parsePublish = (s: string): E.Either<Failure, PortMapping> => {
  const [spec = '', proto = 'tcp'] = s.split('/', 2);
  if (proto !== 'tcp') return E.left(bad(s, `protocol ${proto} is not supported (tcp only)`));
  const parts = spec.startsWith('[') ? /^\[([^\]]+)\]:(.*)$/.exec(spec)?.slice(1) ?? [] : [];
  const [ip, rest] = parts.length === 2 ? [parts[0] as string, parts[1] as string] : ['', spec];
  const fields = rest.split(':');
  let hostIp = ip;
  let hostPort: string | undefined;
  let containerPort: string | undefined;
  if (fields.length === 3 && ip === '') [hostIp = '', hostPort, containerPort] = fields;
  else if (fields.length === 2) [hostPort, containerPort] = fields;
  else if (fields.length === 1) return E.left(bad(s, 'a host port is required (HOST:CONTAINER)'));
  else return E.left(bad(s, 'expected [IP:]HOST:CONTAINER[/tcp]'));
  const hp = port(hostPort ?? '');
  const cp = port(containerPort ?? '');
  if (hp === undefined) return E.left(bad(s, `invalid host port ${JSON.stringify(hostPort)}`));
  if (cp === undefined) return E.left(bad(s, `invalid container port ${JSON.stringify(containerPort)}`));
  if (hostIp !== '' && !/^(\d{1,3}\.){3}\d{1,3}$/.test(hostIp)) return E.left(bad(s, `invalid host IP ${JSON.stringify(hostIp)} (IPv4 only)`));
  return E.right({ hostIp: hostIp || '0.0.0.0', hostPort: hp, containerPort: cp, protocol: 'tcp' });
};

/** The supervisor's argument for one mapping: IP:HOST:CONTAINER. */
export const formatMapping = (m: PortMapping): string => `${m.hostIp}:${m.hostPort}:${m.containerPort}`;
