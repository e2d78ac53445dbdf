// Health: the image's HEALTHCHECK merged with --health-* flags into the check the supervisor runs
// (`RUNTIME exec ID ARGV…` every interval; Docker's defaults: 30s interval, 30s timeout, 3 retries).
import type { HealthConfig } from '../oci/config.js';
import type { HealthOverride } from './options.js';

export interface HealthCheck {
  /** the argv run inside the container */
  readonly argv: readonly string[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly startPeriodMs: number;
}

const NS_PER_MS = 1_000_000;

/** The check to run, or undefined for none (no HEALTHCHECK, NONE, or --no-healthcheck). */
export const healthOf = (image: HealthConfig | undefined, o: HealthOverride): HealthCheck | undefined => {
  if (o.disabled) return undefined;
  const test = o.cmd !== undefined ? ['CMD-SHELL', o.cmd] : (image?.Test ?? []);
  const [kind, ...rest] = test;
  let argv: readonly string[];
  if (kind === 'CMD-SHELL') argv = ['/bin/sh', '-c', rest.join(' ')];
  else if (kind === 'CMD') argv = rest;
  else return undefined;
  if (argv.length === 0) return undefined;
  const ms = (ns: number | undefined, dflt: number) => (ns !== undefined && ns > 0 ? Math.round(ns / NS_PER_MS) : dflt);
  return {
    argv,
    intervalMs: o.interval ?? ms(image?.Interval, 30_000),
    timeoutMs: o.timeout ?? ms(image?.Timeout, 30_000),
    retries: o.retries ?? (image?.Retries !== undefined && image.Retries > 0 ? image.Retries : 3),
    startPeriodMs: o.startPeriod ?? ms(image?.StartPeriod, 0),
  };
};
