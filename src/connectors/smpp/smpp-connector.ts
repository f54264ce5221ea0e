// The SMPP v3.4 connector: one connector row, one or more binds to an SMSC.
//
// Terminology:
//   bind      — one TCP (or TLS) session bound as transceiver, transmitter or receiver. Each bind
//               reconnects on its own, with exponential backoff and jitter, and checks its peer
//               with enquire_link.
//   part      — one submit_sm PDU. A text longer than one segment is several parts, each with
//               the concatenation UDH; throughput and the window count parts, not messages.
//   window    — at most `window` submit_sm awaiting their submit_sm_resp per bind. Parts beyond
//               it wait in a bounded in-memory queue, in arrival order.
//   throttle  — a token bucket of `throughput` parts per second for the whole connector, taken
//               BEFORE each submit_sm is written, so the SMSC never sees more than it allows.
//               ESME_RTHROTTLED / ESME_RMSGQFUL additionally pause every bind with backoff.
//
// What the dispatcher relies on (a mistake here loses or duplicates messages):
//   - submit() ALWAYS resolves, and within bounded time: a part that gets no submit_sm_resp within
//     `response_timeout_ms`, or whose bind drops before the answer, resolves UNREACHABLE, so the
//     dispatcher retries it. It may have reached the SMSC (a possible duplicate); it is never lost.
//   - A message is `sent` only when EVERY part was accepted. Its provider id is the LAST part's
//     message_id: that is the id we know last, so the platform records the message as accepted
//     exactly when the whole text is at the carrier. The ids of all parts are kept, so a receipt
//     for any part resolves to the message (see MultipartReceipts).
//   - deliver_sm_resp is written only after the receipt or inbound message was handed to the
//     platform; if that fails we answer ESME_RX_T_APPN and the SMSC delivers it again.
//
// The timers here are socket timers (response timeouts, keep-alives, reconnects): they belong to
// a connection and die with it, so they use real time, not the platform's injected clock.
// Nothing here ever logs or reports the password.
import smpp, { type PDU, type Session } from 'smpp';
import type { ErrorClass } from '../../errors.ts';
import type { Connector, ConnectorCapabilities, ConnectorDeps, ConnectorRow, ConnectorState, OutboundMessage, Receipt, SubmitResult } from '../connector.ts';
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import { DEFAULT_RECEIPT_ERRORS, MESSAGE_STATES, classifyStatus, concatInfo, decodeText, encodeText, parseReceiptText, receiptOutcome } from './pdu-mapping.ts';

export type BindMode = 'transceiver' | 'transmitter' | 'receiver';

export interface SmppConfig {
  host: string;
  port?: number;
  system_id: string;
  password?: string;
  system_type?: string;
  tls?: boolean;
  /** A number of transceiver binds, or how many of each kind. Default 1 transceiver. */
  binds?: number | Partial<Record<BindMode, number>>;
  /** submit_sm awaiting a response, per bind. Default 10. */
  window?: number;
  /** Parts (segments) per second for the whole connector. Default: unlimited. */
  throughput?: number;
  response_timeout_ms?: number;
  enquire_link_ms?: number;
  reconnect_min_ms?: number;
  reconnect_max_ms?: number;
  /** Parts waiting for a window slot, at most. Default 2000. */
  queue_limit?: number;
  /**
   * How long a message may wait for a bind, a window slot and throughput before it fails
   * UNREACHABLE. Default 15 s: with response_timeout_ms it stays under the dispatcher's 30 s
   * submit timeout, so nothing is written to the SMSC after the dispatcher gave up on it.
   */
  queue_timeout_ms?: number;
  service_type?: string;
  registered_delivery?: number;
  /** PEM of a CA to trust for TLS binds (a private SMSC certificate). */
  tls_ca?: string;
  tls_reject_unauthorized?: boolean;
  /** Receipt `err:` codes → error class, over DEFAULT_RECEIPT_ERRORS. */
  receipt_errors?: Record<string, ErrorClass>;
}

interface Resolved {
  host: string;
  port: number;
  tls: boolean;
  systemId: string;
  password: string;
  systemType: string;
  binds: BindMode[];
  window: number;
  throughput: number | null;
  responseTimeoutMs: number;
  enquireLinkMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  queueLimit: number;
  queueTimeoutMs: number;
  serviceType: string;
  registeredDelivery: number;
  tlsCa?: string;
  tlsRejectUnauthorized: boolean;
  receiptErrors: Record<string, ErrorClass>;
}

