// The campaign runner: the worker that moves campaigns forward, one bounded step per campaign per
// round, so a huge campaign never starves another account's (see campaign-service.ts for the words).
//
// A step of a running campaign is one of: expand the next chunk of its list or segment; release
// the next chunk of pending recipients (rendered, checked and accepted by MessageService exactly as
// API messages are, committed together); or, when nothing is pending or waiting to go out, mark it
// completed and announce `campaign.completed` in the same transaction.
//
// Pacing: a campaign with rate_per_minute releases at most that many messages per minute, counted
// from `pace_base_at` (reset on resume), so its messages enter the queue at the rate instead of
// as one burst. Without a rate it still releases in chunks and keeps at most WINDOW messages of
// its own waiting in the queue: a pause then holds little, a cancel cancels little, and other
// accounts' messages are never stuck behind 100,000 of one campaign.
//
// Send window: a recipient whose local time is outside it is not released; its `release_at` moves
// to the window's next opening. Every timer here is a row (release_at, start_at), never a timeout.
import type { Logger } from 'pino';
import type { AudienceService } from '../audiences/audience-service.ts';
import type { Clock } from '../clock.ts';
import { IdleWait } from '../clock.ts';
import { isValidTimeZone, nextAllowed, zoneForNumber } from '../consent/time-zones.ts';
import { AppError } from '../errors.ts';
import { appendOutbox } from '../events/outbox.ts';
import type { MessageService, PreparedMessage } from '../messages/message-service.ts';
import type { Storage } from '../storage/database.ts';
import { compile, render } from '../templates/template-render.ts';
import { contactVariables } from '../templates/template-service.ts';
import type { LinkService } from './campaign-links.ts';
import { ACTIVE_STATUSES, campaignPrincipal, pendingRecipient, type CampaignRow, type CampaignService } from './campaign-service.ts';

/** Refusals that mean "this person must not get it": counted as suppressed, never as failures. */
const SUPPRESSING = new Set(['OPTED_OUT', 'CONSENT_REQUIRED', 'INVALID_NUMBER', 'FILTERED']);

const YIELD_EVERY = 50;

export interface RunnerOptions {
  pollMs: number;
  /** Recipients released per step. */
  chunk: number;
  /** At most this many of one campaign's messages wait in the queue (queued or sending). */
  window: number;
  /** Contacts expanded per step. */
  expandChunk: number;
}

export class CampaignRunner {
  private running = false;
  private loopDone: Promise<void> | null = null;
  private idle = new IdleWait();
  private completedListeners: Array<() => void> = [];

  constructor(
    private storage: Storage,
    private clock: Clock,
    private campaigns: CampaignService,
    private audiences: AudienceService,
    private messages: MessageService,
    private links: LinkService,
    private log: Logger,
    private opts: RunnerOptions,
  ) {}

  onCompleted(fn: () => void): void {
    this.completedListeners.push(fn);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
  }

