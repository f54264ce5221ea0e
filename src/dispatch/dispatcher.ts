// The dispatcher: takes due messages from the queue and hands them to connectors.
//
// Terminology:
//   queue    — there is no separate queue: the message row IS the job. A message is due when its
//              status is `scheduled` or `queued` and its `next_attempt_at` has come.
//   claim    — in one transaction, the worker picks due messages, re-checks suppression and
//              validity, picks a connector, and moves each to `sending` with attempts+1 and a
//              lease (lease_owner, lease_expires_at). That write IS the record of the attempt,
//              made before the connector sees the message.
//   lease    — while a message is `sending` under a live lease no other worker touches it. A
//              worker that dies leaves the lease to expire; the message is then "in doubt".
//   in doubt — we recorded the attempt but not its outcome: the carrier may or may not have it.
//              Resolved by asking the connector (lookup by our reference) where it can; otherwise
//              the message is tried again and counted as a possible duplicate. NEVER dropped.
//   outcome  — the connector's answer, recorded in a second transaction: `sent` with the
//              provider's id, or an error class whose policy (error-policy.ts) decides between
//              retry, failover, suppression and review.
import { sql } from 'kysely';
import type { Clock, Random } from '../clock.ts';
import { IdleWait } from '../clock.ts';
import type { Connector, OutboundMessage, SubmitResult } from '../connectors/connector.ts';
import type { ConnectorManager } from '../connectors/connector-manager.ts';
import type { ConsentService } from '../consent/consent-service.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { MessageRow } from '../messages/message-view.ts';
import { ConcurrentChangeError, type StatusMachine } from '../messages/status-machine.ts';
import type { ReviewService } from '../review/review-service.ts';
import { planRoute } from '../routing/mms-fallback.ts';
import type { Router } from '../routing/router.ts';
import type { Storage, Tx } from '../storage/database.ts';
import { POLICY, UNKNOWN_ERROR_MAX_ATTEMPTS, backoffMs } from './error-policy.ts';
import type { ReceiptService } from './receipt-service.ts';
import { SlotWakeups } from './slot-wakeups.ts';
import type { Throttle } from './throttle.ts';
import { transaction, TxBatcher } from '../storage/transactions.ts';

export interface DispatcherOptions {
  workerId: string;
  batchSize: number;
  maxInFlight: number;
  leaseMs: number;
  submitTimeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  pollMs: number;
  /** SWITCHBOARD_MAX_SEGMENTS: an MMS falling back to SMS with links must fit in it. */
  maxSegments: number;
}


