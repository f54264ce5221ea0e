// A test SMSC: a real SMPP v3.4 server on 127.0.0.1 (the `smpp` package's server side), for the
// SMPP connector's tests and for benchmarks. It accepts binds with a password check, answers
// submit_sm with a message id, sends delivery receipts (the appendix-B text plus the
// receipted_message_id and message_state TLVs), and keeps what it has not yet delivered across
// kill() / restart() the way a real SMSC's store does, so "nothing lost" can be tested.
// Knobs: throttle (answer ESME_RTHROTTLED), responseDelayMs, dropResponses, ignoreEnquireLink,
// outcome per message, sendMo(); it records every submit_sm it received and when, for window and rate measurements.
import type { Socket } from 'node:net';
import smpp, { type PDU, type Server, type Session } from 'smpp';

export interface SmscOutcome {
  /** DELIVRD, UNDELIV, REJECTD, EXPIRED, DELETED, UNKNOWN, ENROUTE… */
  stat: string;
  err?: string;
}

export interface SmscOptions {
  systemId?: string;
  password?: string;
  /** TLS: the server's key and certificate (PEM). */
  tls?: { key: string; cert: string };
  /** Delay before a receipt is sent. Default 20 ms. */
  receiptDelayMs?: number;
  /** The receipt for a message; null sends none. Default: DELIVRD. */
  outcome?: (m: SmscMessage) => SmscOutcome | null;
  /**
   * How receipts carry the id: `tlv` (receipted_message_id and message_state TLVs, and the id
   * in the text; the default), `text` (the text only, as SMPP 3.3-era SMSCs do), or
   * `tlv-decimal-text` (TLVs, and the text with the id in decimal, a known SMSC quirk).
   */
  receiptIds?: 'tlv' | 'text' | 'tlv-decimal-text';
  /** deliver_sm receipts awaiting their deliver_sm_resp, at most, across sessions. Default: no limit. */
  receiptWindow?: number;
}

export interface SmscMessage {
  id: string;
  systemId: string;
  from: string;
  to: string;
  dataCoding: number;
  esmClass: number;
  registeredDelivery: number;
  /** validity_period as the `smpp` package decodes it (an ISO time), or '' when absent. */
  validityPeriod: string;
  text: string;
  /** UDH information elements, `[iei, len, ...data]` each. */
  udh: Buffer[];
  receivedAt: number;
}

interface PendingReceipt {
  m: SmscMessage;
  outcome: SmscOutcome;
  due: number;
  sending: Session | null;
}