const BIND_MODES: BindMode[] = ['transceiver', 'transmitter', 'receiver'];

/** Checks an SMPP config; returns what is wrong (empty when usable). Never echoes the password. */
export function validateSmppConfig(raw: Record<string, unknown>): string[] {
  const c = raw as Partial<SmppConfig>;
  const errors: string[] = [];
  const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (typeof c.host !== 'string' || c.host.trim() === '') errors.push('host is required');
  if (c.port !== undefined && !(posInt(c.port) && c.port <= 65535)) errors.push('port must be 1–65535');
  if (typeof c.system_id !== 'string' || c.system_id === '') errors.push('system_id is required');
  if (c.system_id && c.system_id.length > 15) errors.push('system_id is at most 15 characters');
  if (c.password !== undefined && (typeof c.password !== 'string' || c.password.length > 8)) errors.push('password must be a string of at most 8 characters');
  if (c.binds !== undefined) {
    if (typeof c.binds === 'number') {
      if (!posInt(c.binds) || c.binds > 32) errors.push('binds must be 1–32');
    } else if (typeof c.binds === 'object' && c.binds) {
      const keys = Object.keys(c.binds);
      if (keys.some((k) => !BIND_MODES.includes(k as BindMode))) errors.push('binds keys are transceiver, transmitter, receiver');
      if (!(c.binds.transceiver ?? 0) && !(c.binds.transmitter ?? 0)) errors.push('binds needs a transceiver or a transmitter');
    } else errors.push('binds must be a number or {transceiver, transmitter, receiver}');
  }
  for (const k of ['window', 'throughput', 'response_timeout_ms', 'enquire_link_ms', 'reconnect_min_ms', 'reconnect_max_ms', 'queue_limit', 'queue_timeout_ms'] as const) {
    if (c[k] !== undefined && !(typeof c[k] === 'number' && (c[k] as number) > 0)) errors.push(`${k} must be a positive number`);
  }
  // The dispatcher gives a submit 30 s (platform.ts, submitTimeoutMs); past that it records a
  // timeout and retries, so the connector must be done with the message before then.
  if ((Number(c.queue_timeout_ms ?? 15_000) || 0) + (Number(c.response_timeout_ms ?? 10_000) || 0) >= 30_000) errors.push('queue_timeout_ms + response_timeout_ms must stay under 30000');
  return errors;
}

export function resolveConfig(raw: Record<string, unknown>): Resolved {
  const c = raw as unknown as SmppConfig;
  let host = c.host.trim();
  let tls = c.tls === true;
  let urlPort: number | undefined;
  const m = /^(s?smpp):\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/i.exec(host);
  if (m) {
    tls ||= m[1].toLowerCase() === 'ssmpp';
    host = m[2].replace(/^\[|\]$/g, '');
    urlPort = m[3] ? Number(m[3]) : undefined;
  }
  const binds: BindMode[] = [];
  if (typeof c.binds === 'object' && c.binds) {
    for (const mode of BIND_MODES) for (let i = 0; i < (c.binds[mode] ?? 0); i++) binds.push(mode);
  } else for (let i = 0; i < (c.binds ?? 1); i++) binds.push('transceiver');
  return {
    host,
    port: c.port ?? urlPort ?? (tls ? 3550 : 2775),
    tls,
    systemId: c.system_id,
    password: c.password ?? '',
    systemType: c.system_type ?? '',
    binds,
    window: c.window ?? 10,
    throughput: c.throughput ?? null,
    responseTimeoutMs: c.response_timeout_ms ?? 10_000,
    enquireLinkMs: c.enquire_link_ms ?? 30_000,
    reconnectMinMs: c.reconnect_min_ms ?? 250,
    reconnectMaxMs: c.reconnect_max_ms ?? 30_000,
    queueLimit: c.queue_limit ?? 2000,
    queueTimeoutMs: c.queue_timeout_ms ?? 15_000,
    serviceType: c.service_type ?? '',
    registeredDelivery: c.registered_delivery ?? 1,
    tlsCa: c.tls_ca,
    tlsRejectUnauthorized: c.tls_reject_unauthorized ?? true,
    receiptErrors: { ...DEFAULT_RECEIPT_ERRORS, ...(c.receipt_errors ?? {}) },
  };
}

type PartResult = { ok: true; messageId: string } | { ok: false; errorClass: ErrorClass; code: string; message: string; providerCode?: string; retryAfterMs?: number };

