// The retry schedule of webhook deliveries (CONTRACT §7): 5 s, 30 s, 2 min, 10 min, 30 min, 1 h,
// then every 2 h until 24 h have passed since the delivery's schedule started. The last delay
// repeats. Every delay gets ±10 % jitter so that a receiver coming back is not hit by every
// delivery that failed in the same second at once.
import type { Random } from '../clock.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

export interface RetrySchedule {
  delaysMs: number[];
  /** After this long since the schedule started, a failing delivery is given up (failed). */
  windowMs: number;
}

export function parseSchedule(delays: string, window: string): RetrySchedule {
  const delaysMs = delays.split(',').map(parseDuration);
  if (delaysMs.length === 0) throw new Error('the webhook schedule needs at least one delay');
  return { delaysMs, windowMs: parseDuration(window) };
}

/**
 * When to try again after `attempts` failed attempts, or null when the window is used up and
 * the delivery must be marked failed.
 */
export function nextAttemptAt(s: RetrySchedule, attempts: number, startedAt: number, now: number, random: Random): number | null {
  const base = s.delaysMs[Math.min(attempts - 1, s.delaysMs.length - 1)];
  const delay = Math.round(base * (0.9 + 0.2 * random()));
  const at = now + delay;
  return at - startedAt > s.windowMs ? null : at;
}
