// What the platform does with each error class after acceptance (CONTRACT §5). The dispatcher
// asks this table; it never decides by a provider's raw code.
import type { Random } from '../clock.ts';
import type { ErrorClass } from '../errors.ts';

export type Action =
  /** Try again later, within the validity period. */
  | 'retry'
  /** Try again at most `maxAttempts` in all; then fail and open a review item. */
  | 'retry_bounded'
  /** Mark the connector unhealthy and let routing pick another one (or wait for it). */
  | 'failover'
  /** No retry; the number is suppressed for the account on every channel. */
  | 'suppress'
  /** No retry; a person should look: open a review item. */
  | 'review';

export const POLICY: Record<ErrorClass, Action> = {
  RATE_LIMITED: 'retry',
  UNREACHABLE: 'retry',
  UNKNOWN_ERROR: 'retry_bounded',
  AUTH_FAILED: 'failover',
  INVALID_NUMBER: 'suppress',
  OPTED_OUT: 'suppress',
  FILTERED: 'review',
};

/** UNKNOWN_ERROR: the first attempt and at most two retries. */
export const UNKNOWN_ERROR_MAX_ATTEMPTS = 3;

/**
 * Exponential backoff with jitter: the n-th retry waits between half and all of
 * base·2^(n-1), capped. Half-jitter keeps retries spread out without ever retrying at once.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: Random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