interface PartJob {
  fields: Record<string, unknown>;
  deadline: number;
  resolve: (r: PartResult) => void;
  /**
   * Called synchronously with the submit_sm_resp, before anything else is read from the socket:
   * a receipt can arrive in the same read as the response, and must find its part known.
   */
  accepted?: (messageId: string) => void;
}

const fail = (errorClass: ErrorClass, code: string, message: string, extra: Partial<PartResult> = {}): PartResult => ({ ok: false, errorClass, code, message, ...extra }) as PartResult;

/** Addresses: E.164 goes international/ISDN without the '+'; letters go alphanumeric. */
function address(addr: string | null): { ton: number; npi: number; addr: string } {
  if (!addr) return { ton: 0, npi: 0, addr: '' };
  if (addr.startsWith('+')) return { ton: 1, npi: 1, addr: addr.slice(1) };
  if (/[^0-9]/.test(addr)) return { ton: 5, npi: 0, addr: addr.slice(0, 11) };
  return { ton: 0, npi: 1, addr };
}

/** An address from the SMSC back to our notation: international numbers get their '+'. */
function fromSmsc(addr: string, ton: number): string {
  if (!addr) return addr;
  if (ton === 1 || (ton === 0 && /^\d{11,15}$/.test(addr))) return addr.startsWith('+') ? addr : `+${addr}`;
  return addr;
}

// -----------------------------------------------------------------------------------------------

class Bind {
  state: 'connecting' | 'bound' | 'down' | 'stopped' = 'down';
  session: Session | null = null;
  readonly inFlight = new Map<number, { job: PartJob; timer: NodeJS.Timeout }>();
  failures = 0;
  boundSince: number | null = null;
  lastError: string | null = null;
  /** The last bind refusal was about credentials: submits fail AUTH_FAILED until a bind works. */
  authRefused: PartResult | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private keepAlive: NodeJS.Timeout | null = null;

  constructor(
    readonly index: number,
    readonly mode: BindMode,
    private c: SmppConnector,
    private cfg: Resolved,
  ) {}

  get canSubmit() {
    return this.mode !== 'receiver';
  }

  connect(): void {
    if (this.state === 'stopped') return;
    this.state = 'connecting';
    const cfg = this.cfg;
    const session = smpp.connect({
      host: cfg.host,
      port: cfg.port,
      tls: cfg.tls,
      ...(cfg.tls ? { ca: cfg.tlsCa, rejectUnauthorized: cfg.tlsRejectUnauthorized, servername: /^[\d.:]+$/.test(cfg.host) ? undefined : cfg.host } : {}),
    });
    this.session = session;
    // A peer that accepts TCP but never answers the bind is as down as one that refuses it.
    const bindTimer = setTimeout(() => {
      this.lastError = 'bind timed out';
      session.destroy();
    }, cfg.responseTimeoutMs);
    session.on(cfg.tls ? 'secureConnect' : 'connect', () => {
      const bind = new smpp.PDU(`bind_${this.mode}`, { system_id: cfg.systemId, password: cfg.password, system_type: cfg.systemType, interface_version: 0x34 });
      session.send(bind, (resp: PDU) => {
        clearTimeout(bindTimer);
        if (this.session !== session) return;
        if (resp.command_status !== 0) {
          const why = classifyStatus(resp.command_status);
          this.lastError = `bind refused: ${why.code} (${why.providerCode})`;
          this.authRefused = why.errorClass === 'AUTH_FAILED' ? fail('AUTH_FAILED', why.code, `The SMSC refused the bind: ${why.message}`, { providerCode: why.providerCode }) : null;
          session.destroy();
          this.c.onBindChange();
          return;
        }
        this.state = 'bound';
        this.failures = 0;
        this.authRefused = null;
        this.lastError = null;
        this.boundSince = Date.now();
        this.startKeepAlive(session);
        this.c.onBindChange();
      });
    });
    session.on('error', (err: NodeJS.ErrnoException) => {
      this.lastError = err.code ? `${err.code}` : err.message;
      // A socket error closes the socket anyway; a PDU the package cannot parse does not, and
      // the stream is unusable after it: drop the connection and bind again.
      session.destroy();
    });
    session.on('close', () => {
      clearTimeout(bindTimer);
      if (this.session === session) this.onClosed();
    });
    session.on('submit_sm_resp', (pdu: PDU) => this.onResponse(pdu));
    session.on('generic_nack', (pdu: PDU) => this.onResponse(pdu));
    session.on('deliver_sm', (pdu: PDU) => this.c.onDeliverSm(session, pdu));
    session.on('enquire_link', (pdu: PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: PDU) => {
      session.send(pdu.response());
      session.close();
    });
  }

