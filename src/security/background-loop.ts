// The shape of a background worker (INVARIANTS "Time"): its state is in rows, and a loop calls
// `step()` until it reports no work, then idles for `pollMs` (a number, or asked for each time:
// a worker whose next timer is a row sleeps until it) or until woken. `runDue()` in tests
// calls `step()` directly, so nothing here holds state that a restart would lose.
import type { Logger } from 'pino';
import { IdleWait } from '../clock.ts';

export class BackgroundLoop {
  private running = false;
  private done: Promise<void> | null = null;
  private idle = new IdleWait();

  constructor(
    private name: string,
    private step: () => Promise<number>,
    private log: Logger,
    private pollMs: number | (() => Promise<number>),
    /** Pause between two steps that did work, so a long job leaves room for live traffic. */
    private pauseMs = 0,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.idle.wake();
    await this.done;
  }

  wake(): void {
    this.idle.wake();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let n = 0;
      try {
        n = await this.step();
      } catch (err) {
        this.log.error({ err }, `${this.name} failed; trying again`);
      }
      if (!this.running) break;
      let ms = this.pauseMs;
      if (n === 0) {
        try {
          ms = typeof this.pollMs === 'number' ? this.pollMs : await this.pollMs();
        } catch (err) {
          this.log.error({ err }, `${this.name}: could not read when to run next`);
          ms = 1000;
        }
      }
      if (ms > 0) await this.idle.wait(ms);
    }
  }
}
