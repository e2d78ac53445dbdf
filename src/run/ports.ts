// Ports: `-p [IP:][HOST:]CONTAINER[/tcp|/udp]` decoded (no HOST: the kernel picks one, hostPort 0
// in the record; the supervisor writes the ports it got to the container's `ports` file); IP may be IPv6 in brackets
// (`-p [::1]:8080:80`). Publishing needs no iptables: the supervisor binds HOST on the host,
// then enters the container's network namespace (setns) and, for each TCP connection it accepts
// (or each UDP client address it hears from), opens a socket to the container's loopback inside
// and copies bytes (datagrams) both ways. A socket keeps the namespace it was made in, so one
// process serves both sides. A mapping given without an IP is bound on 0.0.0.0 and on [::], as
// Docker does, the second only where the host has IPv6 (and skipped by the supervisor if binding
// it fails for want of IPv6); an explicit IP binds only that address.
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import * as E from 'fp-ts/lib/Either.js';
import { ExitCode, failure, type Failure } from '../failure.js';

export interface PortMapping {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp';
  /** the [::] twin of a mapping given without an IP: skipped, silently, where the host cannot bind IPv6 */
  readonly optional?: true;
}

const bad = (s: string, why: string): Failure => failure('InvalidPort', `-p ${s}: ${why}`, ExitCode.tool);
const port = (s: string): number | undefined => (/^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? Number(s) : undefined);

/** One `-p` decoded; hostIp '' when none was given, hostPort 0 when none was. */
const decodePublish = (s: string): E.Either<Failure, PortMapping> => {
  const slash = s.lastIndexOf('/');
  const spec = slash < 0 ? s : s.slice(0, slash);
  const proto = slash < 0 ? 'tcp' : s.slice(slash + 1).toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp') return E.left(bad(s, `protocol ${proto} is not supported (tcp or udp)`));
  let hostIp = '';
  let rest = spec;
  if (spec.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(.*)$/.exec(spec);
    if (!m) return E.left(bad(s, 'expected [IPv6]:HOST:CONTAINER'));
    hostIp = m[1] as string;
    rest = m[2] as string;
    if (!isIPv6(hostIp)) return E.left(bad(s, `invalid host IP ${JSON.stringify(hostIp)}`));
  }
  const fields = rest.split(':');
  let hostPort: string | undefined;
  let containerPort: string | undefined;
  if (fields.length === 3 && hostIp === '') [hostIp = '', hostPort, containerPort] = fields;
  else if (fields.length === 2) [hostPort, containerPort] = fields;
  else if (fields.length === 1) [hostPort, containerPort] = ['', fields[0]];
  else return E.left(bad(s, 'expected [IP:][HOST:]CONTAINER[/tcp|/udp] (an IPv6 address goes in brackets)'));
  // no host port (`-p 80`, `-p IP::80`): the kernel chooses one, as Docker's; 0 until bound
  const hp = hostPort === '' ? 0 : port(hostPort ?? '');
  const cp = port(containerPort ?? '');
  if (hp === undefined) return E.left(bad(s, `invalid host port ${JSON.stringify(hostPort)}`));
  if (cp === undefined) return E.left(bad(s, `invalid container port ${JSON.stringify(containerPort)}`));
  if (hostIp !== '' && !isIPv4(hostIp) && !isIPv6(hostIp)) return E.left(bad(s, `invalid host IP ${JSON.stringify(hostIp)}`));
  return E.right({ hostIp, hostPort: hp, containerPort: cp, protocol: proto });
};

/** One `-p` as asked (no IP given reads as 0.0.0.0). */
export const parsePublish = (s: string): E.Either<Failure, PortMapping> => E.map((m: PortMapping) => (m.hostIp === '' ? { ...m, hostIp: '0.0.0.0' } : m))(decodePublish(s));

/** What the host binds for one `-p`: its address, or with none given 0.0.0.0 and [::] (optional), as Docker. */
export const parseBindings = (s: string): E.Either<Failure, readonly PortMapping[]> =>
  E.map((m: PortMapping): readonly PortMapping[] => (m.hostIp !== '' ? [m] : [{ ...m, hostIp: '0.0.0.0' }, { ...m, hostIp: '::', optional: true }]))(decodePublish(s));

/** The supervisor's table holds this many bindings (supervisor.c, MAXPORTS). */
export const MAX_BINDINGS = 32;

/** Docker's test for an IPv6 host: can [::1] be listened on? Here: does the loopback have ::1. */
export const hostHasIpv6 = (): boolean => {
  try {
    return /^0{31}1 /m.test(readFileSync('/proc/net/if_inet6', 'latin1'));
  } catch {
    return false;
  }
};

/** The bindings to record and hand to the supervisor: the optional [::] twins only where the host has IPv6. */
export const hostBindings = (bs: readonly PortMapping[], ipv6: () => boolean = hostHasIpv6): readonly PortMapping[] =>
  bs.some((b) => b.optional) && !ipv6() ? bs.filter((b) => !b.optional) : bs;

/** The supervisor's argument for one mapping: [?]IP:HOST:CONTAINER/PROTO (it splits at the last colons; `?`: optional). */
export const formatMapping = (m: PortMapping): string => `${m.optional ? '?' : ''}${m.hostIp}:${m.hostPort}:${m.containerPort}/${m.protocol ?? 'tcp'}`;

/** As `docker ps` shows a mapping: 127.0.0.1:8080->80/tcp, [::1]:8080->80/tcp. */
export const describeMapping = (m: PortMapping): string => `${m.hostIp.includes(':') ? `[${m.hostIp}]` : m.hostIp}:${m.hostPort}->${m.containerPort}/${m.protocol ?? 'tcp'}`;

/** The supervisor's record of the host ports the kernel chose (`ports` in the container's dir: one a line, in binding order). */
export const PORTS_FILE = 'ports';

/**
 * The bindings as published: a host port 0 (`-p 80`) replaced by the one the supervisor got, read
 * from DIR/ports (0 while it is not yet known, or for a [::] twin skipped on a host without IPv6).
 */
export const publishedPorts = (dir: string, ports: readonly PortMapping[]): readonly PortMapping[] => {
  if (!ports.some((m) => m.hostPort === 0)) return ports;
  let got: number[] = [];
  try {
    got = readFileSync(`${dir}/${PORTS_FILE}`, 'latin1').split('\n').map(Number);
  } catch {
    return ports;
  }
  return ports.flatMap((m, i) => (m.hostPort !== 0 ? [m] : (got[i] ?? 0) > 0 ? [{ ...m, hostPort: got[i] as number }] : m.optional ? [] : [m]));
};

/** Docker's NetworkSettings.Ports: {"80/tcp": [{HostIp, HostPort}]}. Pure. */
export const dockerPorts = (ports: readonly PortMapping[]): Record<string, { HostIp: string; HostPort: string }[]> => {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const m of ports) (out[`${m.containerPort}/${m.protocol ?? 'tcp'}`] ??= []).push({ HostIp: m.hostIp, HostPort: String(m.hostPort) });
  return out;
};
