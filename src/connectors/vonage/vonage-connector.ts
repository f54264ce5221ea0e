// Vonage (Nexmo) SMS API.
//
//   submit   — POST {base_url}/sms/json, form-encoded api_key, api_secret, from, to (digits, no
//              '+'), text, type=unicode for UCS-2, client-ref (our message id), status-report-req,
//              callback. Vonage answers HTTP 200 whatever happened: the outcome is
//              messages[0].status ("0" accepted) and messages[0]["message-id"].
//   receipt  — delivery receipts (msisdn, to, messageId, status, err-code, client-ref, …) to
//              /hooks/{connector_id}/status; inbound (msisdn, to, messageId, text, type) to
//              /hooks/{connector_id}/inbound. Vonage sends them as GET query parameters, a POST
//              form or POST JSON, per the account's settings: all three are read.
//
// Signed webhooks: every parameter but `sig`, sorted by name, joined as `&name=value` with `&`
// and `=` in values replaced by `_`; then md5(text + signature_secret) for "md5hash" (Vonage's
// default), or the HMAC (md5, sha1, sha256, sha512) keyed by signature_secret; hex. The
// `timestamp` parameter must be within five minutes of our clock (replay).
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import { HttpProviderConnector } from '../http-provider-connector.ts';
import { createHash, createHmac } from 'node:crypto';
import { AppError, type ErrorClass } from '../../errors.ts';
import type { ConnectorDeps, ConnectorRow, OutboundMessage, Receipt, SubmitResult, WebhookRequest, WebhookResponse } from '../connector.ts';
import { checkUrl, classOfHttpStatus, failure, header, isAnswer, request, requireStrings, safeEqual, trimSlash } from '../provider-http.ts';

export type VonageSignatureMethod = 'md5hash' | 'md5' | 'sha1' | 'sha256' | 'sha512';
const METHODS: VonageSignatureMethod[] = ['md5hash', 'md5', 'sha1', 'sha256', 'sha512'];

export interface VonageConfig {
  api_key: string;
  api_secret: string;
  signature_secret: string;
  signature_method?: VonageSignatureMethod;
  base_url?: string;
  webhook_base_url?: string;
  max_in_flight?: number;
}

export const VONAGE_BASE_URL = 'https://rest.nexmo.com';
export const SIGNATURE_TOLERANCE_MS = 300_000;

/** The submit answer's messages[].status codes → classes. */
export const VONAGE_SUBMIT_CODES: Record<string, { errorClass: ErrorClass; meaning: string }> = {
  '1': { errorClass: 'RATE_LIMITED', meaning: 'Throttled' },
  '2': { errorClass: 'UNKNOWN_ERROR', meaning: 'Missing parameters' },
  '3': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid parameters' },
  '4': { errorClass: 'AUTH_FAILED', meaning: 'Invalid credentials' },
  '5': { errorClass: 'UNREACHABLE', meaning: 'Internal error' },
  '6': { errorClass: 'INVALID_NUMBER', meaning: 'Invalid message (unrecognised number prefix)' },
  '7': { errorClass: 'OPTED_OUT', meaning: 'Number barred' },
  '8': { errorClass: 'AUTH_FAILED', meaning: 'Partner account barred' },
  '9': { errorClass: 'AUTH_FAILED', meaning: 'Partner quota violation (insufficient credit)' },
  '10': { errorClass: 'RATE_LIMITED', meaning: 'Too many existing binds' },
  '11': { errorClass: 'AUTH_FAILED', meaning: 'Account not enabled for HTTP' },
  '12': { errorClass: 'UNKNOWN_ERROR', meaning: 'Message too long' },
  '14': { errorClass: 'AUTH_FAILED', meaning: 'Invalid signature' },
  '15': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid sender address' },
  '22': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid network code' },
  '23': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid callback URL' },
  '29': { errorClass: 'FILTERED', meaning: 'Non-whitelisted destination' },
  '32': { errorClass: 'AUTH_FAILED', meaning: 'Signature and API secret disallowed' },
  '33': { errorClass: 'INVALID_NUMBER', meaning: 'Number de-activated' },
};

