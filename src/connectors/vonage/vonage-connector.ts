// Vonage (Nexmo): SMS through the SMS API, MMS through the Messages API.
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
//
// MMS (the SMS API has none): POST {messages_base_url}/v1/messages, JSON {channel: "mms",
// message_type: image|video|audio|vcard by the first media URL's extension, {type}: {url, caption},
// to, from, client_ref, webhook_url}, HTTP Basic api_key:api_secret; Vonage answers 202
// {message_uuid}, or an RFC 7807 problem {type, title, detail}. One medium per message: further
// media URLs go into the caption as links. Its status webhooks (JSON {message_uuid, status, error})
// are signed differently: `Authorization: Bearer <JWT>`, HS256 with the signature secret, whose
// `payload_hash` claim is the SHA-256 of the body.
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import { HttpProviderConnector } from '../http-provider-connector.ts';
import { createHash, createHmac } from 'node:crypto';
import { AppError, type ErrorClass } from '../../errors.ts';
import type { ConnectorDeps, ConnectorRow, OutboundMessage, Receipt, SubmitResult, WebhookRequest, WebhookResponse } from '../connector.ts';
import { checkUrl, classOfHttpStatus, failure, header, isAnswer, request, requireStrings, retryAfterMs, safeEqual, trimSlash } from '../provider-http.ts';

export type VonageSignatureMethod = 'md5hash' | 'md5' | 'sha1' | 'sha256' | 'sha512';
const METHODS: VonageSignatureMethod[] = ['md5hash', 'md5', 'sha1', 'sha256', 'sha512'];

export interface VonageConfig {
  api_key: string;
  api_secret: string;
  signature_secret: string;
  signature_method?: VonageSignatureMethod;
  base_url?: string;
  /** The Messages API, for MMS. */
  messages_base_url?: string;
  webhook_base_url?: string;
  max_in_flight?: number;
}

