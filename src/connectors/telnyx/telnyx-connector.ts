// Telnyx Messaging (API v2), SMS and MMS.
//
//   submit   — POST {base_url}/v2/messages, JSON {from, to, text, media_urls, webhook_url,
//              messaging_profile_id}, Authorization: Bearer api_key. The answer's data.id is the
//              provider message id.
//   webhooks — Telnyx POSTs JSON events {data: {event_type, payload}}: message.sent and
//              message.finalized (the receipt, payload.to[0].status and payload.errors[]) to the
//              message's webhook_url, message.received to the profile's inbound URL. Either
//              /hooks route takes any of them: Telnyx may send both kinds to one URL.
//
// Signatures are Ed25519: the telnyx-signature-ed25519 header (base64) signs
// `${telnyx-timestamp}|${raw body}` with Telnyx's key; config public_key is the public half from
// the portal (base64 of the 32-byte key, or PEM). A timestamp more than five minutes off is
// refused, so a captured callback cannot be replayed later.
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import { HttpProviderConnector } from '../http-provider-connector.ts';
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { AppError, type ErrorClass } from '../../errors.ts';
import type { ConnectorDeps, ConnectorRow, OutboundMessage, Receipt, SubmitResult, WebhookRequest, WebhookResponse } from '../connector.ts';
import { checkUrl, classOfHttpStatus, failure, header, isAnswer, request, requireStrings, retryAfterMs, trimSlash } from '../provider-http.ts';

export interface TelnyxConfig {
  api_key: string;
  public_key: string;
  base_url?: string;
  messaging_profile_id?: string;
  webhook_base_url?: string;
  max_in_flight?: number;
}

export const TELNYX_BASE_URL = 'https://api.telnyx.com';
export const SIGNATURE_TOLERANCE_MS = 300_000;

/** Telnyx error codes → classes: general API errors (1xxxx) and messaging errors (40xxx). */
export const TELNYX_CODES: Record<string, { errorClass: ErrorClass; meaning: string }> = {
  '10002': { errorClass: 'INVALID_NUMBER', meaning: 'Invalid phone number' },
  '10007': { errorClass: 'UNKNOWN_ERROR', meaning: 'Unexpected error' },
  '10009': { errorClass: 'AUTH_FAILED', meaning: 'Authentication failed' },
  '10010': { errorClass: 'AUTH_FAILED', meaning: 'Authorization failed' },
  '10011': { errorClass: 'RATE_LIMITED', meaning: 'Too many requests' },
  '10016': { errorClass: 'INVALID_NUMBER', meaning: 'Phone number must be in +E.164 format' },
  '40001': { errorClass: 'INVALID_NUMBER', meaning: 'Not routable (landline or non-routable number)' },
  '40002': { errorClass: 'FILTERED', meaning: 'Blocked as spam (temporary)' },
  '40003': { errorClass: 'FILTERED', meaning: 'Blocked as spam (permanent)' },
  '40004': { errorClass: 'UNREACHABLE', meaning: 'Rejected by destination' },
  '40005': { errorClass: 'UNREACHABLE', meaning: 'Message expired' },
  '40006': { errorClass: 'UNREACHABLE', meaning: 'Recipient unavailable' },
  '40008': { errorClass: 'UNKNOWN_ERROR', meaning: 'Undeliverable' },
  '40009': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid message body' },
  '40011': { errorClass: 'RATE_LIMITED', meaning: 'Rate limit exceeded' },
  '40300': { errorClass: 'OPTED_OUT', meaning: 'Blocked due to a STOP message' },
  '40310': { errorClass: 'INVALID_NUMBER', meaning: "Invalid 'to' address" },
};

export function classifyTelnyxCode(code: string | number | null | undefined, fallback: ErrorClass): { errorClass: ErrorClass; message: string | null } {
  const known = code === null || code === undefined ? undefined : TELNYX_CODES[String(code)];
  return known ? { errorClass: known.errorClass, message: known.meaning } : { errorClass: fallback, message: null };
}

