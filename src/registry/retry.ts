// Retry: when and how long to wait before trying a registry request again. Pure.
// Network faults, truncated bodies, 408, 429 and 5xx are retried with exponential backoff and
// jitter; a Retry-After header (seconds or an HTTP date) is honoured up to a cap.
export interface RetryPolicy {
  /** attempts in all, the first included */
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
  /** the longest Retry-After honoured */
  readonly maxRetryAfterMs: number;
}

export const defaultRetryPolicy = (env: NodeJS.ProcessEnv = process.env): RetryPolicy => ({
  attempts: Math.max(1, Number(env.TSD_RETRIES ?? 5)),
  baseMs: Number(env.TSD_RETRY_BASE_MS ?? 200),
  maxMs: 10_000,
  maxRetryAfterMs: 30_000,
});

export const isRetryableStatus = (status: number): boolean => status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);

/** Milliseconds a Retry-After value asks for, or undefined when absent or unreadable. */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
};

/** The wait before attempt `attempt` (1 = the first retry). `random` is in [0, 1). */
export const retryDelay = (policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined, random: number): number => {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return Math.round(exp * (0.5 + random / 2));
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