  private startKeepAlive(session: Session) {
    this.keepAlive = setInterval(() => {
      let answered = false;
      const timer = setTimeout(() => {
        if (!answered && this.session === session) {
          this.lastError = 'enquire_link not answered';
          session.destroy();
        }
      }, this.cfg.responseTimeoutMs);
      const sent = session.send(new smpp.PDU('enquire_link', {}), () => {
        answered = true;
        clearTimeout(timer);
      });
      if (!sent) clearTimeout(timer);
    }, this.cfg.enquireLinkMs);
    this.keepAlive.unref();
  }

  /** Writes one submit_sm. The caller has already taken a throughput token and a window slot. */
  send(job: PartJob): void {
    const session = this.session!;
    const pdu = new smpp.PDU('submit_sm', job.fields);
    if (!session.send(pdu)) {
      job.resolve(fail('UNREACHABLE', 'CONNECTION_LOST', 'The SMPP connection closed before the submit could be written.'));
      return;
    }
    const seq = pdu.sequence_number;
    const timer = setTimeout(() => {
      if (!this.inFlight.delete(seq)) return;
      this.c.counters.submit_timeouts++;
      // The SMSC may still accept it; an answer arriving later is counted, not applied.
      job.resolve(fail('UNREACHABLE', 'SUBMIT_TIMEOUT', `No submit_sm_resp within ${this.cfg.responseTimeoutMs} ms.`));
      this.c.pump();
    }, this.cfg.responseTimeoutMs);
    this.inFlight.set(seq, { job, timer });
  }

  private onResponse(pdu: PDU) {
    const pending = this.inFlight.get(pdu.sequence_number);
    if (!pending) {
      if (pdu.command === 'submit_sm_resp') this.c.counters.late_responses++;
      return;
    }
    this.inFlight.delete(pdu.sequence_number);
    clearTimeout(pending.timer);
    if (pdu.command_status === 0 && pdu.command === 'submit_sm_resp') {
      this.c.onAccepted();
      const messageId = String(pdu.message_id ?? '');
      pending.job.accepted?.(messageId);
      pending.job.resolve({ ok: true, messageId });
    } else {
      const why = classifyStatus(pdu.command_status);
      let retryAfterMs: number | undefined;
      if (why.errorClass === 'RATE_LIMITED') retryAfterMs = this.c.onThrottled();
      pending.job.resolve(fail(why.errorClass, why.code, `The SMSC refused the submit: ${why.message}`, { providerCode: why.providerCode, retryAfterMs }));
    }
    this.c.pump();
  }

  private onClosed() {
    const wasBound = this.state === 'bound';
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = null;
    this.session = null;
    this.boundSince = null;
    // Everything written on this bind and not answered: the SMSC may or may not have it. Fail it
    // UNREACHABLE now so the dispatcher retries it, rather than letting it wait for a timeout.
    for (const [seq, { job, timer }] of this.inFlight) {
      clearTimeout(timer);
      this.inFlight.delete(seq);
      job.resolve(fail('UNREACHABLE', 'CONNECTION_LOST', 'The SMPP connection dropped before the SMSC answered the submit.'));
    }
    if (this.state === 'stopped') return;
    this.state = 'down';
    if (wasBound) this.c.counters.disconnects++;
    this.failures++;
    const exp = Math.min(this.cfg.reconnectMaxMs, this.cfg.reconnectMinMs * 2 ** Math.min(this.failures - 1, 16));
    const delay = Math.round(exp / 2 + (Math.random() * exp) / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.c.counters.reconnects++;
      this.connect();
    }, delay);
    this.c.onBindChange();
  }

  async stop(): Promise<void> {
    const wasBound = this.state === 'bound';
    this.state = 'stopped';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.keepAlive) clearInterval(this.keepAlive);
    const session = this.session;
    if (!session) return;
    await new Promise<void>((resolve) => {
      const done = setTimeout(() => {
        session.destroy();
        resolve();
      }, 1000);
      session.socket.once('close', () => {
        clearTimeout(done);
        resolve();
      });
      if (wasBound && session.send(new smpp.PDU('unbind', {}), () => session.close())) return;
      session.destroy();
    });
    this.onClosed();
  }
}

