// The carrier simulator (CONTRACT §6): behaves like a carrier, with no network. It accepts or
// refuses a submit by the recipient's number, then sends delivery receipts (and, for some
// numbers, a handset reply) after a delay. Its pending receipts are rows with a due time, not
// timers, so a restart in the middle loses none of them, and a test can move the clock.
import type { ErrorClass } from '../../errors.ts';
import { newId } from '../../ids.ts';
import { sleep } from '../../clock.ts';
import { transaction, TxBatcher } from '../../storage/transactions.ts';
import type { Connector, ConnectorDeps, ConnectorRow, ConnectorState, OutboundMessage, Receipt, SubmitResult } from '../connector.ts';
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import { isVoiceChannel, spokenSeconds, type VoiceResult } from '../../voice/voice-outcome.ts';

/** `+1 NXX 555 01YY`: the fictional North American range; YY picks the behaviour. */
const FICTIONAL = /^\+1\d{3}55501(\d{2})$/;

export function simulatorBehaviour(to: string): number | null {
  const m = FICTIONAL.exec(to);
  return m ? Number(m[1]) : null;
}

const REPLIES: Record<number, string> = { 16: 'STOP', 17: 'C' };
const REPLY_AFTER_RECEIPT_MS = 100;
/** How long a pass holds the receipts and replies it took (see takeDue). */
const DUE_LEASE_MS = 30_000;

/**
 * A voice call's or voicemail drop's outcome, as a carrier's call records would say it:
 * delivered is answered by a person (voice) or a voicemail dropped (rvm), except voice number
 * 08, whose call goes to an answering machine and leaves the message after the beep; 10 rings
 * out unanswered; voice number 20 is busy; a filtered call (11) failed. The duration is the
 * time the text takes to say (about 150 words a minute, 20 s for an audio file), plus 2 s of
 * hello for a person or 12 s of greeting before the beep for a machine.
 */
function withVoiceOutcome(receipt: Receipt, m: OutboundMessage, yy: number | null): Receipt {
  const spoken = m.body ? spokenSeconds(m.body) : 20;
  let voice: VoiceResult;
  let callStatus: string;
  if (receipt.status === 'delivered') {
    if (m.channel === 'rvm') voice = { outcome: 'machine', durationS: spoken, answeredBy: 'machine' };
    else if (yy === 8) voice = { outcome: 'machine', durationS: spoken + 12, answeredBy: 'machine' };
    else voice = { outcome: 'answered', durationS: spoken + 2, answeredBy: 'human' };
    callStatus = 'completed';
  } else if (yy === 10) {
    voice = { outcome: 'no_answer', durationS: 0, answeredBy: null };
    callStatus = 'no-answer';
  } else if (yy === 20) {
    voice = { outcome: 'busy', durationS: 0, answeredBy: null };
    callStatus = 'busy';
  } else {
    voice = { outcome: 'failed', durationS: 0, answeredBy: null };
    callStatus = 'failed';
  }
  const raw = { ...(receipt.raw as object), call_status: callStatus, answered_by: voice.answeredBy ?? null, duration: voice.durationS, ...(m.channel === 'rvm' && voice.outcome === 'machine' ? { voicemail_dropped: true } : {}) };
  return { ...receipt, voice, raw };
}

export interface SimulatorConfig {
  reject_credentials?: boolean;
  latency_ms?: number;
  receipt_delay_ms?: number;
  slow_submit_ms?: number;
}

export class SimulatorConnector implements Connector {
  readonly type = 'simulator';
  readonly capabilities = { channels: [...CONNECTOR_CHANNELS.simulator], lookup: true, maxInFlight: 1000 };
  readonly id: string;
  private config: SimulatorConfig;
  private inFlight = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private draining: Promise<number> | null = null;
  /** Like a carrier's own database: submits that arrive together are written together. */
  private writes: TxBatcher;

  constructor(
    row: ConnectorRow,
    private deps: ConnectorDeps,
  ) {
    this.id = row.id;
    this.config = row.config as SimulatorConfig;
    this.writes = new TxBatcher(deps.storage.db);
  }

  private get receiptDelay() {
    return this.config.receipt_delay_ms ?? this.deps.simulator.receiptDelayMs;
  }

  async start(): Promise<void> {
    this.running = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.draining;
  }