const STATE: Record<string, number> = { ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

function smppDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

export function receiptText(m: SmscMessage, o: SmscOutcome, done = new Date(), id = m.id): string {
  const delivered = o.stat === 'DELIVRD' ? '001' : '000';
  return `id:${id} sub:001 dlvrd:${delivered} submit date:${smppDate(new Date(m.receivedAt))} done date:${smppDate(done)} stat:${o.stat} err:${o.err ?? '000'} text:${m.text.slice(0, 20)}`;
}

export class TestSmsc {
  port = 0;
  /** Every submit_sm accepted, in order. */
  readonly messages: SmscMessage[] = [];
  /** When each submit_sm arrived (accepted or not). */
  readonly submitTimes: number[] = [];
  /** Binds accepted so far, with their mode. */
  readonly binds: Array<{ mode: string; systemId: string; at: number }> = [];
  readonly refusedBinds: string[] = [];
  /** Answer the next N submit_sm with ESME_RTHROTTLED. */
  throttle = 0;
  responseDelayMs = 0;
  /** Never answer submit_sm (the connector's response timeout is then what ends them). */
  dropResponses = false;
  /** The most submit_sm awaiting an answer on one session at once. */
  maxOutstanding = 0;
  /** enquire_link PDUs received. */
  enquireLinks = 0;
  /** Stop answering enquire_link (a peer that hangs without closing the connection). */
  ignoreEnquireLink = false;
  private server: Server | null = null;
  private pending = new Map<string, PendingReceipt>();
  /** Receipts written and not yet answered, for receiptWindow. */
  private receiptsInFlight = 0;
  private bound = new Map<Session, { mode: string; systemId: string; outstanding: number }>();
  private sockets = new Set<Socket>();
  private ticker: NodeJS.Timeout | null = null;
  private nextId = 0;
  readonly systemId: string;
  readonly password: string;

  constructor(private opts: SmscOptions = {}) {
    this.systemId = opts.systemId ?? 'switchboard';
    this.password = opts.password ?? 'secret1';
  }

  /** Listens on 127.0.0.1 (a free port the first time, the same port after a kill). */
  async start(): Promise<number> {
    const server = smpp.createServer(this.opts.tls ?? {}, (session) => this.onSession(session));
    // Sessions come through the `smpp` listener; plain sockets are tracked to kill them hard.
    server.on(this.opts.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as { port: number }).port;
    this.ticker = setInterval(() => this.flushReceipts(), 5);
    return this.port;
  }

  /** Dies abruptly: every connection reset, the listener closed. Undelivered receipts are kept. */
  async kill(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) {
      const hard = (s as Socket & { resetAndDestroy?: () => void }).resetAndDestroy;
      if (hard && !this.opts.tls) hard.call(s);
      else s.destroy();
    }
    this.sockets.clear();
    this.bound.clear();
    for (const p of this.pending.values()) p.sending = null;
    this.receiptsInFlight = 0;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  restart(): Promise<number> {
    return this.start();
  }

  stop(): Promise<void> {
    return this.kill();
  }

  /** Sessions bound now, by mode. */
  boundSessions(): Array<{ mode: string; systemId: string }> {
    return [...this.bound.values()].map(({ mode, systemId }) => ({ mode, systemId }));
  }

  /** The most submit_sm that arrived within any calendar second (the SMSC's own count). */
  maxPerSecond(since = 0): number {
    const buckets = new Map<number, number>();
    for (const t of this.submitTimes) if (t >= since) buckets.set(Math.floor(t / 1000), (buckets.get(Math.floor(t / 1000)) ?? 0) + 1);
    return Math.max(0, ...buckets.values());
  }

  /** The most submit_sm that arrived within any sliding window of `ms`. */
  maxInWindow(ms: number, since = 0): number {
    const ts = this.submitTimes.filter((t) => t >= since);
    let best = 0;
    for (let i = 0, j = 0; i < ts.length; i++) {
      while (ts[i] - ts[j] >= ms) j++;
      best = Math.max(best, i - j + 1);
    }
    return best;
  }

  pendingReceipts(): number {
    return this.pending.size;
  }

  /** A mobile-originated message to the bound ESME; resolves with the deliver_sm_resp status. */
  sendMo(mo: { from: string; to: string; text: string; dataCoding?: number; udh?: Buffer }): Promise<number> {
    const session = this.receiverFor(this.systemId);
    if (!session) return Promise.reject(new Error('no receiver bound'));
    const pdu = new smpp.PDU('deliver_sm', {
      source_addr_ton: 1,
      source_addr_npi: 1,
      source_addr: mo.from.replace(/^\+/, ''),
      dest_addr_ton: 1,
      dest_addr_npi: 1,
      destination_addr: mo.to.replace(/^\+/, ''),
      esm_class: 0,
      data_coding: mo.dataCoding ?? 0,
      short_message: mo.udh ? { udh: mo.udh, message: mo.text } : mo.text,
    });
    return new Promise((resolve) => session.send(pdu, (resp: PDU) => resolve(resp.command_status)));
  }

  private receiverFor(systemId: string): Session | null {
    for (const [s, b] of this.bound) if (b.systemId === systemId && b.mode !== 'transmitter' && s.socket.writable) return s;
    return null;
  }

  private onSession(session: Session) {
    session.on('error', () => {});
    session.on('close', () => {
      this.bound.delete(session);
      for (const p of this.pending.values())
        if (p.sending === session) {
          p.sending = null;
          this.receiptsInFlight--;
        }
    });
    for (const mode of ['transceiver', 'transmitter', 'receiver']) {
      session.on(`bind_${mode}`, (pdu: PDU) => {
        if (pdu.system_id !== this.systemId || pdu.password !== this.password) {
          this.refusedBinds.push(String(pdu.system_id));
          session.send(pdu.response({ command_status: smpp.errors.ESME_RINVPASWD }));
          session.close();
          return;
        }
        this.bound.set(session, { mode, systemId: pdu.system_id, outstanding: 0 });
        this.binds.push({ mode, systemId: pdu.system_id, at: Date.now() });
        session.send(pdu.response({ system_id: 'TESTSMSC' }));
      });
    }
    session.on('enquire_link', (pdu: PDU) => {
      this.enquireLinks++;
      if (!this.ignoreEnquireLink) session.send(pdu.response());
    });
    session.on('unbind', (pdu: PDU) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('submit_sm', (pdu: PDU) => this.onSubmit(session, pdu));
  }

  private onSubmit(session: Session, pdu: PDU) {
    this.submitTimes.push(Date.now());
    const b = this.bound.get(session);
    if (!b || b.mode === 'receiver') {
      session.send(pdu.response({ command_status: smpp.errors.ESME_RINVBNDSTS }));
      return;
    }
    if (this.throttle > 0) {
      this.throttle--;
      session.send(pdu.response({ command_status: smpp.errors.ESME_RTHROTTLED }));
      return;
    }
    b.outstanding++;
    this.maxOutstanding = Math.max(this.maxOutstanding, b.outstanding);
    if (this.dropResponses) return;
    const sm = pdu.short_message as { message?: string; udh?: Buffer[] } | string | Buffer;
    const text = typeof sm === 'string' ? sm : Buffer.isBuffer(sm) ? sm.toString('latin1') : typeof sm?.message === 'string' ? sm.message : '';
    const m: SmscMessage = {
      id: (++this.nextId).toString(16).padStart(8, '0'),
      systemId: b.systemId,
      from: String(pdu.source_addr),
      to: String(pdu.destination_addr),
      dataCoding: Number(pdu.data_coding ?? 0),
      esmClass: Number(pdu.esm_class ?? 0),
      registeredDelivery: Number(pdu.registered_delivery ?? 0),
      validityPeriod: pdu.validity_period instanceof Date ? pdu.validity_period.toISOString() : String(pdu.validity_period ?? ''),
      text,
      udh: typeof sm === 'object' && !Buffer.isBuffer(sm) ? (sm.udh ?? []) : [],
      receivedAt: Date.now(),
    };
    const answer = () => {
      b.outstanding--;
      if (!session.send(pdu.response({ message_id: m.id }))) return; // connection gone: never accepted
      this.messages.push(m);
      const outcome = (this.opts.outcome ?? (() => ({ stat: 'DELIVRD' })))(m);
      if (outcome && m.registeredDelivery & 0x03) this.pending.set(m.id, { m, outcome, due: Date.now() + (this.opts.receiptDelayMs ?? 20), sending: null });
    };
    if (this.responseDelayMs > 0) setTimeout(answer, this.responseDelayMs);
    else answer();
  }

  /** Sends due receipts to a bound receiver; a receipt stays until its deliver_sm_resp is OK. */
  private flushReceipts() {
    const now = Date.now();
    const window = this.opts.receiptWindow ?? Infinity;
    for (const p of this.pending.values()) {
      if (this.receiptsInFlight >= window) return;
      if (p.sending || p.due > now) continue;
      const session = this.receiverFor(p.m.systemId);
      if (!session) continue;
      const style = this.opts.receiptIds ?? 'tlv';
      const textId = style === 'tlv-decimal-text' ? String(parseInt(p.m.id, 16)) : p.m.id;
      const pdu = new smpp.PDU('deliver_sm', {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: p.m.to,
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: p.m.from,
        esm_class: 0x04,
        data_coding: 0,
        short_message: receiptText(p.m, p.outcome, new Date(), textId),
        ...(style === 'text' ? {} : { receipted_message_id: p.m.id, message_state: STATE[p.outcome.stat] ?? 7 }),
      });
      p.sending = session;
      this.receiptsInFlight++;
      session.send(pdu, (resp: PDU) => {
        // A session that closed already gave its receipts back (onSession's close handler).
        if (p.sending === session) this.receiptsInFlight--;
        if (resp.command_status === 0) this.pending.delete(p.m.id);
        else {
          p.sending = null;
          p.due = Date.now() + 200;
        }
      });
    }
  }
}

// Run on its own for a benchmark or by hand:
//   node --import tsx test/smsc.ts [--port 2775] [--system-id switchboard] [--password secret1]
//     [--receipt-delay-ms 20] [--receipt-window N]
// Started with an IPC channel (child_process.fork or stdio 'ipc'), it answers the message
// `'stats'` with SmscStats, so that a benchmark can count what the SMSC received.
export interface SmscStats {
  /** submit_sm that arrived, accepted or not. */
  submits: number;
  /** submit_sm answered with a message id. */
  accepted: number;
  /** Distinct (destination, text) pairs accepted: with a unique text per message, messages. */
  distinct: number;
  /** Of those, accepted more than once: messages submitted twice (or more). */
  duplicated: number;
  receiptsPending: number;
  maxOutstanding: number;
  binds: number;
}

export function smscStats(smsc: TestSmsc): SmscStats {
  const seen = new Map<string, number>();
  for (const m of smsc.messages) {
    const key = `${m.to}\u0000${m.text}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  let duplicated = 0;
  for (const n of seen.values()) if (n > 1) duplicated++;
  return { submits: smsc.submitTimes.length, accepted: smsc.messages.length, distinct: seen.size, duplicated, receiptsPending: smsc.pendingReceipts(), maxOutstanding: smsc.maxOutstanding, binds: smsc.binds.length };
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const smsc = new TestSmsc({
    systemId: arg('system-id'),
    password: arg('password'),
    receiptDelayMs: arg('receipt-delay-ms') === undefined ? undefined : Number(arg('receipt-delay-ms')),
    receiptWindow: arg('receipt-window') === undefined ? undefined : Number(arg('receipt-window')),
  });
  smsc.port = Number(arg('port') ?? 2775);
  await smsc.start();
  console.log(`test SMSC listening on 127.0.0.1:${smsc.port} (system_id ${smsc.systemId})`);
  let counted = 0;
  const report = setInterval(() => {
    const n = smsc.submitTimes.length;
    if (n > counted) console.log(`${n - counted} submit_sm in the last second, ${smsc.messages.length} accepted in all`);
    counted = n;
  }, 1000);
  process.on('message', (m) => {
    if (m === 'stats') process.send?.({ stats: smscStats(smsc) });
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    clearInterval(report);
    process.removeAllListeners('message');
    process.disconnect?.();
    void smsc.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // A benchmark that dies leaves no SMSC behind: the IPC channel closes with it.
  if (process.send) process.on('disconnect', stop);
}
