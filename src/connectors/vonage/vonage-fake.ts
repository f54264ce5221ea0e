// A fake Vonage SMS API for tests, on 127.0.0.1: POST /sms/json as documented (form-encoded,
// api_key/api_secret in the body, HTTP 200 with messages[].status), and the signed webhooks
// Vonage sends: delivery receipts (POST JSON here) and inbound messages (GET query parameters,
// Vonage's default), signed with the signature secret, or wrongly when a test asks. Also the
// Messages API's POST /v1/messages for MMS (HTTP Basic, 202 {message_uuid} or an RFC 7807
// problem) and its status webhooks, signed with a JWT over the body's hash.
import { ProviderFakeServer, type FakeAnswer } from '../provider-fake-server.ts';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { signVonageJwt, vonageSignature, type VonageSignatureMethod } from './vonage-connector.ts';

export interface VonageFakeMessage {
  id: string;
  params: URLSearchParams;
}

export interface VonageFakeMms {
  uuid: string;
  body: Record<string, unknown>;
}

export class VonageFake extends ProviderFakeServer {
  mms: VonageFakeMms[] = [];
  readonly apiKey = randomBytes(4).toString('hex');
  readonly apiSecret = randomBytes(8).toString('hex');
  readonly signatureSecret = randomBytes(16).toString('hex');
  method: VonageSignatureMethod = 'sha256';
  messages: VonageFakeMessage[] = [];
  /** Recipients (digits, no '+') the fake refuses, with the status and error-text it answers. */
  refuse = new Map<string, { status: string; errorText: string }>();

  private problem(status: number, code: string, title: string, detail: string): FakeAnswer {
    return { status, body: { type: `https://developer.nexmo.com/api-errors/messages#${code}`, title, detail, instance: randomBytes(8).toString('hex') }, headers: { 'content-type': 'application/problem+json' } };
  }

  private messagesApi(req: IncomingMessage, raw: string): FakeAnswer {
    const basic = `Basic ${Buffer.from(`${this.apiKey}:${this.apiSecret}`).toString('base64')}`;
    if (req.headers.authorization !== basic) return this.problem(401, '1010', 'Unauthorized', 'You did not provide correct credentials.');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw);
    } catch {
      return this.problem(422, '1000', 'Invalid params', 'The body is not JSON.');
    }
    const type = body.message_type as string;
    const media = body[type] as { url?: unknown } | undefined;
    if (body.channel !== 'mms' || !['image', 'video', 'audio', 'vcard'].includes(type) || typeof media?.url !== 'string' || typeof body.to !== 'string' || typeof body.from !== 'string') {
      return this.problem(422, '1150', 'Invalid params', 'The value of one or more parameters is invalid.');
    }
    const refusal = this.refuse.get(body.to);
    if (refusal) return this.problem(Number(refusal.status), '1020', refusal.errorText, 'Refused by the fake.');
    const uuid = crypto.randomUUID();
    this.mms.push({ uuid, body });
    return { status: 202, body: { message_uuid: uuid } };
  }

  /** A Messages API status webhook for an MMS the fake accepted, signed with a JWT (or wrongly, or with a body that no longer matches its hash). */
  async mmsStatus(uuid: string, status: string, opts: { wrong?: boolean; tamper?: boolean; error?: { type: string; title: string } } = {}): Promise<Response> {
    const msg = this.mms.find((x) => x.uuid === uuid);
    if (!msg) throw new Error(`no MMS ${uuid}`);
    const payload = { message_uuid: uuid, to: msg.body.to, from: msg.body.from, timestamp: new Date().toISOString(), status, channel: 'mms', client_ref: msg.body.client_ref, ...(opts.error ? { error: opts.error } : {}) };
    const body = JSON.stringify(payload);
    const token = signVonageJwt({ iat: Math.floor(Date.now() / 1000), jti: randomBytes(8).toString('hex'), iss: 'Vonage', payload_hash: createHash('sha256').update(body).digest('hex'), api_key: this.apiKey }, opts.wrong ? 'not-the-secret' : this.signatureSecret);
    return fetch(String(msg.body.webhook_url), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: opts.tamper ? body.replace(status, 'delivered') : body });
  }

  protected async handle(req: IncomingMessage, raw: string): Promise<FakeAnswer> {
    if (req.url === '/v1/messages' && req.method === 'POST') return this.messagesApi(req, raw);
    if (req.url !== '/sms/json' || req.method !== 'POST') return { status: 404, body: {} };
    const params = new URLSearchParams(raw);
    const to = params.get('to') ?? '';
    const one = (m: Record<string, string>) => ({ status: 200, body: { 'message-count': '1', messages: [m] } });
    if (params.get('api_key') !== this.apiKey || params.get('api_secret') !== this.apiSecret) return one({ status: '4', 'error-text': 'Bad Credentials' });
    if (!to || !params.get('from') || !params.get('text')) return one({ status: '2', 'error-text': 'Missing to, from or text' });
    const refusal = this.refuse.get(to);
    if (refusal) return one({ to, status: refusal.status, 'error-text': refusal.errorText });
    const id = randomBytes(8).toString('hex').toUpperCase();
    this.messages.push({ id, params });
    return one({ to, 'message-id': id, status: '0', 'remaining-balance': '3.14159265', 'message-price': '0.03330000', network: '12345', 'client-ref': params.get('client-ref') ?? '' });
  }

  private sign(params: Record<string, string>, wrong: boolean, timestamp?: number): Record<string, string> {
    const p: Record<string, string> = { ...params, timestamp: String(timestamp ?? Math.floor(Date.now() / 1000)), nonce: randomBytes(8).toString('hex') };
    p.sig = vonageSignature(p, wrong ? 'not-the-secret' : this.signatureSecret, this.method);
    return p;
  }

  /** A delivery receipt for a message the fake accepted, POSTed as JSON to its callback URL. */
  async receipt(id: string, status: string, opts: { errCode?: string; wrong?: boolean; timestamp?: number } = {}): Promise<Response> {
    const msg = this.messages.find((x) => x.id === id);
    if (!msg) throw new Error(`no message ${id}`);
    const callback = msg.params.get('callback');
    if (!callback) throw new Error(`message ${id} had no callback`);
    const p = this.sign(
      {
        msisdn: msg.params.get('to') ?? '',
        to: msg.params.get('from') ?? '',
        'network-code': '12345',
        messageId: id,
        price: '0.03330000',
        status,
        scts: '2601051500',
        'err-code': opts.errCode ?? '0',
        'api-key': this.apiKey,
        'client-ref': msg.params.get('client-ref') ?? '',
        'message-timestamp': new Date().toISOString().slice(0, 19).replace('T', ' '),
      },
      opts.wrong ?? false,
      opts.timestamp,
    );
    return fetch(callback, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(p) });
  }

  /** An inbound message, as a GET with query parameters (Vonage's default). */
  async inbound(url: string, m: { from: string; to: string; text: string }, opts: { wrong?: boolean } = {}): Promise<Response> {
    const p = this.sign(
      { msisdn: m.from.replace(/^\+/, ''), to: m.to.replace(/^\+/, ''), messageId: randomBytes(8).toString('hex').toUpperCase(), text: m.text, type: 'text', keyword: m.text.split(' ')[0]!.toUpperCase(), 'api-key': this.apiKey, 'message-timestamp': new Date().toISOString().slice(0, 19).replace('T', ' ') },
      opts.wrong ?? false,
    );
    return fetch(`${url}?${new URLSearchParams(p).toString()}`);
  }
}