export class Dispatcher {
  private running = false;
  private inFlight = new Set<Promise<void>>();
  /** Ids of the messages this worker holds leases on, renewed while their submit runs. */
  private leased = new Set<string>();
  /** Submits in flight per connector, held under each connector's capabilities.maxInFlight. */
  private connectorLoad = new Map<string, number>();
  private lastSweep = 0;
  private renewTimer: NodeJS.Timeout | null = null;
  private idle = new IdleWait();
  private loopDone: Promise<void> | null = null;
  private woken = false;
  /** Outcomes of submits that finish together are recorded in one transaction. */
  private outcomes: TxBatcher;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private random: Random,
    private statuses: StatusMachine,
    private router: Router,
    private connectors: ConnectorManager,
    private consent: ConsentService,
    private review: ReviewService,
    private receipts: ReceiptService,
    private metrics: Metrics,
    private throttle: Throttle,
    private opts: DispatcherOptions,
  ) {
    this.outcomes = new TxBatcher(storage.db);
  }

  /** Wake-ups at the throughput slots this worker reserved (slot-wakeups.ts). */
  private slots: SlotWakeups | null = null;

  /** A throttled message's slot comes before the next poll would: wake for it. */
  private wakeAt(at: number): void {
    if (this.running) (this.slots ??= new SlotWakeups(this.clock, () => this.wake())).add(at);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
    // Leases are short so that a dead worker's attempts are found in seconds; a live worker
    // renews its leases while the connector is still answering (a slow submit is not a crash).
    this.renewTimer = setInterval(() => void this.renewLeases().catch(() => this.metrics.dispatcherErrors.inc()), Math.max(1000, this.opts.leaseMs / 3));
    this.renewTimer.unref();
  }

  private async renewLeases(): Promise<void> {
    if (this.leased.size === 0) return;
    const ids = [...this.leased];
    for (let i = 0; i < ids.length; i += 500) {
      await this.storage.db
        .updateTable('messages')
        .set({ lease_expires_at: this.clock.now() + this.opts.leaseMs })
        .where('id', 'in', ids.slice(i, i + 500))
        .where('status', '=', 'sending')
        .where('lease_owner', '=', this.opts.workerId)
        .execute();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.slots?.clear();
    this.wake();
    await this.loopDone;
    await Promise.allSettled([...this.inFlight]);
  }

  /** The idle poll; longer while another process can wake this one (LISTEN/NOTIFY). */
  setPollMs(ms: number): void {
    this.opts.pollMs = ms;
  }

  /** New work exists (a message was accepted in this process): look now, not at the next poll. */
  wake(): void {
    this.woken = true;
    this.idle.wake();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let did = 0;
      try {
        did = await this.runOnce({ wait: false });
      } catch (err) {
        this.metrics.dispatcherErrors.inc();
        process.emitWarning(`dispatcher pass failed: ${(err as Error).message}`);
      }
      if (!this.running) break;
      if (did > 0 && this.inFlight.size < this.opts.maxInFlight) continue;
      if (this.woken) {
        this.woken = false;
        continue;
      }
      await this.idle.wait(this.opts.pollMs);
      this.woken = false;
    }
  }

  /**
   * One pass: expire what ran out of validity, resolve in-doubt attempts, claim and submit due
   * messages. With `wait`, returns only after every submit it started has its outcome recorded
   * (tests drive the platform this way with a manual clock).
   */
  async runOnce({ wait }: { wait: boolean } = { wait: true }): Promise<number> {
    // Expiry and in-doubt scans need no more than one pass a second; a busy loop claims many
    // times a second and should not pay for them each time. A driven pass (tests) always runs them.
    let did = 0;
    const now = this.clock.now();
    if (wait || now - this.lastSweep >= 1000 || now < this.lastSweep) {
      this.lastSweep = now;
      did += await this.expireDue();
      did += await this.resolveInDoubt();
    }
    const capacity = this.opts.maxInFlight - this.inFlight.size;
    if (capacity > 0) {
      const claimed = await this.claim(Math.min(capacity, this.opts.batchSize));
      did += claimed.length;
      for (const { row, connector } of claimed) {
        this.leased.add(row.id);
        this.track(
          this.submit(row, connector).finally(() => {
            this.leased.delete(row.id);
            this.connectorLoad.set(connector, (this.connectorLoad.get(connector) ?? 1) - 1);
          }),
        );
      }
    }
    if (wait) await Promise.allSettled([...this.inFlight]);
    return did;
  }

  private track(p: Promise<void>): void {
    const tracked = p
      .catch((err) => {
        this.metrics.dispatcherErrors.inc();
        process.emitWarning(`submit failed: ${(err as Error).message}`);
      })
      .finally(() => {
        this.inFlight.delete(tracked);
        if (this.running) this.wake();
      });
    this.inFlight.add(tracked);
  }

  private async claim(limit: number): Promise<Array<{ row: MessageRow; connector: string }>> {
    const now = this.clock.now();
    const out: Array<{ row: MessageRow; connector: string }> = [];
    await transaction(this.storage.db, async (tx) => {
      let q = tx
        .selectFrom('messages')
        .selectAll()
        // Literal statuses, not bound parameters: only then can the planner see that the query
        // implies the partial index's predicate and use messages_due instead of a table scan.
        .where(sql<boolean>`status in ('scheduled', 'queued')`)
        .where('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(limit);
      if (this.storage.dialect.supportsSkipLocked) q = q.forUpdate().skipLocked();
      const rows = await q.execute();
      if (rows.length === 0) return;
      // Opt-out wins races: a number suppressed after acceptance is never submitted.
      const suppressed = new Map<string, Set<string>>();
      for (const row of rows) {
        const k = `${row.account_id}\u0000${row.mode}`;
        if (!suppressed.has(k)) {
          const phones = rows.filter((r) => r.account_id === row.account_id && r.mode === row.mode).map((r) => r.to_addr);
          suppressed.set(k, await this.consent.suppressedAmong(tx, row.account_id, row.mode, phones));
        }
      }
      // Purpose- and channel-specific opt-outs, marketing consent and quiet hours, checked again.
      const verdicts = await this.consent.claimVerdicts(tx, rows, now);
      for (const selected of rows) {
        let row: MessageRow = selected;
        if (suppressed.get(`${row.account_id}\u0000${row.mode}`)!.has(row.to_addr) && !(await this.consent.isOptOutConfirmation(tx, row.id))) {
          await this.statuses.transition(tx, row, 'canceled', {
            at: now,
            data: { reason: 'suppressed_before_send' },
            patch: { next_attempt_at: null, error_class: 'OPTED_OUT', error_code: 'SUPPRESSED', error_message: 'The recipient opted out before the message was sent.' },
          });
          continue;
        }
        if (row.expires_at !== null && row.expires_at <= now) {
          await this.statuses.transition(tx, row, 'expired', { at: now, data: { reason: 'validity_period_passed' }, patch: { next_attempt_at: null } });
          continue;
        }
        const verdict = verdicts.get(row.id);
        if (verdict?.action === 'cancel') {
          await this.statuses.transition(tx, row, 'canceled', {
            at: now,
            data: { reason: verdict.reason },
            patch: { next_attempt_at: null, error_class: 'OPTED_OUT', error_code: 'CONSENT_WITHDRAWN', error_message: `The recipient withdrew consent before the message was sent (${verdict.reason}).` },
          });
          continue;
        }
        if (verdict?.action === 'hold') {
          const extended = row.expires_at === null ? null : Math.max(row.expires_at, verdict.until + (row.expires_at - now));
          await tx.updateTable('messages').set({ next_attempt_at: verdict.until, expires_at: extended, updated_at: now }).where('id', '=', row.id).execute();
          continue;
        }
        // The route table may have changed since acceptance: an MMS may need its fallback now.
        const plan = await planRoute(
          this.router,
          tx,
          { accountId: row.account_id, mode: row.mode, channel: row.channel, to: row.to_addr, purpose: row.purpose, from: row.from_addr },
          { body: row.body, mediaUrls: row.media_urls ? JSON.parse(row.media_urls) : [] },
          this.opts.maxSegments,
        );
        if (plan.kind === 'mms_not_supported') {
          await this.statuses.transition(tx, row, 'failed', {
            at: now,
            data: { reason: 'mms_not_supported', ...plan.details },
            patch: { next_attempt_at: null, error_class: 'FILTERED', error_code: 'MMS_NOT_SUPPORTED', error_message: plan.message },
          });
          continue;
        }
        const candidates = plan.connectors;
        const fallback = plan.kind === 'sms_fallback' ? plan : null;
        // Throttled in segments of the SMS it becomes; written with the attempt below.
        if (fallback) row = { ...row, ...fallback.patch };
        const usable = candidates.find((id) => this.connectors.circuitOpenUntil(id) === null);
        // The chosen connector's window is full: leave the message for a later pass, unchanged.
        // A busy connector is not a failed one: traffic does not spill to the fallback route.
        // Likewise when its session is another worker's (an SMPP bind leased elsewhere): the owner sends it.
        if (usable && (!this.connectors.usableHere(usable) || (this.connectorLoad.get(usable) ?? 0) >= this.connectors.capacity(usable))) continue;
        if (!usable) {
          if (candidates.length === 0) {
            // The route table changed since acceptance and nothing carries this message now.
            await this.statuses.transition(tx, row, 'failed', {
              at: now,
              data: { reason: 'no_route' },
              patch: { next_attempt_at: null, error_class: 'FILTERED', error_code: 'NO_ROUTE', error_message: 'No route carries this message.' },
            });
            continue;
          }
          // Every route is cooling down: wait for the first to half-open, without an attempt.
          const wakeAt = Math.min(...candidates.map((id) => this.connectors.circuitOpenUntil(id) ?? now));
          await tx.updateTable('messages').set({ next_attempt_at: wakeAt, updated_at: now }).where('id', '=', row.id).execute();
          continue;
        }
        // Throughput: take a slot on every limit (sender, connector, account) or wait for one.
        const alreadyReserved = row.reserved_slot != null && row.reserved_connector === usable && row.reserved_slot <= now;
        if (!alreadyReserved) {
          const limits = await this.throttle.limitsFor(tx, row, usable);
          if (limits.length) {
            const slot = await this.throttle.reserve(tx, limits, row.segments, now, this.storage.dialect.supportsSkipLocked);
            if (slot > now) {
              await tx.updateTable('messages').set({ next_attempt_at: slot, reserved_slot: slot, reserved_connector: usable }).where('id', '=', row.id).execute();
              this.wakeAt(slot);
              continue;
            }
          }
        }
        if (row.status === 'scheduled') {
          row = (await this.statuses.transition(tx, row, 'queued', { at: now, data: { reason: 'send_at_reached' } }))!;
        }
        const sending = await this.statuses.transition(tx, row, 'sending', {
          at: now,
          data: { attempt: row.attempts + 1, connector_id: usable, worker: this.opts.workerId, ...fallback?.event },
          patch: {
            ...fallback?.patch,
            attempts: row.attempts + 1,
            connector_id: usable,
            lease_owner: this.opts.workerId,
            lease_expires_at: now + this.opts.leaseMs,
            next_attempt_at: null,
            reserved_slot: null,
            reserved_connector: null,
          },
        });
        this.connectorLoad.set(usable, (this.connectorLoad.get(usable) ?? 0) + 1);
        out.push({ row: sending!, connector: usable });
      }
    });
    return out;
  }

  private toOutbound(row: MessageRow): OutboundMessage {
    return {
      reference: row.id,
      accountId: row.account_id,
      mode: row.mode,
      channel: row.channel as OutboundMessage['channel'],
      to: row.to_addr,
      from: row.from_addr,
      body: row.body,
      mediaUrls: row.media_urls ? JSON.parse(row.media_urls) : [],
      encoding: row.encoding as OutboundMessage['encoding'],
      segments: row.segments,
      expiresAt: row.expires_at,
      attempt: row.attempts,
    };
  }

  private async submit(row: MessageRow, connectorId: string): Promise<void> {
    const connector = await this.connectors.get(connectorId);
    let result: SubmitResult;
    const started = performance.now();
    if (!connector) {
      result = { ok: false, errorClass: 'AUTH_FAILED', code: 'CONNECTOR_UNAVAILABLE', message: `Connector ${connectorId} is disabled or unknown.` };
    } else {
      result = await this.submitWithTimeout(connector, this.toOutbound(row));
    }
    this.metrics.submitSeconds.observe({ connector: connectorId }, (performance.now() - started) / 1000);
    await this.recordOutcome(row.id, connectorId, result, {}, row);
  }

  private async submitWithTimeout(connector: Connector, m: OutboundMessage): Promise<SubmitResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<SubmitResult>((resolve) => {
      timer = setTimeout(
        () => resolve({ ok: false, errorClass: 'UNREACHABLE', code: 'SUBMIT_TIMEOUT', message: `The connector did not answer within ${this.opts.submitTimeoutMs} ms.` }),
        this.opts.submitTimeoutMs,
      );
    });
    try {
      return await Promise.race([
        connector.submit(m).catch((err): SubmitResult => ({ ok: false, errorClass: 'UNKNOWN_ERROR', code: 'CONNECTOR_ERROR', message: String(err?.message ?? err) })),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Records a connector's answer. Retries on a concurrent change (a receipt landing at once). */
  async recordOutcome(messageId: string, connectorId: string, result: SubmitResult, extra: Record<string, unknown>, known?: MessageRow): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        // The claimed row is current unless something moved it meanwhile (a receipt first):
        // the status-guarded update then throws, and the retry reads it afresh.
        const current = i === 0 ? known : undefined;
        await this.outcomes.run((tx) => this.applyOutcome(tx, messageId, connectorId, result, extra, current));
        break;
      } catch (err) {
        if (!(err instanceof ConcurrentChangeError) || i >= 3) throw err;
      }
    }
    if (result.ok) {
      this.connectors.closeCircuit(connectorId);
      // A receipt may have arrived before this outcome was recorded: apply it now.
      await this.receipts.applyPending(connectorId, result.providerMessageId);
    }
  }

  private async applyOutcome(tx: Tx, messageId: string, connectorId: string, result: SubmitResult, extra: Record<string, unknown>, known?: MessageRow): Promise<void> {
    const now = this.clock.now();
    const row = known ?? (await tx.selectFrom('messages').selectAll().where('id', '=', messageId).executeTakeFirstOrThrow());
    const released = { lease_owner: null, lease_expires_at: null };
    if (result.ok) {
      await this.statuses.transition(tx, row, 'sent', {
        at: now,
        data: { ...extra, provider_message_id: result.providerMessageId, connector_id: connectorId, raw: result.raw ?? null },
        patch: { ...released, provider_message_id: result.providerMessageId, connector_id: connectorId, error_class: null, error_code: null, error_message: null, provider_code: null },
      });
      return;
    }
    const error = { error_class: result.errorClass, error_code: result.code, error_message: result.message, provider_code: result.providerCode ?? null };
    const data = { ...extra, attempt: row.attempts, connector_id: connectorId, error: { class: result.errorClass, code: result.code, message: result.message, provider_code: result.providerCode ?? null }, raw: result.raw ?? null };
    const action = POLICY[result.errorClass];
    const retryAt = (delay: number) => this.retryOrExpire(tx, row, { ...released, ...error }, data, now, delay);

    switch (action) {
      case 'retry':
        return retryAt(Math.max(backoffMs(row.attempts, this.opts.retryBaseMs, this.opts.retryMaxMs, this.random), result.retryAfterMs ?? 0));
      case 'retry_bounded':
        if (row.attempts < UNKNOWN_ERROR_MAX_ATTEMPTS) return retryAt(backoffMs(row.attempts, this.opts.retryBaseMs, this.opts.retryMaxMs, this.random));
        if (await this.statuses.transition(tx, row, 'failed', { at: now, data, patch: { ...released, ...error } })) {
          await this.review.create(tx, { accountId: row.account_id, mode: row.mode, messageId: row.id, errorClass: result.errorClass, reason: `Failed ${row.attempts} times: ${result.message}` });
        }
        return;
      case 'failover':
        // The connector refused our credentials: open its circuit so routing skips it, and put the
        // message straight back so the next claim routes it elsewhere (or waits for this one).
        this.connectors.openCircuit(connectorId, result.message);
        return retryAt(0);
      case 'suppress':
        if (await this.statuses.transition(tx, row, 'failed', { at: now, data, patch: { ...released, ...error } })) {
          await this.receipts.suppressFor(tx, row, result.errorClass, { message_id: row.id, provider_code: result.providerCode ?? null, connector_id: connectorId });
        }
        return;
      case 'review':
        if (await this.statuses.transition(tx, row, 'failed', { at: now, data, patch: { ...released, ...error } })) {
          await this.review.create(tx, { accountId: row.account_id, mode: row.mode, messageId: row.id, errorClass: result.errorClass, reason: result.message });
        }
        return;
    }
  }

  private async retryOrExpire(tx: Tx, row: MessageRow, patch: Partial<MessageRow>, data: Record<string, unknown>, now: number, delayMs: number): Promise<void> {
    const next = now + delayMs;
    if (row.expires_at !== null && next >= row.expires_at) {
      await this.statuses.transition(tx, row, 'expired', { at: now, data: { ...data, reason: 'no_retry_within_validity' }, patch: { ...patch, next_attempt_at: null } });
      return;
    }
    await this.statuses.transition(tx, row, 'queued', { at: now, retry: true, notify: false, data: { ...data, retry_at: new Date(next).toISOString() }, patch: { ...patch, next_attempt_at: next } });
    this.wakeAt(next); // not left to the poll, which is long while LISTEN/NOTIFY is live
  }

  /** Messages whose validity ran out while waiting (or, once sent, while no receipt came). */
  private async expireDue(): Promise<number> {
    const now = this.clock.now();
    const due = await this.storage.db
      .selectFrom('messages')
      .select('id')
      .where(sql<boolean>`status in ('scheduled', 'queued', 'sent')`)
      .where('expires_at', '<=', now)
      .limit(500)
      .execute();
    if (due.length === 0) return 0;
    await transaction(this.storage.db, async (tx) => {
      const rows = await tx.selectFrom('messages').selectAll().where('id', 'in', due.map((d) => d.id)).execute();
      for (const row of rows) {
        const reason = row.status === 'sent' ? 'no_receipt_within_validity' : 'not_sent_within_validity';
        await this.statuses.transition(tx, row, 'expired', { at: now, data: { reason }, patch: { next_attempt_at: null } });
      }
    });
    return due.length;
  }

  /** Attempts whose worker died between recording the attempt and recording its outcome. */
  private async resolveInDoubt(): Promise<number> {
    const now = this.clock.now();
    const stale = await this.storage.db
      .selectFrom('messages')
      .selectAll()
      .where(sql<boolean>`status = 'sending'`)
      .where('lease_expires_at', '<', now)
      .limit(100)
      .execute();
    let n = 0;
    for (const row of stale) {
      // Take the lease over, guarded on the expired one, so only one worker resolves it.
      const took = await this.storage.db
        .updateTable('messages')
        .set({ lease_owner: this.opts.workerId, lease_expires_at: now + this.opts.leaseMs })
        .where('id', '=', row.id)
        .where('status', '=', 'sending')
        .where('lease_expires_at', '=', row.lease_expires_at)
        .executeTakeFirst();
      if (Number(took.numUpdatedRows) !== 1) continue;
      n++;
      const connector = row.connector_id ? await this.connectors.get(row.connector_id) : null;
      if (connector?.capabilities.lookup && connector.lookup) {
        const found = await connector.lookup(row.id);
        if (found?.ok) {
          this.metrics.inDoubt.inc({ resolution: 'found_at_carrier' });
          await this.recordOutcome(row.id, connector.id, found, { in_doubt: true, resolution: 'found_at_carrier' });
          continue;
        }
        this.metrics.inDoubt.inc({ resolution: 'not_at_carrier' });
      } else {
        // The carrier cannot tell us: trying again may send it twice. Count it, never drop it.
        this.metrics.inDoubt.inc({ resolution: 'resubmitted_possible_duplicate' });
        this.metrics.possibleDuplicates.inc();
      }
      await transaction(this.storage.db, async (tx) => {
        const fresh = await tx.selectFrom('messages').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
        await this.statuses.transition(tx, fresh, 'queued', {
          at: now,
          retry: true,
          notify: false,
          data: { in_doubt: true, resolution: connector?.capabilities.lookup ? 'not_at_carrier' : 'resubmit_possible_duplicate' },
          patch: { lease_owner: null, lease_expires_at: null, next_attempt_at: now },
        });
      });
    }
    return n;
  }
}