// -----------------------------------------------------------------------------------------------

/**
 * Receipts of multipart messages. Each part has its own message_id and its own receipt; the
 * message is `delivered` when EVERY part's receipt says DELIVRD, and takes the outcome of the
 * first part that reports a final failure (the text is incomplete at the handset). Either way
 * the platform receives ONE receipt, under the last part's id (the message's provider id).
 * In memory and bounded: after a restart of this process, the last part's receipt still
 * resolves the message by itself; other parts' receipts are then kept by the platform unmatched.
 */
interface Group {
  partIds: string[];
  /** The last part's id, once every part was accepted. */
  lastId: string | null;
  receipts: Map<string, Receipt>;
  reported: boolean;
}

const MAX_GROUPS = 100_000;
const GUARD_WINDOW_MS = 1050;

interface MoParts {
  parts: Map<number, string>;
  total: number;
  firstAt: number;
}

export class SmppConnector implements Connector {
  readonly type = 'smpp';
  readonly id: string;
  readonly capabilities: ConnectorCapabilities;
  readonly counters = { submitted_parts: 0, submit_timeouts: 0, late_responses: 0, throttled: 0, disconnects: 0, reconnects: 0, receipts: 0, receipts_not_final: 0, inbound: 0 };
  private cfg: Resolved | null;
  private configError: string | null;
  private binds: Bind[] = [];
  private queue: PartJob[] = [];
  private running = false;
  private tokens = 0;
  private tokensAt = 0;
  /** When recent parts were written (performance.now()), for the per-second guard. */
  private sendLog: number[] = [];
  private pausedUntil = 0;
  private throttleStreak = 0;
  private pumpTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private concatRef = Math.floor(Math.random() * 256);
  private groups = new Map<string, Group>();
  private mo = new Map<string, MoParts>();

  constructor(
    row: ConnectorRow,
    private deps: ConnectorDeps,
  ) {
    this.id = row.id;
    const problems = validateSmppConfig(row.config);
    this.configError = problems.length ? `invalid config: ${problems.join('; ')}` : null;
    this.cfg = problems.length ? null : resolveConfig(row.config);
    const txBinds = this.cfg ? this.cfg.binds.filter((b) => b !== 'receiver').length : 1;
    this.capabilities = { channels: [...CONNECTOR_CHANNELS.smpp], lookup: false, maxInFlight: txBinds * (this.cfg?.window ?? 10) };
  }

  async start(): Promise<void> {
    if (!this.cfg || this.running) return;
    this.running = true;
    this.tokens = this.burst;
    this.tokensAt = performance.now();
    this.binds = this.cfg.binds.map((mode, i) => new Bind(i, mode, this, this.cfg!));
    for (const b of this.binds) b.connect();
    this.sweepTimer = setInterval(() => this.sweep(), 250);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.pumpTimer = this.sweepTimer = null;
    for (const job of this.queue.splice(0)) job.resolve(fail('UNREACHABLE', 'CONNECTOR_STOPPED', 'The SMPP connector stopped before the submit was written.'));
    await Promise.all(this.binds.map((b) => b.stop()));
  }

  state(): ConnectorState {
    const up = this.binds.filter((b) => b.state === 'bound');
    const inFlight = this.binds.reduce((n, b) => n + b.inFlight.size, 0);
    const lastError = this.configError ?? this.binds.map((b) => b.lastError).find((e) => e) ?? null;
    return {
      status: !this.running ? 'stopped' : up.length > 0 ? 'up' : this.binds.some((b) => b.failures > 0) ? 'down' : 'starting',
      in_flight: inFlight,
      last_error: lastError,
      binds: this.binds.map((b) => ({ mode: b.mode, state: b.state, in_flight: b.inFlight.size, bound_since: b.boundSince ? new Date(b.boundSince).toISOString() : null, last_error: b.lastError })),
      binds_up: up.length,
      window: this.cfg?.window ?? null,
      window_in_use: inFlight,
      throughput: this.cfg?.throughput ?? null,
      queue_depth: this.queue.length,
      paused_until: this.pausedUntil > Date.now() ? new Date(this.pausedUntil).toISOString() : null,
      counters: { ...this.counters },
    };
  }

  // --- submit ---------------------------------------------------------------------------------

