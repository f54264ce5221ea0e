// The webhook worker: turns outbox rows into deliveries and sends them, at least once, in order
// per message, on the retry schedule.
//
// Terminology:
//   event     — an outbox row (events/outbox.ts), written in the same transaction as the change
//               that caused it. Its payload is the exact body every receiver gets.
//   target    — where a delivery goes: a webhook endpoint (`we_…`), a message's own
//               status_callback (`cb:<url>`), or a target of another kind (`TargetKind`, e.g.
//               the Twilio-style callbacks, `twcb:<url>`). Ordering and concurrency are per target.
//   fan-out   — in ONE transaction: read events not yet fanned out, insert one delivery per
//               matching target, mark the events fanned out. Either both commit or neither, so
//               an event is never skipped and never fanned out twice.
//   delivery  — one event for one target (`whd_…`): pending → delivered | failed. The row IS the
//               job; its next_attempt_at is its timer (no setTimeout holds any state).
//   attempt   — one HTTP POST of a delivery, logged with request id, status, latency, 1 KB of
//               body. Recorded together with the delivery's new state in one transaction.
//   lease     — a claimed delivery carries (lease_owner, lease_expires_at). A worker that dies
//               mid-request leaves the lease to expire and the delivery is sent again: that is
//               the "at least once". Receivers de-duplicate on the webhook-id header.
//   ordering  — a delivery with an earlier pending delivery of the SAME message to the SAME target
//               is not claimable. So a later event waits until the earlier one is delivered or
//               has exhausted its retries (failed) — never overtakes it.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { systemClock, type Clock, type Random, IdleWait } from '../clock.ts';
import { newId } from '../ids.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Storage } from '../storage/database.ts';
import { readDataSettings, type DataSettings } from '../security/data-settings.ts';
import { withoutBody } from '../security/retention.ts';
import { readCache } from '../storage/read-cache.ts';
import { inboundFacts, routeInbound } from './inbound-routing.ts';
import type { Resolver } from '../net/guarded-fetch.ts';
import { HttpSender, RESPONSE_BODY_CAP, type RequestOptions, type SendResult } from './http-sender.ts';
import { nextAttemptAt, type RetrySchedule } from './schedule.ts';
import { activeSecrets, signedHeaders } from './signing.ts';
import type { WebhookService } from './webhook-service.ts';
import { webhookDb, type WebhookDB, type WebhookDeliveriesTable, type WebhookEndpointsTable, type WebhookTx } from './webhook-tables.ts';
import type { Selectable } from 'kysely';

export interface WebhookWorkerOptions {
  workerId: string;
  schedule: RetrySchedule;
  timeoutMs: number;
  allowPrivateUrls: boolean;
  pollMs: number;
  /** Events read per fan-out transaction. */
  fanOutBatch?: number;
  /** Requests in flight in this process, over all targets. */
  maxInFlight?: number;
  /** Requests in flight to one target: a slow receiver holds at most this many slots. */
  perTargetInFlight?: number;
  /** Wall clock for the webhook-timestamp header, which receivers check against their own clock. */
  wallClock?: Clock;
  /** How receivers' names resolve (net/guarded-fetch.ts); the system's DNS by default. */
  resolver?: Resolver;
}

const COALESCE_MS = 10;

/** An event payload with the message's body and media left out (`include_body: false`). */
export function payloadWithoutBody(payload: string): string {
  const p = JSON.parse(payload) as { type: string; data?: Record<string, unknown> };
  if (!p.data || typeof p.data !== 'object' || !('body' in p.data)) return payload;
  return JSON.stringify({ ...p, data: withoutBody(p.data) });
}

type Claimed = WebhookDeliveriesTable & { payload: string; endpoint?: WebhookEndpointsTable };

/** An event as the fan-out reads it: without its payload, which is sealed at rest. */
export type OutboxRow = Pick<Selectable<WebhookDB['outbox']>, 'id' | 'account_id' | 'mode' | 'type' | 'message_id' | 'created_at'>;
/** A claimed delivery of a TargetKind: the delivery row and its event's payload. */
export type KindDelivery = WebhookDeliveriesTable & { payload: string };

