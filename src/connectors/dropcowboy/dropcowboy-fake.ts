// A fake Drop Cowboy for tests, on 127.0.0.1, following its documented shapes: POST /rvm with
// x-key / x-secret and an Idempotency-Key (a UUID; the same key and body is the same send, a
// different body 409), 202 {"status": "queued", "message_id"}; 401 only when no credentials are
// sent at all (a wrong secret is accepted and fails later with reason 3007); RFC 9457 problems
// for malformed requests. Results go out as Drop Cowboy sends them: the unsigned callback to the
// send's callback_url (echoing foreign_id), and the signed contact.rvm.status webhook
// (X-Signature, X-Timestamp, X-Signature-Version, X-Event-Id) to a registered hook URL.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ProviderFakeServer, type FakeAnswer } from '../provider-fake-server.ts';
import { DROPCOWBOY_REASONS, dropCowboySignature } from './dropcowboy-connector.ts';

export interface DropCowboyFakeDrop {
  messageId: string;
  dropId: string;
  body: Record<string, unknown>;
  idempotencyKey: string;
  credentialsOk: boolean;
  headers: IncomingMessage['headers'];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const problem = (status: number, title: string, detail: string, code?: string): FakeAnswer => ({ status, body: { type: 'about:blank', title, status, detail, ...(code ? { code } : {}) }, headers: { 'content-type': 'application/problem+json' } });

export class DropCowboyFake extends ProviderFakeServer {
  readonly key = randomUUID();
  readonly secret = randomBytes(24).toString('hex');
  readonly signingSecret = `whsec_${randomBytes(24).toString('hex')}`;
  readonly teamId = randomUUID();
  drops: DropCowboyFakeDrop[] = [];
  /** Every POST /rvm, including repeats of one Idempotency-Key. */
  requests = 0;
  /** The URL registered as this account's contact.rvm.status webhook. */
  webhookUrl = '';
  /** Answer the next N sends 429, as the rate limit does (no Retry-After). */
  throttle = 0;

  protected async handle(req: IncomingMessage, raw: string): Promise<FakeAnswer> {
    if (req.url !== '/rvm') return problem(404, 'Not Found', `No route ${req.method} ${req.url}`);
    if (req.method !== 'POST') return problem(405, 'Method Not Allowed', 'POST /rvm');
    this.requests++;
    const key = req.headers['x-key'];
    const secret = req.headers['x-secret'];
    if (!key || !secret) return problem(401, 'Unauthorized', 'Send x-key and x-secret.');
    if (this.throttle > 0) {
      this.throttle--;
      return { status: 429, body: { message: 'Too Many Requests' } };
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw);
    } catch {
      return problem(400, 'Bad Request', 'The body is not JSON.');
    }
    const idem = String(req.headers['idempotency-key'] ?? '');
    if (idem && !UUID.test(idem)) return problem(400, 'Bad Request', 'Idempotency-Key must be a UUID.', 'invalid_idempotency_key');
    if (typeof body.to !== 'string' || !/^\+[1-9]\d{6,14}$/.test(body.to)) return problem(400, 'Bad Request', 'to must be a phone number in E.164.', 'invalid_to');
    const audio = ['media_id', 'audio_url', 'tts_body'].filter((f) => body[f] !== undefined);
    if (audio.length !== 1) return problem(400, 'Bad Request', 'Give exactly one of media_id, tts_body (with voice_id) or audio_url.', 'invalid_audio');
    if (body.phone_line_id !== undefined && body.caller_id !== undefined) return problem(400, 'Bad Request', 'Give phone_line_id or caller_id, not both.', 'invalid_sender');
    if (typeof body.foreign_id === 'string' && body.foreign_id.length > 256) return problem(400, 'Bad Request', 'foreign_id is at most 256 characters.', 'invalid_foreign_id');
    const earlier = idem ? this.drops.find((d) => d.idempotencyKey === idem) : undefined;
    if (earlier) {
      // The same key and body: the retry is skipped and answers as the first did.
      if (JSON.stringify(earlier.body) !== JSON.stringify(body)) return problem(409, 'Conflict', 'This Idempotency-Key was used with a different body.', '3027');
      return { status: 202, body: { status: 'queued', message_id: earlier.messageId } };
    }
    const drop: DropCowboyFakeDrop = { messageId: randomUUID(), dropId: randomUUID(), body, idempotencyKey: idem, credentialsOk: key === this.key && secret === this.secret, headers: req.headers };
    this.drops.push(drop);
    return { status: 202, body: { status: 'queued', message_id: drop.messageId } };
  }

  /** What Drop Cowboy reports for a drop: success (0), or failure with a reason code. */
  private outcome(drop: DropCowboyFakeDrop, reasonCode: number) {
    const code = drop.credentialsOk ? reasonCode : 3007;
    return { status: code === 0 ? 'success' : 'failure', reason: code === 0 ? '' : (DROPCOWBOY_REASONS[code]?.meaning ?? 'Unknown'), reason_code: code };
  }

  /** The unsigned callback to the send's callback_url. */
  async callback(drop: DropCowboyFakeDrop, reasonCode = 0, opts: { url?: string; foreignId?: string } = {}): Promise<Response> {
    const url = opts.url ?? String(drop.body.callback_url ?? '');
    if (!url) throw new Error('this send had no callback_url');
    const payload = {
      drop_id: drop.dropId,
      team_id: this.teamId,
      session_id: randomUUID(),
      log_id: randomUUID(),
      contact_id: randomUUID(),
      phone_number: drop.body.to,
      caller_id: drop.body.caller_id ?? '+12125550100',
      product_code: 'rvm',
      ...this.outcome(drop, reasonCode),
      quantity: 1,
      product_cost: 0.04,
      compliance_fee: 0,
      tts_fee: 0,
      dnc: reasonCode === 4016,
      attempt_date: new Date().toISOString(),
      foreign_id: opts.foreignId ?? drop.body.foreign_id,
      ...(reasonCode === 0 ? { proof_of_delivery_url: `https://api-v2.dropcowboy.com/campaign/public/receipts/${randomBytes(24).toString('base64url')}` } : {}),
    };
    return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  }

  /** The signed contact.rvm.status webhook to the registered hook URL (3007 never goes here). */
  async webhook(drop: DropCowboyFakeDrop, reasonCode = 0, opts: { signWith?: string; timestamp?: number; version?: string } = {}): Promise<Response> {
    const eventId = randomUUID();
    const payload = JSON.stringify({
      event_id: eventId,
      event: 'contact.rvm.status',
      event_at: Date.now(),
      data: { team_id: this.teamId, contact_id: randomUUID(), drop_id: drop.dropId, campaign_id: null, campaign_type: 'rvm', ...this.outcome(drop, reasonCode), to: drop.body.to, from: drop.body.caller_id ?? '+12125550100' },
    });
    const ts = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
    return fetch(this.webhookUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-signature': dropCowboySignature(opts.signWith ?? this.signingSecret, ts, payload),
        'x-timestamp': ts,
        'x-signature-version': opts.version ?? 'v1',
        'x-event-id': eventId,
        'x-attempt': '1',
      },
      body: payload,
    });
  }

  /** Downloads a drop's audio_url, as Drop Cowboy does before it dials. */
  async downloadAudio(drop: DropCowboyFakeDrop): Promise<{ status: number; contentType: string | null; data: Buffer }> {
    const res = await fetch(String(drop.body.audio_url));
    return { status: res.status, contentType: res.headers.get('content-type'), data: Buffer.from(await res.arrayBuffer()) };
  }
}
