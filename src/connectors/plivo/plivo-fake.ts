// A fake Plivo for tests, on 127.0.0.1: POST /v1/Account/{auth_id}/Message/ as documented (JSON,
// HTTP Basic, 202 with message_uuid[], errors as {api_id, error}), and the callbacks Plivo
// makes — status callbacks and inbound messages, form-encoded — signed with X-Plivo-Signature-V3
// and its nonce, or wrongly when a test asks.
import { ProviderFakeServer, type FakeAnswer } from '../provider-fake-server.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { plivoSignatureV3 } from './plivo-connector.ts';

export interface PlivoFakeMessage {
  uuid: string;
  body: Record<string, unknown>;
}

export class PlivoFake extends ProviderFakeServer {
  readonly authId = `MA${randomBytes(9).toString('hex').toUpperCase()}`;
  readonly authToken = randomBytes(20).toString('hex');
  messages: PlivoFakeMessage[] = [];
  /** Recipients (digits, no '+') the fake refuses, with the HTTP status and error text. */
  refuse = new Map<string, { status: number; error: string }>();

  protected async handle(req: IncomingMessage, raw: string): Promise<FakeAnswer> {
    const apiId = randomUUID();
    const m = /^\/v1\/Account\/([^/]+)\/Message\/$/.exec(req.url ?? '');
    if (!m || req.method !== 'POST') return { status: 404, body: { api_id: apiId, error: 'not found' } };
    if (req.headers.authorization !== `Basic ${Buffer.from(`${this.authId}:${this.authToken}`).toString('base64')}` || m[1] !== this.authId) {
      return { status: 401, body: { api_id: apiId, error: 'Authentication credentials invalid' } };
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw);
    } catch {
      return { status: 400, body: { api_id: apiId, error: 'invalid json data sent' } };
    }
    const dst = String(body.dst ?? '');
    if (!/^\d{6,15}$/.test(dst)) return { status: 400, body: { api_id: apiId, error: 'dst parameter is invalid' } };
    if (!body.src && !body.powerpack_uuid) return { status: 400, body: { api_id: apiId, error: 'Either of src or powerpack_uuid is required' } };
    const refusal = this.refuse.get(dst);
    if (refusal) return { status: refusal.status, body: { api_id: apiId, error: refusal.error } };
    const uuid = randomUUID();
    this.messages.push({ uuid, body });
    return { status: 202, body: { api_id: apiId, message: 'message(s) queued', message_uuid: [uuid] } };
  }

  /** POSTs a form to one of the platform's hooks, signed V3 with the auth token (or another). */
  async post(url: string, params: Record<string, string>, opts: { signWith?: string } = {}): Promise<Response> {
    const nonce = randomBytes(10).toString('hex');
    const signature = plivoSignatureV3(opts.signWith ?? this.authToken, url, nonce, Object.entries(params));
    return fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-plivo-signature-v3': signature, 'x-plivo-signature-v3-nonce': nonce },
      body: new URLSearchParams(params).toString(),
    });
  }

  /** A status callback for a message the fake accepted, to the url it was given. */
  async status(uuid: string, status: string, opts: { errorCode?: string; signWith?: string } = {}): Promise<Response> {
    const msg = this.messages.find((x) => x.uuid === uuid);
    if (!msg) throw new Error(`no message ${uuid}`);
    const url = msg.body.url as string | undefined;
    if (!url) throw new Error(`message ${uuid} had no url`);
    const params: Record<string, string> = {
      From: String(msg.body.src ?? ''),
      To: String(msg.body.dst ?? ''),
      Status: status,
      MessageUUID: uuid,
      ParentMessageUUID: uuid,
      PartInfo: '1 of 1',
      Sequence: '1',
      TotalAmount: '0.00500',
      TotalRate: '0.00500',
      Units: '1',
      MCC: '310',
      MNC: '260',
      MessageTime: new Date().toISOString().slice(0, 19).replace('T', ' '),
    };
    if (opts.errorCode) params.ErrorCode = opts.errorCode;
    return this.post(url, params, opts);
  }

  /** An inbound message, as Plivo posts it to the application's message URL. */
  async inbound(url: string, m: { from: string; to: string; text: string; mediaUrls?: string[] }, opts: { signWith?: string } = {}): Promise<Response> {
    const params: Record<string, string> = {
      From: m.from.replace(/^\+/, ''),
      To: m.to.replace(/^\+/, ''),
      Type: m.mediaUrls?.length ? 'mms' : 'sms',
      Text: m.text,
      MessageUUID: randomUUID(),
      TotalAmount: '0',
      TotalRate: '0',
      Units: '1',
    };
    if (m.mediaUrls?.length) {
      params.MediaCount = String(m.mediaUrls.length);
      for (const [i, u] of m.mediaUrls.entries()) params[`Media${i}`] = u;
    }
    return this.post(url, params, opts);
  }
}