/**
 * Another kind of delivery target, with its own fan-out, body encoding and signature, on the
 * same delivery rows: durable, at least once, in order per message and target, retried on the
 * schedule. The Twilio-compatible callbacks (src/twilio-compat) are one.
 */
export interface TargetKind {
  /** Starts every target of this kind (`twcb:`); the rest of the target is the URL. */
  prefix: string;
  /** In the fan-out transaction: the deliveries these events make for this kind. */
  fanOut(tx: WebhookTx, events: OutboxRow[]): Promise<Array<{ event: OutboxRow; url: string }>>;
  /** Just before each attempt (so a rotated key signs the retry): what to send. */
  request(d: KindDelivery): Promise<{ url: string; headers: Record<string, string>; body: string } & RequestOptions>;
  /**
   * After a 2xx answer, before the outcome is recorded (the answer can be acted on: TwiML).
   * Returns a note for the attempt log, or null. Throwing makes the attempt a failure, retried.
   */
  answered?(d: KindDelivery, answer: SendResult): Promise<string | null>;
}

interface Outcome {
  d: Claimed;
  endpoint: WebhookEndpointsTable | undefined;
  url: string;
  requestId: string;
  startedAt: number;
  r: SendResult;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class WebhookWorker {
  private db;
  private sender: HttpSender;
  private running = false;
  private stopping = false;
  private loopDone: Promise<void> | null = null;
  private idle = new IdleWait();
  private woken = false;
  private inFlight = new Set<Promise<void>>();
  private perTarget = new Map<string, number>();
  private outcomes: Outcome[] = [];
  private flushing: Promise<void> | null = null;
  private lastPromote = 0;
  private lastScan = 0;
  private needScan = true;
  private freed = new Set<string>();
  private kinds: TargetKind[] = [];
  private readonly fanOutBatch: number;
  private readonly maxInFlight: number;
  private readonly perTargetMax: number;
  private readonly wallClock: Clock;
  private callbackSettings;
  readonly attemptsTotal: Counter;
  readonly deliveriesTotal: Counter;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private random: Random,
    private service: WebhookService,
    metrics: Metrics,
    private log: Logger,
    private opts: WebhookWorkerOptions,
  ) {
    this.db = webhookDb(storage);
    this.sender = new HttpSender({ timeoutMs: opts.timeoutMs, allowPrivate: opts.allowPrivateUrls, resolver: opts.resolver });
    this.fanOutBatch = opts.fanOutBatch ?? 500;
    this.maxInFlight = opts.maxInFlight ?? 128;
    this.perTargetMax = opts.perTargetInFlight ?? 16;
    this.wallClock = opts.wallClock ?? systemClock;
    this.callbackSettings = readCache<DataSettings>(storage);
    const registers = [metrics.registry];
    this.attemptsTotal = new Counter({
      name: 'switchboard_webhook_attempts_total',
      help: 'Webhook HTTP attempts by outcome: success (2xx), http_error, gone (410), timeout, network_error',
      labelNames: ['outcome'],
      registers,
    });
    this.deliveriesTotal = new Counter({
      name: 'switchboard_webhook_deliveries_total',
      help: 'Webhook deliveries that reached an end: delivered, or failed after the last attempt',
      labelNames: ['outcome'],
      registers,
    });
    const db = this.db;
    const now = () => this.clock.now();
    new Gauge({
      name: 'switchboard_webhook_outbox_lag_seconds',
      help: 'Age of the oldest event not yet fanned out to its webhook targets (0 when none)',
      registers,
      async collect() {
        const row = await db.selectFrom('outbox').select((eb) => eb.fn.min('created_at').as('oldest')).where('fanned_out_at', 'is', null).executeTakeFirst();
        this.set(row?.oldest == null ? 0 : Math.max(0, (now() - Number(row.oldest)) / 1000));
      },
    });
    new Gauge({
      name: 'switchboard_webhook_delivery_lag_seconds',
      help: 'Age of the event behind the oldest delivery still pending (receivers down or slow; 0 when none)',
      registers,
      async collect() {
        const row = await db
          .selectFrom('webhook_deliveries as d')
          .innerJoin('outbox as o', 'o.id', 'd.outbox_id')
          .select((eb) => eb.fn.min('o.created_at').as('oldest'))
          .where('d.status', '=', 'pending')
          .executeTakeFirst();
        this.set(row?.oldest == null ? 0 : Math.max(0, (now() - Number(row.oldest)) / 1000));
      },
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    this.loopDone = this.loop();
  }

  /** Stops the loop, cuts in-flight requests, and releases their leases so they go again at once. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.wake();
    await this.loopDone;
    this.sender.close();
    await Promise.allSettled([...this.inFlight]);
    // Ready to be started (or driven by runOnce) again, with fresh connections.
    this.sender = new HttpSender({ timeoutMs: this.opts.timeoutMs, allowPrivate: this.opts.allowPrivateUrls, resolver: this.opts.resolver });
    this.stopping = false;
  }

  /** Registers another kind of target (see TargetKind). */
  addTargetKind(kind: TargetKind): void {
    this.kinds.push(kind);
  }

  /** New events may exist (a status changed in this process): fan out and scan at once. */
  wake(): void {
    this.needScan = true;
    this.wakeNow();
  }

  private wakeNow(): void {
    this.woken = true;
    this.idle.wake();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let did = 0;
      try {
        did = await this.runOnce({ wait: false });
      } catch (err) {
        this.log.warn({ err }, 'webhook worker pass failed');
      }
      if (!this.running) break;
      if (did > 0 && this.needScan && this.inFlight.size < this.maxInFlight) continue;
      if (this.woken) {
        this.woken = false;
        // Coalesce: requests finish one by one and statuses change one by one; a claim, a
        // fan-out and a commit for each would spend the CPU on the database instead of on
        // requests. Waiting a few ms lets several events arrive, several slots free up and
        // several outcomes be recorded per transaction.
        await new Promise((r) => setTimeout(r, COALESCE_MS));
        continue;
      }
      await this.idle.wait(this.opts.pollMs);
      this.woken = false;
    }
  }

  /** One pass: fan out new events, then claim and send due deliveries. `wait` awaits the sends. */
  async runOnce({ wait }: { wait: boolean } = { wait: true }): Promise<number> {
    const scanDue = wait || this.needScan || performance.now() - this.lastScan >= this.opts.pollMs;
    // Fan-out only when new events may exist: not on every finished request.
    let did = scanDue ? await this.fanOut() : 0;
    if (wait || performance.now() - this.lastPromote > 5000) {
      this.lastPromote = performance.now();
      did += await this.promoteStuck();
    }
    if (did > 0 || wait) this.needScan = true;
    // Targets that just finished a request: refill their slots with a query on that target only
    // (an index range), not a scan of everything due.
    const freed = [...this.freed];
    this.freed.clear();
    for (const target of freed) {
      const room = Math.min(this.perTargetMax - (this.perTarget.get(target) ?? 0), this.maxInFlight - this.inFlight.size);
      if (room <= 0) continue;
      const claimed = await this.claim(room, target);
      did += claimed.length;
      for (const d of claimed) this.track(d.target, this.attempt(d));
    }
    // The full scan over every target: when new events came in, on the poll, and in runDue.
    // It walks the due index and skips busy targets, so it is not run on every completion.
    const capacity = this.maxInFlight - this.inFlight.size;
    if (capacity > 0 && (scanDue || this.needScan)) {
      this.needScan = false;
      this.lastScan = performance.now();
      const claimed = await this.claim(capacity);
      did += claimed.length;
      // Filled every slot: more is probably due, so scan again as soon as slots free up.
      if (claimed.length >= capacity) this.needScan = true;
      for (const d of claimed) this.track(d.target, this.attempt(d));
    }
    if (wait) await Promise.allSettled([...this.inFlight]);
    return did;
  }

  /**
   * Safety net for the waiting rule: a waiting delivery (no due time) whose earlier events are no
   * longer pending is made due. Normally the earlier one's completion does this in its own
   * transaction; on PostgreSQL a fan-out committing at the same moment can miss it. Without this,
   * such an event would wait forever.
   */
  async promoteStuck(): Promise<number> {
    const now = this.clock.now();
    const res = await this.db
      .updateTable('webhook_deliveries as d')
      .set({ next_attempt_at: now })
      .where('d.status', '=', 'pending')
      .where('d.next_attempt_at', 'is', null)
      .where('d.message_id', 'is not', null)
      // Parked deliveries of a disabled endpoint stay parked.
      .where((eb) => eb.or([eb('d.endpoint_id', 'is', null), eb('d.endpoint_id', 'in', eb.selectFrom('webhook_endpoints as e').select('e.id').where('e.enabled', '=', 1))]))
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('webhook_deliveries as p')
              .select('p.id')
              .whereRef('p.target', '=', 'd.target')
              .whereRef('p.message_id', '=', 'd.message_id')
              .where('p.status', '=', 'pending')
              .whereRef('p.outbox_id', '<', 'd.outbox_id'),
          ),
        ),
      )
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  private track(target: string, p: Promise<void>): void {
    this.perTarget.set(target, (this.perTarget.get(target) ?? 0) + 1);
    const tracked = p
      .catch((err) => this.log.warn({ err }, 'webhook attempt failed to record'))
      .finally(() => {
        this.inFlight.delete(tracked);
        const n = (this.perTarget.get(target) ?? 1) - 1;
        if (n <= 0) this.perTarget.delete(target);
        else this.perTarget.set(target, n);
        this.freed.add(target);
        if (this.running) this.wakeNow();
      });
    this.inFlight.add(tracked);
  }

  /** Events → deliveries, and the events marked, in one transaction. Returns events handled. */
  async fanOut(): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      // Without the payload: it is sealed at rest, and only inbound routing (below) reads it.
      let q = tx.selectFrom('outbox').select(['id', 'account_id', 'mode', 'type', 'message_id', 'created_at']).where('fanned_out_at', 'is', null).orderBy('id').limit(this.fanOutBatch);
      // PostgreSQL: FOR UPDATE (not SKIP LOCKED) so that fan-outs in several processes take turns;
      // skipping would let a later event of a message get its delivery before an earlier one.
      if (this.storage.dialect.name === 'postgres') q = q.forUpdate();
      const events = await q.execute();
      if (events.length === 0) return 0;
      const now = this.clock.now();
      const accounts = [...new Set(events.map((e) => e.account_id))];
      const endpoints = await tx.selectFrom('webhook_endpoints').selectAll().where('account_id', 'in', accounts).where('enabled', '=', 1).execute();
      const messageIds = [...new Set(events.filter((e) => e.message_id && e.type.startsWith('message.')).map((e) => e.message_id!))];
      const callbacks = new Map<string, string>();
      if (messageIds.length) {
        const rows = await tx.selectFrom('messages').select(['id', 'status_callback']).where('id', 'in', messageIds).where('status_callback', 'is not', null).execute();
        for (const r of rows) callbacks.set(r.id, r.status_callback!);
      }
      const payloadOf = async (id: number) => (await tx.selectFrom('outbox').select('payload').where('id', '=', id).executeTakeFirstOrThrow()).payload;
      const deliveries: WebhookDeliveriesTable[] = [];
      const make = (e: (typeof events)[number], endpoint: WebhookEndpointsTable | null, url: string, target?: string): WebhookDeliveriesTable => ({
        id: newId('whd', now),
        account_id: e.account_id,
        mode: e.mode,
        endpoint_id: endpoint?.id ?? null,
        target: target ?? (endpoint ? endpoint.id : `cb:${url}`),
        url,
        outbox_id: Number(e.id),
        message_id: e.message_id,
        event_type: e.type,
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        schedule_started_at: now,
        last_status_code: null,
        last_error: null,
        lease_owner: null,
        lease_expires_at: null,
        created_at: now,
        updated_at: now,
        delivered_at: null,
      });
      for (const e of events) {
        // An inbound message that a routing rule claims goes to that rule's endpoint only.
        const routedTo = e.type === 'message.received' ? await routeInbound(tx, e.account_id, e.mode, inboundFacts(await payloadOf(e.id))) : null;
        for (const ep of endpoints) {
          if (ep.account_id !== e.account_id || ep.mode !== e.mode) continue;
          if (routedTo !== null) {
            if (ep.id === routedTo) deliveries.push(make(e, ep, ep.url));
            continue;
          }
          const wanted: string[] = JSON.parse(ep.events);
          if (wanted.length === 0 || wanted.includes(e.type)) deliveries.push(make(e, ep, ep.url));
        }
        const cb = e.message_id ? callbacks.get(e.message_id) : undefined;
        if (cb && e.type.startsWith('message.')) deliveries.push(make(e, null, cb));
      }
      for (const kind of this.kinds) {
        for (const t of await kind.fanOut(tx, events)) deliveries.push(make(t.event, null, t.url, `${kind.prefix}${t.url}`));
      }
      // A delivery with an earlier pending one for the same message and target WAITS (no due
      // time) instead of being due and rejected by every claim; the earlier one's completion
      // promotes it (writeOutcomes), and promoteStuck() is the safety net.
      const busy = new Set<string>();
      if (messageIds.length) {
        const pending = await tx
          .selectFrom('webhook_deliveries')
          .select(['target', 'message_id'])
          .where('status', '=', 'pending')
          .where('message_id', 'in', messageIds)
          .execute();
        for (const p of pending) busy.add(`${p.target}\u0000${p.message_id}`);
      }
      for (const d of deliveries) {
        if (!d.message_id) continue;
        const key = `${d.target}\u0000${d.message_id}`;
        if (busy.has(key)) d.next_attempt_at = null;
        else busy.add(key);
      }
      for (let i = 0; i < deliveries.length; i += 100) {
        await tx
          .insertInto('webhook_deliveries')
          .values(deliveries.slice(i, i + 100))
          .onConflict((oc) => oc.columns(['outbox_id', 'target']).doNothing())
          .execute();
      }
      const ids = events.map((e) => e.id);
      for (let i = 0; i < ids.length; i += 500) {
        await tx.updateTable('outbox').set({ fanned_out_at: now }).where('id', 'in', ids.slice(i, i + 500)).execute();
      }
      return events.length;
    });
  }

  /** The claim's read: due, enabled, not behind an earlier pending event of the same message. */
  claimQuery(db: Kysely<WebhookDB>, now: number, limit: number, onlyTarget?: string, skipTargets: string[] = []) {
    let q = db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('outbox as o', 'o.id', 'd.outbox_id')
      .leftJoin('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
      .selectAll('d')
      .select(['o.payload', 'e.url as e_url', 'e.secret as e_secret', 'e.previous_secret as e_previous_secret', 'e.previous_secret_expires_at as e_previous_secret_expires_at', 'e.include_body as e_include_body'])
      .where('d.status', '=', 'pending')
      // A claimed delivery's next_attempt_at is its lease expiry, so in-flight rows are not due.
      .where('d.next_attempt_at', '<=', now)
      // A disabled endpoint's deliveries wait (they go when it is enabled again).
      .where((eb) => eb.or([eb('d.endpoint_id', 'is', null), eb('e.enabled', '=', 1)]))
      // ORDERING: never overtake an earlier pending event of the same message to the same target.
      .where((eb) =>
        eb.or([
          eb('d.message_id', 'is', null),
          eb.not(
            eb.exists(
              eb
                .selectFrom('webhook_deliveries as p')
                .select('p.id')
                .whereRef('p.target', '=', 'd.target')
                .whereRef('p.message_id', '=', 'd.message_id')
                .where('p.status', '=', 'pending')
                .whereRef('p.outbox_id', '<', 'd.outbox_id'),
            ),
          ),
        ]),
      );
    if (onlyTarget !== undefined) q = q.where('d.target', '=', onlyTarget);
    else if (skipTargets.length) q = q.where('d.target', 'not in', skipTargets);
    // One sort key only: a second one (outbox_id) makes SQLite sort every due row before the LIMIT.
    return q.orderBy('d.next_attempt_at').limit(limit);
  }

  /** Due deliveries whose target has room and whose earlier events (same message) are done. */
  private async claim(capacity: number, onlyTarget?: string): Promise<Claimed[]> {
    const now = this.clock.now();
    const saturated = [...this.perTarget].filter(([, n]) => n >= this.perTargetMax).map(([t]) => t);
    return this.db.transaction().execute(async (tx) => {
      const rows = await this.claimQuery(tx, now, capacity * 2, onlyTarget, saturated).execute();
      const room = new Map<string, number>();
      const chosen: Claimed[] = [];
      for (const r of rows) {
        if (chosen.length >= capacity) break;
        const used = (this.perTarget.get(r.target) ?? 0) + (room.get(r.target) ?? 0);
        if (used >= this.perTargetMax) continue;
        room.set(r.target, (room.get(r.target) ?? 0) + 1);
        const { e_url, e_secret, e_previous_secret, e_previous_secret_expires_at, e_include_body, ...rest } = r;
        const claimed: Claimed = rest;
        if (r.endpoint_id && e_url && e_secret) {
          claimed.endpoint = { id: r.endpoint_id, url: e_url, secret: e_secret, previous_secret: e_previous_secret, previous_secret_expires_at: e_previous_secret_expires_at, include_body: e_include_body } as WebhookEndpointsTable;
        }
        chosen.push(claimed);
      }
      if (chosen.length === 0) return [];
      // The lease write is guarded: on PostgreSQL another process may have taken some rows since
      // the read; only the rows this update returns are ours.
      const leaseExpires = now + this.opts.timeoutMs + 30_000;
      const got = await tx
        .updateTable('webhook_deliveries')
        .set({ lease_owner: this.opts.workerId, lease_expires_at: leaseExpires, next_attempt_at: leaseExpires })
        .where('id', 'in', chosen.map((c) => c.id))
        .where('status', '=', 'pending')
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
        .returning('id')
        .execute();
      const ours = new Set(got.map((g) => g.id));
      return chosen.filter((c) => ours.has(c.id)).map((c) => ({ ...c, lease_owner: this.opts.workerId, lease_expires_at: leaseExpires }));
    });
  }

  private async attempt(d: Claimed): Promise<void> {
    const kind = this.kinds.find((k) => d.target.startsWith(k.prefix));
    if (kind) return this.attemptOfKind(kind, d);
    let url = d.url;
    let secrets: string[];
    let endpoint: WebhookEndpointsTable | undefined;
    if (d.endpoint_id) {
      // Read with the claim: a PATCHed URL or a rotated secret applies to what is still pending.
      endpoint = d.endpoint!;
      url = endpoint.url;
      secrets = activeSecrets(endpoint, this.clock.now());
    } else {
      secrets = activeSecrets(await this.service.callbackSecrets(d.account_id, d.mode), this.clock.now());
    }
    // Minimum necessary: an endpoint (or, for status callbacks, the account) may leave bodies out.
    const includeBody = endpoint ? endpoint.include_body !== 0 : (await this.callbackSettings.get(d.account_id, () => readDataSettings(this.storage.db, d.account_id))).status_callback_include_body;
    const payload = includeBody ? d.payload : payloadWithoutBody(d.payload);
    const startedAt = this.clock.now();
    const requestId = newId('whreq', startedAt);
    const headers = { ...signedHeaders(d.id, new Date(this.wallClock.now()), payload, secrets), 'x-switchboard-request-id': requestId, 'x-switchboard-attempt': String(d.attempts + 1) };
    const result = await this.sender.post(url, headers, payload);
    await this.settle(d, endpoint, url, requestId, startedAt, result);
  }

  private async attemptOfKind(kind: TargetKind, d: Claimed): Promise<void> {
    const startedAt = this.clock.now();
    const requestId = newId('whreq', startedAt);
    let result: SendResult;
    let url = d.url;
    try {
      const { url: target, headers, body, ...opts } = await kind.request(d);
      url = target;
      result = await this.sender.post(url, { ...headers, 'x-switchboard-request-id': requestId, 'x-switchboard-attempt': String(d.attempts + 1) }, body, opts);
      if (!this.stopping && kind.answered && result.status !== null && result.status >= 200 && result.status < 300) {
        try {
          const note = await kind.answered(d, result);
          if (note) result = { ...result, error: note };
        } catch (err) {
          // Acting on the answer failed (the database, say): the delivery goes again, and the
          // kind's own idempotency keeps what it already did from happening twice.
          result = { ...result, status: null, error: `acting on the answer failed: ${(err as Error).message}` };
        }
      }
    } catch (err) {
      result = { status: null, body: null, latencyMs: 0, error: `could not build the request: ${(err as Error).message}` };
    }
    await this.settle(d, undefined, url, requestId, startedAt, result);
  }

  private async settle(d: Claimed, endpoint: WebhookEndpointsTable | undefined, url: string, requestId: string, startedAt: number, result: SendResult): Promise<void> {
    if (this.stopping) {
      // Shutting down cut this request: not the receiver's fault, so no attempt is counted. The
      // lease is released and the delivery goes again (the receiver may get it twice).
      await this.db
        .updateTable('webhook_deliveries')
        .set({ lease_owner: null, lease_expires_at: null, next_attempt_at: this.clock.now() })
        .where('id', '=', d.id)
        .where('lease_owner', '=', this.opts.workerId)
        .execute();
      return;
    }
    await this.record(d, endpoint, url, requestId, startedAt, result);
  }

  /**
   * Queues an attempt's outcome for the recorder and resolves once it is committed. Outcomes that
   * finish while a write is running are written together in the next transaction: one commit
   * per batch instead of per attempt, which is what lets one process deliver thousands of events
   * per second on SQLite. If the write fails, the leases expire and the deliveries go again.
   */
  private record(d: Claimed, endpoint: WebhookEndpointsTable | undefined, url: string, requestId: string, startedAt: number, r: SendResult): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.outcomes.push({ d, endpoint, url, requestId, startedAt, r, resolve, reject });
      if (!this.flushing) this.flushing = this.flush().finally(() => (this.flushing = null));
    });
  }

  private async flush(): Promise<void> {
    while (this.outcomes.length > 0) {
      const batch = this.outcomes.splice(0, 500);
      try {
        await this.db.transaction().execute((tx) => this.writeOutcomes(tx, batch));
        for (const o of batch) o.resolve();
      } catch (err) {
        for (const o of batch) o.reject(err);
      }
    }
  }

  /** Each attempt's log row and its delivery's next state, in the caller's transaction. */
  private async writeOutcomes(tx: WebhookTx, batch: Outcome[]): Promise<void> {
    const now = this.clock.now();
    const attemptRows = [];
    const deliveredByCode = new Map<number, string[]>();
    const finished = new Set<string>();
    for (const { d, endpoint, url, requestId, startedAt, r } of batch) {
      const attempts = d.attempts + 1;
      const ok = r.status !== null && r.status >= 200 && r.status < 300;
      const gone = r.status === 410;
      const error = r.error ?? (ok ? null : `HTTP ${r.status}`);
      const kind = ok ? 'success' : gone ? 'gone' : r.status !== null ? 'http_error' : /no answer within/.test(r.error ?? '') ? 'timeout' : 'network_error';
      this.attemptsTotal.inc({ outcome: kind });
      attemptRows.push({ delivery_id: d.id, attempt: attempts, request_id: requestId, url, at: startedAt, response_status: r.status, latency_ms: r.latencyMs, response_body: r.body?.slice(0, RESPONSE_BODY_CAP) ?? null, error });
      if (ok) {
        // The common case, written in bulk below.
        const list = deliveredByCode.get(r.status!) ?? [];
        list.push(d.id);
        deliveredByCode.set(r.status!, list);
        finished.add(d.id);
        this.deliveriesTotal.inc({ outcome: 'delivered' });
        continue;
      }
      let patch: Partial<WebhookDeliveriesTable>;
      let disable = false;
      if (gone && endpoint) {
        // 410 Gone: the receiver asks us to stop. The endpoint is disabled; this delivery and the
        // ones behind it wait, and go if someone enables the endpoint again.
        disable = true;
        patch = { next_attempt_at: null };
      } else if (gone) {
        patch = { status: 'failed', next_attempt_at: null };
      } else {
        // The window runs from the FIRST attempt (or the last manual retry/replay), not from the
        // event: an event that waited behind a failing earlier one still gets its full schedule.
        const started = d.attempts === 0 ? startedAt : d.schedule_started_at;
        const next = nextAttemptAt(this.opts.schedule, attempts, started, now, this.random);
        // Retries exhausted: failed. This also lets the later events of the message go (ordering
        // waits for "delivered or failed", never forever). A failed delivery can be replayed.
        patch = next === null ? { status: 'failed', next_attempt_at: null } : { next_attempt_at: next, schedule_started_at: started };
      }
      if (patch.status) {
        this.deliveriesTotal.inc({ outcome: patch.status });
        finished.add(d.id);
      }
      // Guarded by our lease: if it expired and another worker re-sent, its record wins.
      await tx
        .updateTable('webhook_deliveries')
        .set({ ...patch, attempts, last_status_code: r.status, last_error: error, lease_owner: null, lease_expires_at: null, updated_at: now })
        .where('id', '=', d.id)
        .where('lease_owner', '=', this.opts.workerId)
        .execute();
      if (patch.next_attempt_at && d.message_id) {
        // Efficiency only (the claim's ordering check is what guarantees order): the events queued
        // behind this one cannot go before it, so they stop showing up as due until then.
        await tx
          .updateTable('webhook_deliveries')
          .set({ next_attempt_at: patch.next_attempt_at })
          .where('target', '=', d.target)
          .where('message_id', '=', d.message_id)
          .where('status', '=', 'pending')
          .where('outbox_id', '>', d.outbox_id)
          .where('next_attempt_at', '<', patch.next_attempt_at)
          .execute();
      }
      if (disable) {
        await tx
          .updateTable('webhook_endpoints')
          .set({ enabled: 0, disabled_reason: `The receiver answered 410 Gone at ${new Date(now).toISOString()}.`, updated_at: now })
          .where('id', '=', endpoint!.id)
          .where('enabled', '=', 1)
          .execute();
        // Parked: no next_attempt_at, so they are not scanned as due; enabling sets it to now.
        await tx.updateTable('webhook_deliveries').set({ next_attempt_at: null }).where('endpoint_id', '=', endpoint!.id).where('status', '=', 'pending').execute();
      }
    }
    for (let i = 0; i < attemptRows.length; i += 100) await tx.insertInto('webhook_attempts').values(attemptRows.slice(i, i + 100)).execute();
    // Done (delivered or failed): the next event of the same message to the same target is due.
    for (const { d } of batch) {
      if (!d.message_id || !finished.has(d.id)) continue;
      await tx
        .updateTable('webhook_deliveries')
        .set({ next_attempt_at: now })
        .where('target', '=', d.target)
        .where('message_id', '=', d.message_id)
        .where('status', '=', 'pending')
        .where('next_attempt_at', 'is', null)
        .execute();
    }
    for (const [code, ids] of deliveredByCode) {
      await tx
        .updateTable('webhook_deliveries')
        .set((eb) => ({
          status: 'delivered',
          delivered_at: now,
          next_attempt_at: null,
          attempts: eb('attempts', '+', 1),
          last_status_code: code,
          last_error: null,
          lease_owner: null,
          lease_expires_at: null,
          updated_at: now,
        }))
        .where('id', 'in', ids)
        .where('lease_owner', '=', this.opts.workerId)
        .execute();
    }
  }
}
