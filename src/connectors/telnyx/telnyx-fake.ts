// A fake Telnyx for tests, on 127.0.0.1: POST /v2/messages as documented (JSON, Bearer API key,
// {data: {...}} or {errors: [{code, title, detail}]}), and the webhooks Telnyx sends —
// message.finalized and message.received events — signed with its own Ed25519 key, or with
// another key when a test asks.
import { ProviderFakeServer, type FakeAnswer } from '../provider-fake-server.ts';
import { generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface TelnyxFakeMessage {
  id: string;
  body: Record<string, unknown>;
}

const keyPair = () => generateKeyPairSync('ed25519');
const rawPublic = (k: KeyObject) => k.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');

export class TelnyxFake extends ProviderFakeServer {
  readonly apiKey = `KEY${randomBytes(16).toString('hex')}`;
  private keys = keyPair();
  /** What the portal shows as the public key: base64 of the raw 32 bytes. */
  readonly publicKey = rawPublic(this.keys.publicKey);
  messages: TelnyxFakeMessage[] = [];
  refuse = new Map<string, { code: string; status: number; title: string; detail: string }>();

  protected async handle(req: IncomingMessage, raw: string): Promise<FakeAnswer> {
    const error = (status: number, code: string, title: string, detail: string) => ({ status, body: { errors: [{ code, title, detail }] } });
    if (req.url !== '/v2/messages' || req.method !== 'POST') return error(404, '10005', 'Resource not found', 'The requested resource or URL could not be found.');
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return error(401, '10009', 'Authentication failed', 'The required authentication headers were either invalid or not included in the request.');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw);
    } catch {
      return error(400, '10015', 'Bad Request', 'The request failed because it was not well-formed.');
    }
    const to = String(body.to ?? '');
    if (!/^\+\d{6,15}$/.test(to)) return error(422, '10016', 'Phone number must be in +E.164 format', 'The specified phone number parameter must be in +E.164 format.');
    const refusal = this.refuse.get(to);
    if (refusal) return error(refusal.status, refusal.code, refusal.title, refusal.detail);
    const id = randomUUID();
    this.messages.push({ id, body });
    const media = (body.media_urls as string[] | undefined) ?? [];
    return {
      status: 200,
      body: {
        data: {
          record_type: 'message',
          direction: 'outbound',
          id,
          type: media.length > 0 ? 'MMS' : 'SMS',
          messaging_profile_id: body.messaging_profile_id ?? null,
          from: { phone_number: body.from, carrier: 'Telnyx', line_type: 'Wireless' },
          to: [{ phone_number: to, status: 'queued', carrier: 'T-MOBILE USA, INC.', line_type: 'Wireless' }],
          text: body.text ?? '',
          media: media.map((url) => ({ url, content_type: null, sha256: null, size: null })),
          webhook_url: body.webhook_url ?? null,
          encoding: 'GSM-7',
          parts: 1,
          errors: [],
        },
      },
    };
  }

  /** POSTs an event to a URL, signed `${timestamp}|${body}` with the fake's key (or another). */
  async post(url: string, data: Record<string, unknown>, opts: { wrongKey?: boolean; timestamp?: number } = {}): Promise<Response> {
    const body = JSON.stringify({ data: { record_type: 'event', id: randomUUID(), occurred_at: new Date().toISOString(), ...data }, meta: { attempt: 1, delivered_to: url } });
    const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
    const key = opts.wrongKey ? keyPair().privateKey : this.keys.privateKey;
    const signature = sign(null, Buffer.from(`${timestamp}|${body}`), key).toString('base64');
    return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'telnyx-signature-ed25519': signature, 'telnyx-timestamp': timestamp }, body });
  }

  /** message.finalized for a message the fake accepted, to the webhook_url it was given. */
  async finalized(id: string, status: string, opts: { errors?: Array<{ code: string; title: string; detail?: string }>; wrongKey?: boolean; timestamp?: number } = {}): Promise<Response> {
    const msg = this.messages.find((x) => x.id === id);
    if (!msg) throw new Error(`no message ${id}`);
    const url = msg.body.webhook_url as string | undefined;
    if (!url) throw new Error(`message ${id} had no webhook_url`);
    return this.post(
      url,
      {
        event_type: 'message.finalized',
        payload: {
          id,
          record_type: 'message',
          direction: 'outbound',
          from: { phone_number: msg.body.from },
          to: [{ phone_number: msg.body.to, status }],
          text: msg.body.text ?? '',
          errors: opts.errors ?? [],
        },
      },
      opts,
    );
  }

  /** message.received, as Telnyx posts it to the messaging profile's inbound webhook. */
  async inbound(url: string, m: { from: string; to: string; text: string; mediaUrls?: string[] }, opts: { wrongKey?: boolean } = {}): Promise<Response> {
    return this.post(
      url,
      {
        event_type: 'message.received',
        payload: {
          id: randomUUID(),
          record_type: 'message',
          direction: 'inbound',
          type: m.mediaUrls?.length ? 'MMS' : 'SMS',
          from: { phone_number: m.from, carrier: 'T-Mobile USA', line_type: 'long_code' },
          to: [{ phone_number: m.to, status: 'webhook_delivered' }],
          text: m.text,
          media: (m.mediaUrls ?? []).map((url) => ({ url, content_type: 'image/jpeg' })),
          errors: [],
        },
      },
      opts,
    );
  }
}