  private schedule(ms: number) {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.runDue()
        .catch((err) => {
          this.lastError = String(err?.message ?? err);
        })
        .finally(() => this.schedule(this.deps.simulator.pollMs));
    }, ms);
    this.timer.unref();
  }

  state(): ConnectorState {
    return { status: this.running ? 'up' : 'stopped', in_flight: this.inFlight, last_error: this.lastError };
  }

  async submit(m: OutboundMessage): Promise<SubmitResult> {
    this.inFlight++;
    try {
      return await this.doSubmit(m);
    } finally {
      this.inFlight--;
    }
  }

  private async doSubmit(m: OutboundMessage): Promise<SubmitResult> {
    if (this.config.latency_ms) await sleep(this.config.latency_ms);
    if (this.config.reject_credentials) {
      this.lastError = 'credentials refused';
      return { ok: false, errorClass: 'AUTH_FAILED', code: 'AUTH_FAILED', message: 'The simulator refused the connector credentials.', providerCode: 'SIM-AUTH' };
    }
    const now = this.deps.clock.now();
    const row = await this.writes.run(async (tx) => {
      await tx
        .insertInto('simulator_messages')
        .values({ connector_id: this.id, reference: m.reference, provider_id: null, to_addr: m.to, from_addr: m.from, channel: m.channel, submits: 1, created_at: now, receipt_due_at: null, receipt: null, reply_due_at: null, reply_body: null })
        .onConflict((oc) => oc.columns(['connector_id', 'reference']).doUpdateSet((eb) => ({ submits: eb('simulator_messages.submits', '+', 1) })))
        .execute();
      return tx.selectFrom('simulator_messages').selectAll().where('connector_id', '=', this.id).where('reference', '=', m.reference).executeTakeFirstOrThrow();
    });
    if (row.provider_id) {
      // A resubmit of a message the carrier already holds (an in-doubt retry): a real carrier
      // would take it twice; the simulator answers with the first acceptance so tests can count.
      return { ok: true, providerMessageId: row.provider_id, raw: { duplicate_submit: true, submits: row.submits } };
    }
    const yy = simulatorBehaviour(m.to);
    const refuse = (errorClass: ErrorClass, message: string): SubmitResult => ({
      ok: false,
      errorClass,
      code: errorClass,
      message,
      providerCode: `SIM-${yy}`,
      raw: { simulator: yy, submits: row.submits },
    });
    if (yy === 12 && row.submits <= 2) return refuse('RATE_LIMITED', 'Throttled by the carrier (simulator 12).');
    if (yy === 13) return refuse('UNKNOWN_ERROR', 'The carrier returned a non-specific failure (simulator 13).');
    if (yy === 14) return refuse('OPTED_OUT', 'The recipient has opted out at the carrier (simulator 14).');
    if (yy === 15) return refuse('INVALID_NUMBER', 'The number is not in service (simulator 15).');
    if (yy === 19) await sleep(this.config.slow_submit_ms ?? this.deps.simulator.slowSubmitMs);

    const providerId = newId('sim', now);
    const acceptedAt = this.deps.clock.now();
    let receipt: Receipt | null = { providerMessageId: providerId, status: 'delivered', raw: { stat: 'DELIVRD', simulator: yy } };
    if (yy === 10) receipt = { providerMessageId: providerId, status: 'undelivered', errorClass: 'UNREACHABLE', code: 'UNREACHABLE', message: 'Handset off or out of coverage (simulator 10).', providerCode: 'SIM-10', raw: { stat: 'UNDELIV', err: '001', simulator: 10 } };
    if (yy === 11) receipt = { providerMessageId: providerId, status: 'undelivered', errorClass: 'FILTERED', code: 'FILTERED', message: 'Blocked by the carrier filter (simulator 11).', providerCode: 'SIM-11', raw: { stat: 'REJECTD', err: '011', simulator: 11 } };
    if (yy === 20 && m.channel === 'voice') {
      receipt = { providerMessageId: providerId, status: 'undelivered', errorClass: 'UNREACHABLE', code: 'UNREACHABLE', message: 'The line was busy (simulator 20).', providerCode: 'SIM-20', raw: { simulator: 20 } };
    }
    if (yy === 18) receipt = null;
    if (receipt && isVoiceChannel(m.channel)) receipt = withVoiceOutcome(receipt, m, yy);
    const receiptDue = receipt ? acceptedAt + this.receiptDelay : null;
    await this.writes.run(async (tx) => {
      let reply = yy !== null ? REPLIES[yy] : undefined;
      // A handset answers once: it does not text STOP again to the confirmation of its STOP.
      if (reply) {
        const answered = await tx
          .selectFrom('simulator_messages')
          .select('reference')
          .where('connector_id', '=', this.id)
          .where('to_addr', '=', m.to)
          .where('from_addr', m.from === null ? 'is' : '=', m.from)
          .where('reply_body', 'is not', null)
          .executeTakeFirst();
        if (answered) reply = undefined;
      }
      await tx
        .updateTable('simulator_messages')
        .set({
          provider_id: providerId,
          receipt_due_at: receiptDue,
          receipt: receipt ? JSON.stringify(receipt) : null,
          reply_due_at: reply && receiptDue !== null ? receiptDue + REPLY_AFTER_RECEIPT_MS : null,
          reply_body: reply ?? null,
        })
        .where('connector_id', '=', this.id)
        .where('reference', '=', m.reference)
        .execute();
    });
    if (receiptDue !== null) this.schedule(Math.max(0, receiptDue - this.deps.clock.now()));
    return { ok: true, providerMessageId: providerId, raw: { simulator: yy, accepted: true } };
  }

  async lookup(reference: string): Promise<SubmitResult | null> {
    const row = await this.deps.storage.db
      .selectFrom('simulator_messages')
      .select('provider_id')
      .where('connector_id', '=', this.id)
      .where('reference', '=', reference)
      .executeTakeFirst();
    return row?.provider_id ? { ok: true, providerMessageId: row.provider_id, raw: { lookup: true } } : null;
  }

  /**
   * Takes up to 500 due receipts (or replies) for this pass. Several worker processes run the
   * simulator against one database: each takes its rows with SKIP LOCKED (PostgreSQL) and moves
   * their due time 30 s on — a lease — so no other process sends them too. The row is cleared
   * only after it was reported; a process that dies in between leaves the lease to run out, and
   * the receipt goes again (a duplicate the platform records, never a loss).
   */
  private takeDue(column: 'receipt_due_at' | 'reply_due_at', now: number) {
    return transaction(this.deps.storage.db, async (tx) => {
      let q = tx
        .selectFrom('simulator_messages')
        .select(['reference', 'receipt', 'reply_body', 'to_addr', 'from_addr', 'provider_id'])
        .where('connector_id', '=', this.id)
        .where(column, '<=', now)
        .orderBy(column)
        .limit(500);
      // A reply comes after its message's receipt.
      if (column === 'reply_due_at') q = q.where('receipt_due_at', 'is', null);
      if (this.deps.storage.dialect.supportsSkipLocked) q = q.forUpdate().skipLocked();
      const rows = await q.execute();
      if (rows.length) {
        await tx
          .updateTable('simulator_messages')
          .set({ [column]: now + DUE_LEASE_MS })
          .where('connector_id', '=', this.id)
          .where('reference', 'in', rows.map((r) => r.reference))
          .execute();
      }
      return rows;
    });
  }

  /** Sends every receipt and reply that is due. Returns how many it sent. */
  runDue(): Promise<number> {
    if (!this.draining) {
      this.draining = this.drain().finally(() => {
        this.draining = null;
      });
    }
    return this.draining;
  }

  private async drain(): Promise<number> {
    const db = this.deps.storage.db;
    const now = this.deps.clock.now();
    let sent = 0;
    const receipts = (await this.takeDue('receipt_due_at', now)) as Array<{ reference: string; receipt: string | null }>;
    // Report first, then clear: a crash in between repeats the receipt, which the platform
    // records as a duplicate, rather than losing it. The receipts of one pass (each for a
    // different message) are reported together, as a carrier's burst arrives.
    const reported = await Promise.allSettled(receipts.map((r) => this.deps.sink.receipt(this.id, JSON.parse(r.receipt!))));
    const done = receipts.filter((_, i) => reported[i].status === 'fulfilled').map((r) => r.reference);
    for (let i = 0; i < done.length; i += 500) {
      await db.updateTable('simulator_messages').set({ receipt_due_at: null }).where('connector_id', '=', this.id).where('reference', 'in', done.slice(i, i + 500)).execute();
    }
    sent += done.length;
    const failed = reported.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const replies = (await this.takeDue('reply_due_at', now)) as Array<{ reference: string; reply_body: string | null; to_addr: string; from_addr: string | null; provider_id: string | null }>;
    for (const r of replies) {
      await this.deps.sink.inbound(this.id, {
        from: r.to_addr,
        to: r.from_addr ?? '',
        body: r.reply_body ?? '',
        channel: 'sms',
        providerMessageId: `${r.provider_id}_reply`,
        inReplyTo: r.reference,
        raw: { simulator_reply_to: r.provider_id },
      });
      await db.updateTable('simulator_messages').set({ reply_due_at: null }).where('connector_id', '=', this.id).where('reference', '=', r.reference).execute();
      sent++;
    }
    if (receipts.length === 500 || replies.length === 500) this.schedule(0);
    return sent;
  }
}