  async submit(m: OutboundMessage): Promise<SubmitResult> {
    if (!this.cfg) return { ok: false, errorClass: 'AUTH_FAILED', code: 'CONNECTOR_MISCONFIGURED', message: `The SMPP connector cannot start: ${this.configError}` };
    if (m.channel !== 'sms') return { ok: false, errorClass: 'FILTERED', code: 'CHANNEL_NOT_SUPPORTED', message: `SMPP carries sms, not ${m.channel}.` };
    if (!this.running) return { ok: false, errorClass: 'UNREACHABLE', code: 'CONNECTOR_STOPPED', message: 'The SMPP connector is not running.' };
    const refused = this.authRefusal();
    if (refused) return refused as SubmitResult;
    this.concatRef = (this.concatRef + 1) & 0xff;
    const enc = encodeText(m.body ?? '', m.encoding, this.concatRef);
    if (this.queue.length + enc.parts.length > this.cfg.queueLimit) {
      return { ok: false, errorClass: 'RATE_LIMITED', code: 'QUEUE_FULL', message: `The SMPP connector already has ${this.queue.length} parts waiting.`, retryAfterMs: 1000 };
    }
    const src = address(m.from);
    const dst = address(m.to);
    const base: Record<string, unknown> = {
      service_type: this.cfg.serviceType,
      source_addr_ton: src.ton,
      source_addr_npi: src.npi,
      source_addr: src.addr,
      dest_addr_ton: dst.ton,
      dest_addr_npi: dst.npi,
      destination_addr: dst.addr,
      registered_delivery: this.cfg.registeredDelivery,
      data_coding: enc.dataCoding,
    };
    if (m.expiresAt && m.expiresAt > this.deps.clock.now()) base.validity_period = new Date(m.expiresAt);
    const multipart = enc.parts.length > 1;
    const group: Group | null = multipart ? { partIds: [], lastId: null, receipts: new Map(), reported: false } : null;
    const ids: string[] = [];
    // One deadline for every part of the message: the last part is written by then or not at all.
    const deadline = Date.now() + this.cfg.queueTimeoutMs;
    // Parts go one after another: a refused part stops the message before the rest is sent.
    for (const [i, octets] of enc.parts.entries()) {
      const accepted = group
        ? (id: string) => {
            group.partIds.push(id);
            this.remember(id, group);
          }
        : undefined;
      const r = await this.enqueue({ ...base, esm_class: multipart ? 0x40 : 0, short_message: octets }, deadline, accepted);
      if (!r.ok) {
        if (group) for (const id of group.partIds) this.groups.delete(id);
        return { ...r, raw: { part: i + 1, parts: enc.parts.length, parts_accepted: ids } };
      }
      ids.push(r.messageId);
    }
    if (group) {
      group.lastId = ids.at(-1)!;
      await this.settleGroup(group);
    }
    return { ok: true, providerMessageId: ids.at(-1)!, raw: { parts: ids, data_coding: enc.dataCoding, encoding: enc.encoding } };
  }

  private authRefusal(): PartResult | null {
    const tx = this.binds.filter((b) => b.canSubmit);
    if (tx.some((b) => b.state === 'bound')) return null;
    return tx.find((b) => b.authRefused)?.authRefused ?? null;
  }

  private enqueue(fields: Record<string, unknown>, deadline: number, accepted?: (messageId: string) => void): Promise<PartResult> {
    return new Promise((resolve) => {
      this.queue.push({ fields, deadline, resolve, accepted });
      this.pump();
    });
  }

  private get burst(): number {
    const t = this.cfg?.throughput;
    return t ? Math.max(2, Math.floor(t / 20)) : Infinity;
  }