export const VONAGE_BASE_URL = 'https://rest.nexmo.com';
export const VONAGE_MESSAGES_BASE_URL = 'https://api.nexmo.com';
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
  errors.push(...checkUrl(config, 'base_url'), ...checkUrl(config, 'messages_base_url'), ...checkUrl(config, 'webhook_base_url'));
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

  private get callbackUrl(): string | undefined {
    const base = this.config.webhook_base_url ?? this.deps.publicUrl;
    return base ? `${trimSlash(base)}/hooks/${this.id}/status` : undefined;
  }

  protected async send(m: OutboundMessage): Promise<SubmitResult> {
    if (m.channel === 'mms') return this.sendMms(m);
    const form = new URLSearchParams();
    form.set('api_key', this.config.api_key);
    form.set('api_secret', this.config.api_secret);
    form.set('to', m.to.replace(/^\+/, ''));
    if (m.from) form.set('from', m.from.replace(/^\+/, ''));
    form.set('text', m.body ?? '');
    if (m.encoding === 'UCS-2') form.set('type', 'unicode');
    form.set('client-ref', m.reference);
    form.set('status-report-req', '1');
    if (this.callbackUrl) form.set('callback', this.callbackUrl);
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

  private async sendMms(m: OutboundMessage): Promise<SubmitResult> {
    const [first, ...rest] = m.mediaUrls;
    const type = mmsType(first ?? '');
    const caption = [...(m.body ? [m.body] : []), ...rest].join('\n');
    const body: Record<string, unknown> = {
      channel: 'mms',
      message_type: type,
      [type]: { url: first, ...(caption && type !== 'vcard' ? { caption } : {}) },
      to: m.to.replace(/^\+/, ''),
      from: (m.from ?? '').replace(/^\+/, ''),
      client_ref: m.reference,
    };
    if (this.callbackUrl) body.webhook_url = this.callbackUrl;
    const answer = await request(`${trimSlash(this.config.messages_base_url ?? VONAGE_MESSAGES_BASE_URL)}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Basic ${Buffer.from(`${this.config.api_key}:${this.config.api_secret}`).toString('base64')}` },
      body: JSON.stringify(body),
    });
    if (!isAnswer(answer)) return answer;
    const json = (answer.json ?? {}) as { message_uuid?: string; type?: string; title?: string; detail?: string };
    if (answer.status === 202 && typeof json.message_uuid === 'string') return { ok: true, providerMessageId: json.message_uuid, raw: { message_uuid: json.message_uuid } };
    // The problem type ends with Vonage's numeric code: …/api-errors/messages#1150.
    const code = json.type?.match(/#(\w+)$/)?.[1] ?? `HTTP_${answer.status}`;
    const errorClass = answer.status === 402 ? 'AUTH_FAILED' : classOfHttpStatus(answer.status);
    return failure(errorClass, code, [json.title, json.detail].filter(Boolean).join(': ') || `Vonage answered HTTP ${answer.status}.`, { raw: { status: answer.status, type: json.type, title: json.title }, retryAfterMs: retryAfterMs(answer.headers) });
  }

  /** A Messages API callback: a JWT signed with the signature secret over the body's hash. */
  private async handleMessagesWebhook(req: WebhookRequest, token: string): Promise<WebhookResponse> {
    if (!verifyVonageJwt(token, req.rawBody, this.config.signature_secret, this.deps.clock.now())) throw new AppError('AUTH_FAILED', 'The Vonage webhook token does not match this request, or it is too old.');
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(req.rawBody);
    } catch {
      throw new AppError('VALIDATION_ERROR', 'The webhook body is not JSON.', { field: 'body' });
    }
    if (req.kind === 'status' || typeof json.status === 'string') {
      const receipt = messagesReceipt(json);
      if (receipt) await this.deps.sink.receipt(this.id, { ...receipt, raw: json });
      return { status: 204 };
    }
    if (typeof json.from !== 'string' || typeof json.to !== 'string') throw new AppError('VALIDATION_ERROR', 'An inbound message needs from and to.', { field: 'from' });
    const media = ['image', 'video', 'audio', 'vcard', 'file'].map((k) => (json[k] as { url?: unknown; caption?: unknown } | undefined)).filter((x) => x && typeof x.url === 'string');
    const text = typeof json.text === 'string' ? json.text : ((media.find((x) => typeof x!.caption === 'string')?.caption as string | undefined) ?? '');
    await this.deps.sink.inbound(this.id, { from: plus(json.from), to: plus(json.to), body: text, channel: media.length ? 'mms' : 'sms', providerMessageId: typeof json.message_uuid === 'string' ? json.message_uuid : undefined, mediaUrls: media.map((x) => x!.url as string), raw: json });
    return { status: 204 };
  }

  async handleWebhook(req: WebhookRequest): Promise<WebhookResponse> {
    const bearer = /^Bearer\s+(\S+)$/i.exec(String(header(req.headers, 'authorization') ?? ''))?.[1];
    if (bearer) return this.handleMessagesWebhook(req, bearer);
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

/** The Messages API message_type for a media URL, by its extension; an image when it names none. */
export function mmsType(url: string): 'image' | 'video' | 'audio' | 'vcard' {
  const ext = url.split(/[?#]/)[0].toLowerCase().match(/\.([a-z0-9]+)$/)?.[1] ?? '';
  if (['mp4', 'mov', '3gp'].includes(ext)) return 'video';
  if (['mp3', 'wav', 'amr', 'aac', 'm4a'].includes(ext)) return 'audio';
  if (ext === 'vcf') return 'vcard';
  return 'image';
}

const b64url = (b: Buffer) => b.toString('base64url');

/** Signs a Messages API webhook token the way Vonage does (for the fake and tests). */
export function signVonageJwt(claims: Record<string, unknown>, secret: string): string {
  const head = b64url(Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));
  const body = b64url(Buffer.from(JSON.stringify(claims)));
  return `${head}.${body}.${b64url(createHmac('sha256', secret).update(`${head}.${body}`).digest())}`;
}

/** HS256 with the signature secret, `payload_hash` = SHA-256 of the body, issued within five minutes. */
export function verifyVonageJwt(token: string, rawBody: string, secret: string, nowMs: number): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  const expected = b64url(createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest());
  if (!safeEqual(parts[2], expected)) return false;
  let head: { alg?: string };
  let claims: { payload_hash?: string; iat?: number; exp?: number };
  try {
    head = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return false;
  }
  if (head.alg !== 'HS256') return false;
  if (typeof claims.payload_hash !== 'string' || !safeEqual(claims.payload_hash.toLowerCase(), createHash('sha256').update(rawBody, 'utf8').digest('hex'))) return false;
  if (typeof claims.iat !== 'number' || Math.abs(nowMs - claims.iat * 1000) > SIGNATURE_TOLERANCE_MS) return false;
  if (typeof claims.exp === 'number' && claims.exp * 1000 < nowMs - SIGNATURE_TOLERANCE_MS) return false;
  return true;
}

/** A Messages API status as a receipt; null for submitted and read (not a delivery outcome). */
export function messagesReceipt(json: Record<string, unknown>): Receipt | null {
  const id = json.message_uuid;
  if (typeof id !== 'string') return null;
  const error = (json.error ?? {}) as { type?: string; title?: string; detail?: string };
  const code = typeof error.type === 'string' ? (error.type.match(/#(\w+)$/)?.[1] ?? error.type) : undefined;
  const message = [error.title, error.detail].filter(Boolean).join(': ') || undefined;
  switch (json.status) {
    case 'delivered':
      return { providerMessageId: id, status: 'delivered' };
    case 'undeliverable':
      return { providerMessageId: id, status: 'undelivered', errorClass: 'UNREACHABLE', code: 'UNREACHABLE', message: message ?? 'Vonage reported the MMS undeliverable.', providerCode: code };
    case 'rejected':
      return { providerMessageId: id, status: 'failed', errorClass: 'UNKNOWN_ERROR', code: 'UNKNOWN_ERROR', message: message ?? 'Vonage rejected the MMS.', providerCode: code };
    default:
      return null;
  }
}