/** The Ed25519 public key from the portal's base64 (32 raw bytes) or a PEM; null if neither. */
export function telnyxPublicKey(text: string): KeyObject | null {
  try {
    if (text.includes('BEGIN PUBLIC KEY')) return createPublicKey(text);
    const raw = Buffer.from(text, 'base64');
    if (raw.length !== 32) return null;
    return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
}

export function validateTelnyxConfig(config: Record<string, unknown>): string[] {
  const errors = requireStrings(config, ['api_key', 'public_key']);
  if (typeof config.public_key === 'string' && config.public_key && !telnyxPublicKey(config.public_key)) errors.push('public_key must be the Ed25519 public key from the Telnyx portal (base64)');
  errors.push(...checkUrl(config, 'base_url'), ...checkUrl(config, 'webhook_base_url'));
  if (config.messaging_profile_id !== undefined && typeof config.messaging_profile_id !== 'string') errors.push('messaging_profile_id must be a string');
  if (config.max_in_flight !== undefined && !(Number.isInteger(config.max_in_flight) && (config.max_in_flight as number) > 0)) errors.push('max_in_flight must be a positive integer');
  return errors;
}

interface TelnyxError {
  code?: string | number;
  title?: string;
  detail?: string;
}

interface TelnyxPayload {
  id?: string;
  type?: string;
  text?: string;
  from?: { phone_number?: string } | string;
  to?: Array<{ phone_number?: string; status?: string }> | string;
  media?: Array<{ url?: string; content_type?: string }>;
  errors?: TelnyxError[];
}

export class TelnyxConnector extends HttpProviderConnector<TelnyxConfig> {
  readonly type = 'telnyx';
  private key: KeyObject | null;

  constructor(row: ConnectorRow, deps: ConnectorDeps) {
    super(row, deps, [...CONNECTOR_CHANNELS.telnyx]);
    this.key = typeof this.config.public_key === 'string' ? telnyxPublicKey(this.config.public_key) : null;
  }

  protected async send(m: OutboundMessage): Promise<SubmitResult> {
    const body: Record<string, unknown> = { to: m.to };
    if (m.from) body.from = m.from;
    if (this.config.messaging_profile_id) body.messaging_profile_id = this.config.messaging_profile_id;
    if (m.body) body.text = m.body;
    if (m.mediaUrls.length > 0) body.media_urls = m.mediaUrls;
    const base = this.config.webhook_base_url ?? this.deps.publicUrl;
    if (base) body.webhook_url = `${trimSlash(base)}/hooks/${this.id}/status`;
    const answer = await request(`${trimSlash(this.config.base_url ?? TELNYX_BASE_URL)}/v2/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.config.api_key}`, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (!isAnswer(answer)) return answer;
    const json = (answer.json ?? {}) as { data?: { id?: string; to?: Array<{ status?: string }> }; errors?: TelnyxError[] };
    if (answer.status >= 200 && answer.status < 300 && typeof json.data?.id === 'string') {
      return { ok: true, providerMessageId: json.data.id, raw: { id: json.data.id, status: json.data.to?.[0]?.status } };
    }
    const first = json.errors?.[0];
    const code = first?.code ?? (answer.status === 429 ? '10011' : undefined);
    const c = classifyTelnyxCode(code, classOfHttpStatus(answer.status));
    return failure(c.errorClass, code !== undefined ? String(code) : `HTTP_${answer.status}`, first?.detail ?? first?.title ?? c.message ?? `Telnyx answered HTTP ${answer.status}.`, {
      raw: { status: answer.status, errors: json.errors },
      retryAfterMs: c.errorClass === 'RATE_LIMITED' ? retryAfterMs(answer.headers) : undefined,
    });
  }

  /** Whether the Ed25519 signature over `timestamp|body` holds and the timestamp is recent. */
  verify(headers: WebhookRequest['headers'], rawBody: string): boolean {
    const signature = header(headers, 'telnyx-signature-ed25519');
    const timestamp = header(headers, 'telnyx-timestamp');
    if (!this.key || !signature || !timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
    if (Math.abs(this.deps.clock.now() - Number(timestamp) * 1000) > SIGNATURE_TOLERANCE_MS) return false;
    try {
      return verify(null, Buffer.from(`${timestamp}|${rawBody}`, 'utf8'), this.key, Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  }

  async handleWebhook(req: WebhookRequest): Promise<WebhookResponse> {
    if (!this.verify(req.headers, req.rawBody)) throw new AppError('AUTH_FAILED', 'The telnyx-signature-ed25519 header does not match this request, or its timestamp is too old.');
    let event: { data?: { event_type?: string; payload?: TelnyxPayload } };
    try {
      event = JSON.parse(req.rawBody);
    } catch {
      throw new AppError('VALIDATION_ERROR', 'The webhook body is not JSON.', { field: 'body' });
    }
    const type = event.data?.event_type;
    const payload = event.data?.payload ?? {};
    if (type === 'message.received') {
      const from = typeof payload.from === 'string' ? payload.from : payload.from?.phone_number;
      const to = Array.isArray(payload.to) ? payload.to[0]?.phone_number : payload.to;
      if (!from || !to) throw new AppError('VALIDATION_ERROR', 'An inbound message needs from and to.', { field: from ? 'to' : 'from' });
      const mediaUrls = (payload.media ?? []).map((x) => x.url).filter((u): u is string => typeof u === 'string');
      await this.deps.sink.inbound(this.id, { from, to, body: payload.text ?? '', channel: mediaUrls.length > 0 || payload.type === 'MMS' ? 'mms' : 'sms', providerMessageId: payload.id, mediaUrls, raw: event.data });
    } else if (type === 'message.finalized' || type === 'message.sent') {
      const receipt = telnyxReceipt(payload);
      if (receipt) await this.deps.sink.receipt(this.id, { ...receipt, raw: event.data });
    }
    return { status: 200 };
  }
}

/** A message event's payload as a receipt; null while the message is not final. */
export function telnyxReceipt(payload: TelnyxPayload): Receipt | null {
  const status = Array.isArray(payload.to) ? payload.to[0]?.status : undefined;
  if (!payload.id || !status) return null;
  if (status === 'delivered') return { providerMessageId: payload.id, status: 'delivered' };
  const outcomes: Record<string, Receipt['status']> = { delivery_failed: 'undelivered', sending_failed: 'failed', expired: 'expired' };
  const outcome = outcomes[status];
  if (!outcome) return null; // queued, sending, sent, delivery_unconfirmed: nothing more is known
  const err = payload.errors?.[0];
  const code = err?.code !== undefined ? String(err.code) : undefined;
  const c = classifyTelnyxCode(code, outcome === 'expired' ? 'UNREACHABLE' : 'UNKNOWN_ERROR');
  return { providerMessageId: payload.id, status: outcome, errorClass: c.errorClass, code: c.errorClass, message: err?.detail ?? err?.title ?? c.message ?? `Telnyx reported ${status}.`, providerCode: code };
}
