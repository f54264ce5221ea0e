// Twilio Programmable Messaging (SMS and MMS) and Programmable Voice (voice broadcasts) over
// its REST API. The voice side — calls, TwiML, answering-machine detection, call status
// callbacks — is in twilio-voice.ts; this file sends texts and routes every callback.
//
//   submit   — POST {base_url}/2010-04-01/Accounts/{account_sid}/Messages.json, form-encoded
//              (To, From or MessagingServiceSid, Body, MediaUrl…, StatusCallback), HTTP Basic
//              account_sid:auth_token. The answer's `sid` is the provider message id.
//   status   — Twilio POSTs MessageSid, MessageStatus, ErrorCode to the StatusCallback we gave it
//              (/hooks/{connector_id}/status), signed with X-Twilio-Signature.
//   inbound  — the number's "A message comes in" webhook, /hooks/{connector_id}/inbound; we
//              answer empty TwiML so Twilio sends no reply of its own.
//
// X-Twilio-Signature is base64(HMAC-SHA1(auth_token, url + every POST parameter, sorted by name,
// as name followed by value)), where url is exactly the URL Twilio called: our public base URL
// (config webhook_base_url, else SWITCHBOARD_PUBLIC_URL) plus the path. A signature that does
// not hold is AUTH_FAILED and changes nothing.
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import { HttpProviderConnector } from '../http-provider-connector.ts';
import { createHmac } from 'node:crypto';
import { AppError } from '../../errors.ts';
import type { ConnectorDeps, ConnectorRow, OutboundMessage, Receipt, SubmitResult, WebhookRequest, WebhookResponse } from '../connector.ts';
import { classifyTwilioCode } from './twilio-codes.ts';
import { isCallCallback, sendCall, twilioCallReceipt, validateTwilioVoiceConfig, type TwilioVoiceConfig } from './twilio-voice.ts';
import { checkUrl, classOfHttpStatus, failure, header, isAnswer, request, requireStrings, retryAfterMs, safeEqual, trimSlash } from '../provider-http.ts';

export interface TwilioConfig extends TwilioVoiceConfig {
  account_sid: string;
  auth_token: string;
  base_url?: string;
  /** Used instead of From when set: Twilio then picks the sender from the service's pool. */
  messaging_service_sid?: string;
  webhook_base_url?: string;
  max_in_flight?: number;
}

export const TWILIO_BASE_URL = 'https://api.twilio.com';
export { TWILIO_CODES, classifyTwilioCode } from './twilio-codes.ts';

export function validateTwilioConfig(config: Record<string, unknown>): string[] {
  const errors = requireStrings(config, ['account_sid', 'auth_token']);
  errors.push(...checkUrl(config, 'base_url'), ...checkUrl(config, 'webhook_base_url'));
  if (config.messaging_service_sid !== undefined && typeof config.messaging_service_sid !== 'string') errors.push('messaging_service_sid must be a string');
  if (config.max_in_flight !== undefined && !(Number.isInteger(config.max_in_flight) && (config.max_in_flight as number) > 0)) errors.push('max_in_flight must be a positive integer');
  errors.push(...validateTwilioVoiceConfig(config));
  return errors;
}