  wake(): void {
    this.idle.wake();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let n = 0;
      try {
        n = await this.runOnce();
      } catch (err) {
        this.log.error({ err }, 'campaign runner round failed');
      }
      if (n > 0 || !this.running) continue;
      await this.idle.wait(this.opts.pollMs);
    }
  }

  /** One step of every active campaign; returns how much work was done (0: nothing due). */
  async runOnce(): Promise<number> {
    const active = await this.storage.db.selectFrom('campaigns').selectAll().where('status', 'in', ACTIVE_STATUSES).orderBy('id').execute();
    let n = 0;
    for (const c of active) {
      try {
        n += await this.step(c);
      } catch (err) {
        this.log.error({ err, campaign_id: c.id }, 'campaign step failed');
      }
    }
    return n;
  }

  private async step(c: CampaignRow): Promise<number> {
    const now = this.clock.now();
    // A message that was being submitted when the campaign paused may come back for a retry:
    // hold it too.
    if (c.status === 'paused') return this.campaigns.holdMessages(c.id);
    if (c.status === 'scheduled') {
      if (c.start_at !== null && c.start_at > now) return 0;
      const res = await this.storage.db
        .updateTable('campaigns')
        .set({ status: 'running', started_at: c.started_at ?? now, pace_base_at: now, pace_base_count: c.released, updated_at: now })
        .where('id', '=', c.id)
        .where('status', '=', 'scheduled')
        .executeTakeFirst();
      return Number(res.numUpdatedRows);
    }
    if (!c.expanded) return this.expand(c, now);
    const released = await this.release(c, now);
    if (released > 0) return released;
    return this.completeIfDone(c, now);
  }

  /** The next chunk of a list or segment becomes recipient rows (a snapshot taken as it goes). */
  private async expand(c: CampaignRow, now: number): Promise<number> {
    const audience = JSON.parse(c.audience) as { list_id: string } | { segment_id: string };
    const { contacts, next } = await this.audiences.page(campaignPrincipal(c), audience, c.expand_cursor, this.opts.expandChunk);
    const rows = contacts.map((contact, i) => pendingRecipient(c.id, c.total + i, contact.phone, contact.id, contactVariables(contact), now));
    await this.storage.db.transaction().execute(async (tx) => {
      // Guarded on the count read: a second runner doing the same chunk changes nothing.
      const res = await tx
        .updateTable('campaigns')
        .set({ total: c.total + rows.length, expand_cursor: next, expanded: next === null ? 1 : 0 })
        .where('id', '=', c.id)
        .where('total', '=', c.total)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return;
      for (let i = 0; i < rows.length; i += 250) await tx.insertInto('campaign_recipients').values(rows.slice(i, i + 250)).execute();
    });
    return Math.max(1, rows.length);
  }

  /**
   * The campaign's messages still waiting or being submitted. Counted among the recently
   * released recipients only (the last few windows' worth, by seq): counting over every released
   * recipient made each step cost O(released), and a 100,000-recipient campaign slowed to a
   * crawl. A straggler released long ago (a retry waiting out a backoff) is not counted, so the
   * queue can hold a little more than the window; the window is a bound on memory and fairness,
   * not a contract.
   */
  private async inFlight(campaignId: string, statuses: string[], released: number): Promise<number> {
    const r = await this.storage.db
      .selectFrom('campaign_recipients')
      .innerJoin('messages', 'messages.id', 'campaign_recipients.message_id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('campaign_recipients.campaign_id', '=', campaignId)
      .where('campaign_recipients.seq', '>=', Math.max(0, released - 4 * this.opts.window))
      .where('campaign_recipients.status', '=', 'queued')
      .where('messages.status', 'in', statuses)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  private budget(c: CampaignRow, now: number, inFlight: number): number {
    let budget = Math.min(this.opts.chunk, this.opts.window - inFlight);
    if (c.rate_per_minute !== null) {
      const base = c.pace_base_at ?? now;
      // One message at once, then rate/min: the n-th message goes no earlier than (n-1)/rate.
      const allowed = c.pace_base_count + Math.floor(((now - base) * c.rate_per_minute) / 60_000) + 1 - c.released;
      budget = Math.min(budget, allowed);
    }
    return budget;
  }

  private async release(c: CampaignRow, now: number): Promise<number> {
    const db = this.storage.db;
    const budget = this.budget(c, now, await this.inFlight(c.id, ['queued', 'sending'], c.released));
    if (budget <= 0) return 0;
    const pending = await db
      .selectFrom('campaign_recipients')
      .selectAll()
      .where('campaign_id', '=', c.id)
      .where('status', '=', 'pending')
      .where('release_at', '<=', now)
      // The index's order: earliest due first, then campaign order; no sort of the whole audience.
      .orderBy('release_at')
      .orderBy('seq')
      .limit(budget)
      .execute();
    if (pending.length === 0) return 0;

    const principal = campaignPrincipal(c);
    const text = compile(c.body);
    const links = await this.links.ofCampaign(c.id);
    const window = c.send_window ? (JSON.parse(c.send_window) as { start: string; end: string }) : null;
    const outcome = new Map<number, { status: string; message_id?: string; code?: string; message?: string; release_at?: number }>();
    const prepared: Array<{ seq: number; item: PreparedMessage }> = [];
    for (const [i, r] of pending.entries()) {
      // SQLite answers synchronously, so a chunk would otherwise run as one long chain of
      // microtasks: let requests and timers in between, so other accounts never wait on it.
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
      const values = JSON.parse(r.variables) as Record<string, unknown>;
      if (window) {
        const tz = typeof values.time_zone === 'string' && isValidTimeZone(values.time_zone) ? values.time_zone : zoneForNumber(r.phone);
        const opens = nextAllowed(now, tz, window.start, window.end);
        if (opens > now) {
          outcome.set(r.seq, { status: 'pending', release_at: opens });
          continue;
        }
      }
      try {
        const body = this.links.shorten(render(text, values), links, r.seq);
        const metadata: Record<string, string> = { campaign_id: c.id, campaign_seq: String(r.seq) };
        if (c.template_id) Object.assign(metadata, { template_id: c.template_id, template_version: String(c.template_version) });
        const input = { to: r.phone, body, channel: c.channel, purpose: c.purpose, from: c.from_addr ?? undefined, validity_period: c.validity_s, metadata };
        prepared.push({ seq: r.seq, item: await this.messages.prepare(principal, input, `campaign:${c.id}:${r.seq}`) });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        outcome.set(r.seq, { status: SUPPRESSING.has(err.code) ? 'suppressed' : 'failed', code: err.code, message: err.message });
      }
    }
    if (prepared.length) {
      const results = await this.messages.commit(prepared.map((p) => p.item));
      results.forEach((res, i) => {
        const seq = prepared[i].seq;
        outcome.set(seq, res.ok ? { status: 'queued', message_id: res.message.id } : { status: 'failed', code: res.error.code, message: res.error.message });
      });
    }
    let queued = 0;
    await db.transaction().execute(async (tx) => {
      for (const [seq, o] of outcome) {
        if (o.status === 'queued') queued++;
        await tx
          .updateTable('campaign_recipients')
          .set(o.status === 'pending' ? { release_at: o.release_at!, updated_at: now } : { status: o.status, message_id: o.message_id ?? null, error_code: o.code ?? null, error_message: o.message ?? null, updated_at: now })
          .where('campaign_id', '=', c.id)
          .where('seq', '=', seq)
          .where('status', '=', 'pending')
          .execute();
      }
      if (queued) await tx.updateTable('campaigns').set((eb) => ({ released: eb('released', '+', queued) })).where('id', '=', c.id).execute();
    });
    // A pause or cancel that landed while this chunk was being accepted applies to it too.
    const now2 = await db.selectFrom('campaigns').select('status').where('id', '=', c.id).executeTakeFirst();
    if (now2?.status === 'paused') await this.campaigns.holdMessages(c.id);
    if (now2?.status === 'canceled') await this.campaigns.cancelRemaining(c.id);
    return pending.length;
  }

  private async completeIfDone(c: CampaignRow, now: number): Promise<number> {
    const db = this.storage.db;
    const pending = await db.selectFrom('campaign_recipients').select('seq').where('campaign_id', '=', c.id).where('status', '=', 'pending').limit(1).executeTakeFirst();
    if (pending) return 0;
    // Every one of them, not only the recent: the campaign completes only when none is left.
    if ((await this.inFlight(c.id, ['scheduled', 'queued', 'sending'], 0)) > 0) return 0;
    const done: CampaignRow = { ...c, status: 'completed', completed_at: now, updated_at: now };
    const view = await this.campaigns.view(done);
    const completed = await db.transaction().execute(async (tx) => {
      const res = await tx.updateTable('campaigns').set({ status: 'completed', completed_at: now, updated_at: now }).where('id', '=', c.id).where('status', '=', 'running').executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      await appendOutbox(tx, [{ accountId: c.account_id, mode: c.mode, type: 'campaign.completed', messageId: null, data: view, at: now }]);
      return true;
    });
    if (!completed) return 0;
    this.log.info({ campaign_id: c.id, stats: view.stats }, 'campaign completed');
    for (const fn of this.completedListeners) fn();
    return 1;
  }
}
