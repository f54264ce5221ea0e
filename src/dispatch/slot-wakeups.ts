// Wake-ups at reserved throughput slots (and at retry times). A throttled message waits in the queue until the slot
// the throttle reserved for it; the worker that reserved it must look again at THAT time, and at
// every later reserved slot too, not only the earliest: otherwise the second message's slot is
// found by the next poll, late, and a run of passed slots goes out together as a burst. Polling
// is long while LISTEN/NOTIFY is live (PostgreSQL), so this cannot be left to it.
//
// Bounded: at most MAX_PENDING future times are kept (the earliest ones); slots past that are
// reached by the timers of the earlier ones being re-armed as the backlog drains, or by the poll.
import type { Clock } from '../clock.ts';

const MAX_PENDING = 10_000;

export class SlotWakeups {
  private times: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  constructor(
    private clock: Clock,
    private wake: () => void,
  ) {}

  add(at: number): void {
    // Binary search for the insertion point; equal times are kept once.
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.times[mid] < at) lo = mid + 1;
      else hi = mid;
    }
    if (this.times[lo] === at) return;
    if (lo >= MAX_PENDING) return;
    this.times.splice(lo, 0, at);
    if (this.times.length > MAX_PENDING) this.times.length = MAX_PENDING;
    this.arm();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
    this.times = [];
  }

  private arm(): void {
    const next = this.times[0];
    if (next === undefined || next >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      const now = this.clock.now();
      let i = 0;
      while (i < this.times.length && this.times[i] <= now) i++;
      this.times.splice(0, i);
      this.wake();
      this.arm();
    }, Math.max(0, next - this.clock.now()));
    this.timer.unref();
  }
}