/** The X-Twilio-Signature of a request: the URL Twilio called and its POST parameters. */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams | Record<string, string>): string {
  const entries = params instanceof URLSearchParams ? [...params.entries()] : Object.entries(params);
  entries.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  let data = url;
  for (const [k, v] of entries) data += k + v;
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

export class TwilioConnector extends HttpProviderConnector<TwilioConfig> {
  readonly type = 'twilio';

  constructor(row: ConnectorRow, deps: ConnectorDeps) {
    super(row, deps, [...CONNECTOR_CHANNELS.twilio]);
  }

  private get baseUrl() {
    return trimSlash(this.config.base_url ?? TWILIO_BASE_URL);
  }

  /** HTTP Basic account_sid:auth_token, for every REST call. */
  private get authorization(): string {
    return `Basic ${Buffer.from(`${this.config.account_sid}:${this.config.auth_token}`).toString('base64')}`;
  }

  protected async send(m: OutboundMessage): Promise<SubmitResult> {
    if (m.channel === 'voice') {
      const base = this.publicBase();
      return sendCall(m, { baseUrl: this.baseUrl, config: this.config, authorization: this.authorization, statusCallback: base ? `${base}/hooks/${this.id}/status` : null });
    }
    const form = new URLSearchParams();
    form.set('To', m.to);
    if (this.config.messaging_service_sid) form.set('MessagingServiceSid', this.config.messaging_service_sid);
    else if (m.from) form.set('From', m.from);
    if (m.body) form.set('Body', m.body);
    for (const url of m.mediaUrls) form.append('MediaUrl', url);
    const base = this.publicBase();
    if (base) form.set('StatusCallback', `${base}/hooks/${this.id}/status`);
    if (m.expiresAt !== null) {
      // ValidityPeriod is in seconds, 1..36000 (ten hours).
      const s = Math.ceil((m.expiresAt - this.deps.clock.now()) / 1000);
      if (s >= 1 && s < 36_000) form.set('ValidityPeriod', String(s));
    }
    const sid = encodeURIComponent(this.config.account_sid);
    const answer = await request(`${this.baseUrl}/2010-04-01/Accounts/${sid}/Messages.json`, {
      method: 'POST',
      headers: {
        authorization: this.authorization,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: form.toString(),
    });
    if (!isAnswer(answer)) return answer;
    const body = (answer.json ?? {}) as { sid?: string; status?: string; code?: number; message?: string; error_code?: number | null; error_message?: string | null };
    if (answer.status >= 200 && answer.status < 300 && typeof body.sid === 'string') {
      if (body.status === 'failed' && body.error_code) {
        const c = classifyTwilioCode(body.error_code, 'UNKNOWN_ERROR');
        return failure(c.errorClass, String(body.error_code), body.error_message ?? c.message ?? 'Twilio refused the message.', { raw: body });
      }
      return { ok: true, providerMessageId: body.sid, raw: { sid: body.sid, status: body.status } };
    }
    const code = body.code ?? (answer.status === 429 ? 20429 : undefined);
    const c = classifyTwilioCode(code, classOfHttpStatus(answer.status));
    const message = body.message ?? c.message ?? `Twilio answered HTTP ${answer.status}.`;
    return failure(c.errorClass, code !== undefined ? String(code) : `HTTP_${answer.status}`, message, {
      raw: { status: answer.status, code: body.code, message: body.message },
      retryAfterMs: c.errorClass === 'RATE_LIMITED' ? retryAfterMs(answer.headers) : undefined,
    });
  }

  async handleWebhook(req: WebhookRequest): Promise<WebhookResponse> {
    const params = new URLSearchParams(req.method === 'GET' ? (req.path.split('?')[1] ?? '') : req.rawBody);
    const url = `${this.publicBase(req.baseUrl)}${req.path}`;
    const given = header(req.headers, 'x-twilio-signature') ?? '';
    // For a GET, the parameters are in the URL already; only POST parameters are appended.
    const expected = twilioSignature(this.config.auth_token, url, req.method === 'GET' ? {} : params);
    if (!given || !safeEqual(given, expected)) throw new AppError('AUTH_FAILED', 'The X-Twilio-Signature header does not match this request.');
    const p = Object.fromEntries(params.entries());
    if (req.kind === 'status') {
      const receipt = isCallCallback(p) ? twilioCallReceipt(p) : twilioReceipt(p);
      if (receipt) await this.deps.sink.receipt(this.id, receipt);
      return { status: 204 };
    }
    const mediaUrls: string[] = [];
    const n = Number(p.NumMedia ?? 0);
    for (let i = 0; i < n && i < 10; i++) if (p[`MediaUrl${i}`]) mediaUrls.push(p[`MediaUrl${i}`]!);
    if (!p.From || !p.To) throw new AppError('VALIDATION_ERROR', 'An inbound message needs From and To.', { field: p.From ? 'To' : 'From' });
    await this.deps.sink.inbound(this.id, {
      from: p.From,
      to: p.To,
      body: p.Body ?? '',
      channel: mediaUrls.length > 0 ? 'mms' : 'sms',
      providerMessageId: p.MessageSid ?? p.SmsSid,
      mediaUrls,
      raw: p,
    });
    return { status: 200, contentType: 'text/xml', body: EMPTY_TWIML };
  }
}

/** A status callback's parameters as a receipt; null for a status that is not final. */
export function twilioReceipt(p: Record<string, string>): Receipt | null {
  const id = p.MessageSid ?? p.SmsSid;
  const status = p.MessageStatus ?? p.SmsStatus;
  if (!id || !status) return null;
  if (status === 'delivered' || status === 'read') return { providerMessageId: id, status: 'delivered', raw: p };
  if (status !== 'undelivered' && status !== 'failed') return null; // queued, sending, sent, accepted…
  const code = p.ErrorCode || undefined;
  const c = classifyTwilioCode(code, 'UNKNOWN_ERROR');
  return {
    providerMessageId: id,
    status: status === 'failed' ? 'failed' : 'undelivered',
    errorClass: c.errorClass,
    code: c.errorClass,
    message: c.message ?? (code ? `Twilio error ${code}.` : `Twilio reported the message ${status}.`),
    providerCode: code,
    raw: p,
  };
}