  /**
   * Writes queued parts while there is a bound bind with a free window slot and throughput left.
   * Throughput is two limits in one: a token bucket refilled at `throughput` per second with a
   * burst of 50 ms of traffic (at least 2, so a late timer does not lose rate), and a hard
   * guard that at most `throughput` parts leave within any 1,050 ms (the 50 ms margin absorbs
   * network jitter, so the SMSC never counts more than the limit in one of its seconds).
   */
  pump(): void {
    if (!this.running || !this.cfg) return;
    while (this.queue.length > 0) {
      const now = Date.now();
      if (this.pausedUntil > now) return this.wakeAt(this.pausedUntil - now);
      const bind = this.pickBind();
      if (!bind) return; // woken again by a response, a timeout or a bind coming up
      const t = this.cfg.throughput;
      if (t) {
        const at = performance.now();
        const rate = t / 1000;
        this.tokens = Math.min(this.burst, this.tokens + (at - this.tokensAt) * rate);
        this.tokensAt = at;
        if (this.tokens < 1) return this.wakeAt(Math.ceil((1 - this.tokens) / rate));
        const cap = Math.max(1, Math.floor(t));
        if (this.sendLog.length >= cap) {
          const oldest = this.sendLog[this.sendLog.length - cap];
          if (at - oldest < GUARD_WINDOW_MS) return this.wakeAt(Math.ceil(oldest + GUARD_WINDOW_MS - at));
        }
        this.tokens -= 1;
        this.sendLog.push(at);
        if (this.sendLog.length > cap * 2) this.sendLog.splice(0, this.sendLog.length - cap);
      }
      const job = this.queue.shift()!;
      if (job.deadline <= now) {
        // Too late to write it: the dispatcher may already have given up on this message.
        job.resolve(fail('UNREACHABLE', 'QUEUE_TIMEOUT', 'The submit waited too long for a free window slot.'));
        continue;
      }
      this.counters.submitted_parts++;
      bind.send(job);
    }
  }