/** A delivery receipt's err-code → classes. */
export const VONAGE_DLR_CODES: Record<string, { errorClass: ErrorClass; meaning: string }> = {
  '1': { errorClass: 'UNKNOWN_ERROR', meaning: 'Unknown' },
  '2': { errorClass: 'UNREACHABLE', meaning: 'Absent subscriber (temporary)' },
  '3': { errorClass: 'INVALID_NUMBER', meaning: 'Absent subscriber (permanent)' },
  '4': { errorClass: 'OPTED_OUT', meaning: 'Call barred by user' },
  '5': { errorClass: 'UNREACHABLE', meaning: 'Portability error' },
  '6': { errorClass: 'FILTERED', meaning: 'Anti-spam rejection' },
  '7': { errorClass: 'UNREACHABLE', meaning: 'Handset busy' },
  '8': { errorClass: 'UNREACHABLE', meaning: 'Network error' },
  '9': { errorClass: 'OPTED_OUT', meaning: 'Illegal number (the recipient opted out of this sender)' },
  '10': { errorClass: 'FILTERED', meaning: 'Illegal message' },
  '11': { errorClass: 'INVALID_NUMBER', meaning: 'Unroutable' },
  '12': { errorClass: 'UNREACHABLE', meaning: 'Destination unreachable' },
  '13': { errorClass: 'FILTERED', meaning: 'Subscriber age restriction' },
  '14': { errorClass: 'FILTERED', meaning: 'Number blocked by carrier' },
  '15': { errorClass: 'UNREACHABLE', meaning: 'Pre-paid: insufficient funds' },
  '99': { errorClass: 'UNKNOWN_ERROR', meaning: 'General error' },
};

export function validateVonageConfig(config: Record<string, unknown>): string[] {
  const errors = requireStrings(config, ['api_key', 'api_secret', 'signature_secret']);
  if (config.signature_method !== undefined && !METHODS.includes(config.signature_method as VonageSignatureMethod)) errors.push(`signature_method must be one of ${METHODS.join(', ')}`);
  errors.push(...checkUrl(config, 'base_url'), ...checkUrl(config, 'webhook_base_url'));
  if (config.max_in_flight !== undefined && !(Number.isInteger(config.max_in_flight) && (config.max_in_flight as number) > 0)) errors.push('max_in_flight must be a positive integer');
  return errors;
}

/** The `sig` of a set of webhook parameters. */
export function vonageSignature(params: Record<string, string>, secret: string, method: VonageSignatureMethod = 'md5hash'): string {
  let text = '';
  for (const k of Object.keys(params).filter((x) => x !== 'sig').sort()) text += `&${k}=${String(params[k]).replace(/[&=]/g, '_')}`;
  if (method === 'md5hash') return createHash('md5').update(text + secret, 'utf8').digest('hex');
  return createHmac(method, secret).update(text, 'utf8').digest('hex');
}

/** The parameters of a webhook call, wherever Vonage put them. */
function webhookParams(req: WebhookRequest): Record<string, string> {
  const query = Object.fromEntries(new URLSearchParams(req.path.split('?')[1] ?? '').entries());
  if (req.method === 'GET' || !req.rawBody) return query;
  if (String(header(req.headers, 'content-type') ?? '').includes('json')) {
    let json: unknown;
    try {
      json = JSON.parse(req.rawBody);
    } catch {
      throw new AppError('VALIDATION_ERROR', 'The webhook body is not JSON.', { field: 'body' });
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new AppError('VALIDATION_ERROR', 'The webhook body is not a JSON object.', { field: 'body' });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(json)) if (v !== null && typeof v !== 'object') out[k] = String(v);
    return out;
  }
  return Object.fromEntries(new URLSearchParams(req.rawBody).entries());
}

const plus = (n: string) => (/^\d{6,15}$/.test(n) ? `+${n}` : n);

export class VonageConnector extends HttpProviderConnector<VonageConfig> {
  readonly type = 'vonage';

  constructor(row: ConnectorRow, deps: ConnectorDeps) {
    super(row, deps, [...CONNECTOR_CHANNELS.vonage]);
  }

