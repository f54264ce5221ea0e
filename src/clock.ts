// Time and randomness come in through these interfaces so that tests can move the clock
// (scheduled sends, retries, validity, receipts) instead of sleeping.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when a test tells it to. */
export class ManualClock implements Clock {
  constructor(private t: number = Date.parse('2026-01-05T15:00:00Z')) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}

/** Returns a float in [0, 1). Injected so backoff jitter is reproducible in tests. */
export type Random = () => number;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The idle step of a worker loop: waits `ms`, or less when `wake()` is called meanwhile. */
export class IdleWait {
  private end: (() => void) | null = null;

  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => this.finish(), ms);
      this.end = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  wake(): void {
    this.finish();
  }

  private finish(): void {
    const end = this.end;
    this.end = null;
    end?.();
  }
}