  private wakeAt(ms: number) {
    if (this.pumpTimer) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null;
      this.pump();
    }, Math.max(1, ms));
  }

  private pickBind(): Bind | null {
    let best: Bind | null = null;
    for (const b of this.binds) {
      if (!b.canSubmit || b.state !== 'bound' || b.inFlight.size >= this.cfg!.window) continue;
      if (!best || b.inFlight.size < best.inFlight.size) best = b;
    }
    return best;
  }

  /** Fails parts that waited too long, so the dispatcher can retry or route elsewhere. */
  private sweep(): void {
    const now = Date.now();
    const refused = this.authRefusal();
    if (!this.queue.length) return;
    const bound = this.binds.some((b) => b.canSubmit && b.state === 'bound');
    this.queue = this.queue.filter((job) => {
      if (refused) {
        job.resolve(refused);
        return false;
      }
      if (job.deadline > now) return true;
      job.resolve(
        bound
          ? fail('UNREACHABLE', 'QUEUE_TIMEOUT', 'The submit waited too long for a free window slot.')
          : fail('UNREACHABLE', 'NOT_BOUND', 'No SMPP bind to the SMSC is up.'),
      );
      return false;
    });
  }

  onBindChange(): void {
    if (this.authRefusal()) this.sweep();
    this.pump();
  }

  onAccepted(): void {
    this.throttleStreak = 0;
  }

  /** ESME_RTHROTTLED or ESME_RMSGQFUL: every bind pauses, longer each time in a row. */
  onThrottled(): number {
    this.counters.throttled++;
    this.throttleStreak++;
    const pause = Math.min(5000, 100 * 2 ** Math.min(this.throttleStreak - 1, 6));
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + pause);
    return pause;
  }

  // --- what comes back --------------------------------------------------------------------------

  private remember(partId: string, group: Group) {
    this.groups.set(partId, group);
    while (this.groups.size > MAX_GROUPS) this.groups.delete(this.groups.keys().next().value!);
  }

  /** Reports a multipart message's receipt once it is known: all parts delivered, or one failed. */
  private async settleGroup(g: Group): Promise<void> {
    if (g.lastId && g.partIds.every((id) => g.receipts.has(id))) for (const id of g.partIds) this.groups.delete(id);
    if (g.reported || !g.lastId) return;
    const failed = g.partIds.map((id) => g.receipts.get(id)).find((r) => r && r.status !== 'delivered');
    const allDelivered = g.partIds.every((id) => g.receipts.get(id)?.status === 'delivered');
    if (!failed && !allDelivered) return;
    g.reported = true;
    const parts = g.partIds.map((id) => ({ id, stat: (g.receipts.get(id)?.raw as { stat?: string } | undefined)?.stat ?? null }));
    const base = failed ?? g.receipts.get(g.lastId)!;
    await this.deps.sink.receipt(this.id, { ...base, providerMessageId: g.lastId, raw: { ...(base.raw as object), parts } });
  }

  /** A deliver_sm: a delivery receipt or a mobile-originated message. Always answered. */
  async onDeliverSm(session: Session, pdu: PDU): Promise<void> {
    let status = 0;
    try {
      const esm = Number(pdu.esm_class ?? 0);
      const kind = esm & 0x3c;
      if (kind === 0x04 || kind === 0x20) await this.onReceipt(pdu);
      else if (kind === 0) await this.onMo(pdu);
      // 0x08 / 0x10 (SME delivery or user acknowledgement): nothing for us; answered below.
    } catch (err) {
      // The platform could not take it (database busy or down): a temporary error makes the
      // SMSC deliver it again later, so nothing is lost.
      status = smpp.errors.ESME_RX_T_APPN;
      for (const b of this.binds) if (b.session === session) b.lastError = `deliver_sm not stored: ${(err as Error).message}`;
    }
    session.send(pdu.response({ command_status: status }));
  }

  private textOf(pdu: PDU): { text: string; udh: Buffer[] } {
    const dc = Number(pdu.data_coding ?? 0);
    const pick = (v: unknown): { text: string; udh: Buffer[] } | null => {
      if (v === undefined || v === null) return null;
      if (typeof v === 'string') return { text: v, udh: [] };
      if (Buffer.isBuffer(v)) return v.length ? { text: decodeText(v, dc), udh: [] } : null;
      const o = v as { message?: unknown; udh?: Buffer[] };
      const msg = typeof o.message === 'string' ? o.message : Buffer.isBuffer(o.message) ? decodeText(o.message, dc) : '';
      return msg || o.udh?.length ? { text: msg, udh: o.udh ?? [] } : null;
    };
    return pick(pdu.short_message) ?? pick(pdu.message_payload) ?? { text: '', udh: [] };
  }

  private async onReceipt(pdu: PDU): Promise<void> {
    const { text } = this.textOf(pdu);
    const parsed = parseReceiptText(text);
    // The TLV is authoritative where present: some SMSCs print the id in decimal in the text
    // while submit_sm_resp gave it in hex.
    const id = (typeof pdu.receipted_message_id === 'string' && pdu.receipted_message_id) || parsed.id;
    const stat = parsed.stat ?? (pdu.message_state !== undefined ? MESSAGE_STATES[Number(pdu.message_state)] : undefined) ?? null;
    const raw = { stat, err: parsed.err, text, receipted_message_id: pdu.receipted_message_id ?? null, message_state: pdu.message_state ?? null, submit_date: parsed.submitDate, done_date: parsed.doneDate };
    const outcome = stat ? receiptOutcome(stat, parsed.err, this.cfg!.receiptErrors) : null;
    if (!id || !outcome) {
      // ENROUTE, ACCEPTD, UNKNOWN or unreadable: not a final state; the message stays `sent`.
      this.counters.receipts_not_final++;
      return;
    }
    this.counters.receipts++;
    const receipt: Receipt = { providerMessageId: id, ...outcome, providerCode: parsed.err ? `${stat}:${parsed.err}` : stat ?? undefined, raw };
    const group = this.groups.get(id);
    if (group) {
      group.receipts.set(id, receipt);
      await this.settleGroup(group);
      return;
    }
    await this.deps.sink.receipt(this.id, receipt);
  }

  private async onMo(pdu: PDU): Promise<void> {
    const { text, udh } = this.textOf(pdu);
    const from = fromSmsc(String(pdu.source_addr ?? ''), Number(pdu.source_addr_ton ?? 0));
    const to = fromSmsc(String(pdu.destination_addr ?? ''), Number(pdu.dest_addr_ton ?? 0));
    let body = text;
    const concat = concatInfo(udh);
    if (concat && concat.total > 1) {
      // A long inbound text arrives in parts: keep them (in memory, ten minutes at most) and hand
      // the platform one message once every part is in.
      const key = `${from}\u0000${to}\u0000${concat.ref}`;
      const now = Date.now();
      for (const [k, v] of this.mo) if (now - v.firstAt > 600_000) this.mo.delete(k);
      const entry = this.mo.get(key) ?? { parts: new Map(), total: concat.total, firstAt: now };
      entry.parts.set(concat.seq, text);
      this.mo.set(key, entry);
      if (entry.parts.size < entry.total) return;
      this.mo.delete(key);
      body = [...entry.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t).join('');
    }
    this.counters.inbound++;
    await this.deps.sink.inbound(this.id, { from, to, body, channel: 'sms', raw: { source_addr: pdu.source_addr, destination_addr: pdu.destination_addr, data_coding: pdu.data_coding ?? 0, esm_class: pdu.esm_class ?? 0 } });
  }
}