  protected async send(m: OutboundMessage): Promise<SubmitResult> {
    const form = new URLSearchParams();
    form.set('api_key', this.config.api_key);
    form.set('api_secret', this.config.api_secret);
    form.set('to', m.to.replace(/^\+/, ''));
    if (m.from) form.set('from', m.from.replace(/^\+/, ''));
    form.set('text', m.body ?? '');
    if (m.encoding === 'UCS-2') form.set('type', 'unicode');
    form.set('client-ref', m.reference);
    form.set('status-report-req', '1');
    const base = this.config.webhook_base_url ?? this.deps.publicUrl;
    if (base) form.set('callback', `${trimSlash(base)}/hooks/${this.id}/status`);
    if (m.expiresAt !== null) {
      // ttl in milliseconds, 20 000 .. 604 800 000.
      const ttl = m.expiresAt - this.deps.clock.now();
      if (ttl >= 20_000 && ttl <= 604_800_000) form.set('ttl', String(ttl));
    }
    const answer = await request(`${trimSlash(this.config.base_url ?? VONAGE_BASE_URL)}/sms/json`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
    });
    if (!isAnswer(answer)) return answer;
    const json = (answer.json ?? {}) as { messages?: Array<{ status?: string; 'message-id'?: string; 'error-text'?: string }> };
    const first = json.messages?.[0];
    if (answer.status !== 200 || !first) {
      return failure(classOfHttpStatus(answer.status), `HTTP_${answer.status}`, `Vonage answered HTTP ${answer.status}.`, { raw: { status: answer.status } });
    }
    const failed = json.messages!.find((x) => String(x.status) !== '0');
    if (!failed && typeof first['message-id'] === 'string') {
      return { ok: true, providerMessageId: first['message-id'], raw: { message_ids: json.messages!.map((x) => x['message-id']) } };
    }
    const code = String(failed?.status ?? first.status);
    const known = VONAGE_SUBMIT_CODES[code];
    return failure(known?.errorClass ?? 'UNKNOWN_ERROR', code, failed?.['error-text'] ?? known?.meaning ?? `Vonage status ${code}.`, { raw: { status: code, error_text: failed?.['error-text'] } });
  }

  async handleWebhook(req: WebhookRequest): Promise<WebhookResponse> {
    const p = webhookParams(req);
    const method = this.config.signature_method ?? 'md5hash';
    const fresh = /^\d{1,12}$/.test(p.timestamp ?? '') && Math.abs(this.deps.clock.now() - Number(p.timestamp) * 1000) <= SIGNATURE_TOLERANCE_MS;
    const expected = vonageSignature(p, this.config.signature_secret, method);
    if (!p.sig || !fresh || !safeEqual(p.sig.toLowerCase(), expected)) throw new AppError('AUTH_FAILED', 'The Vonage sig does not match this request, or its timestamp is too old.');
    const { sig: _sig, ...raw } = p;
    delete raw['api-key'];
    if (req.kind === 'status' || (p.messageId && p.status && !p.text)) {
      const receipt = vonageReceipt(p);
      if (receipt) await this.deps.sink.receipt(this.id, { ...receipt, raw });
      return { status: 204 };
    }
    if (!p.msisdn || !p.to) throw new AppError('VALIDATION_ERROR', 'An inbound message needs msisdn and to.', { field: p.msisdn ? 'to' : 'msisdn' });
    await this.deps.sink.inbound(this.id, { from: plus(p.msisdn), to: plus(p.to), body: p.text ?? '', channel: 'sms', providerMessageId: p.messageId, raw });
    return { status: 204 };
  }
}

/** A delivery receipt's parameters as a receipt; null while the message is not final. */
export function vonageReceipt(p: Record<string, string>): Receipt | null {
  const id = p.messageId;
  const status = p.status;
  if (!id || !status) return null;
  if (status === 'delivered') return { providerMessageId: id, status: 'delivered' };
  const outcomes: Record<string, Receipt['status']> = { failed: 'undelivered', rejected: 'failed', expired: 'expired' };
  const outcome = outcomes[status];
  if (!outcome) return null; // accepted, buffered, unknown
  const code = p['err-code'] && p['err-code'] !== '0' ? p['err-code'] : undefined;
  const known = code ? VONAGE_DLR_CODES[code] : undefined;
  const errorClass: ErrorClass = known?.errorClass ?? (outcome === 'expired' ? 'UNREACHABLE' : 'UNKNOWN_ERROR');
  return { providerMessageId: id, status: outcome, errorClass, code: errorClass, message: known?.meaning ?? `Vonage reported ${status}${code ? ` (err-code ${code})` : ''}.`, providerCode: code };
}
