// Plivo Messaging, SMS and MMS.
//
//   submit   — POST {base_url}/v1/Account/{auth_id}/Message/, JSON {src, dst, text, type,
//              media_urls, url, method}, HTTP Basic auth_id:auth_token. Plivo answers 202 with
//              message_uuid[0], the provider message id; errors are {api_id, error: "text"}.
//   status   — Plivo POSTs MessageUUID, Status, ErrorCode (form) to the `url` we gave it,
//              /hooks/{connector_id}/status.
//   inbound  — the application's message URL, /hooks/{connector_id}/inbound: From, To, Text,
//              Type, MessageUUID, Media0….
//
// Signature V3: X-Plivo-Signature-V3 (or -MA-V3) = base64(HMAC-SHA256(auth_token, the URL Plivo
// called with its query sorted, the POST parameters sorted by name, and the nonce from
// X-Plivo-Signature-V3-Nonce)) — see plivoSignatureV3 for the exact joining, taken from Plivo's
// SDK. The header may carry several signatures separated by commas.
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import { HttpProviderConnector } from '../http-provider-connector.ts';
import { createHmac } from 'node:crypto';
import { AppError, type ErrorClass } from '../../errors.ts';
import type { ConnectorDeps, ConnectorRow, OutboundMessage, Receipt, SubmitResult, WebhookRequest, WebhookResponse } from '../connector.ts';
import { checkUrl, classOfHttpStatus, failure, header, isAnswer, request, requireStrings, retryAfterMs, safeEqual, trimSlash } from '../provider-http.ts';

export interface PlivoConfig {
  auth_id: string;
  auth_token: string;
  base_url?: string;
  /** Sent as powerpack_uuid instead of src, when set. */
  powerpack_uuid?: string;
  webhook_base_url?: string;
  max_in_flight?: number;
}

export const PLIVO_BASE_URL = 'https://api.plivo.com';

/** Plivo's message ErrorCode values (status callbacks) → classes. */
export const PLIVO_CODES: Record<string, { errorClass: ErrorClass; meaning: string }> = {
  '10': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid message' },
  '20': { errorClass: 'UNREACHABLE', meaning: 'Network error' },
  '30': { errorClass: 'FILTERED', meaning: 'Spam detected' },
  '40': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid source number' },
  '50': { errorClass: 'INVALID_NUMBER', meaning: 'Invalid destination number' },
  '60': { errorClass: 'FILTERED', meaning: 'Loop detected' },
  '70': { errorClass: 'INVALID_NUMBER', meaning: 'Destination permanently unavailable' },
  '80': { errorClass: 'UNREACHABLE', meaning: 'Destination temporarily unavailable' },
  '90': { errorClass: 'UNKNOWN_ERROR', meaning: 'No route available' },
  '100': { errorClass: 'FILTERED', meaning: 'Prohibited by carrier' },
  '110': { errorClass: 'UNKNOWN_ERROR', meaning: 'Message too long' },
  '200': { errorClass: 'OPTED_OUT', meaning: 'Source number blocked by STOP from destination' },
  '300': { errorClass: 'UNKNOWN_ERROR', meaning: 'Failed to dispatch message' },
  '420': { errorClass: 'UNREACHABLE', meaning: 'Message expired' },
  '900': { errorClass: 'AUTH_FAILED', meaning: 'Insufficient credit' },
  '910': { errorClass: 'AUTH_FAILED', meaning: 'Account disabled' },
  '950': { errorClass: 'RATE_LIMITED', meaning: 'Daily messaging limit reached' },
  '1000': { errorClass: 'UNKNOWN_ERROR', meaning: 'Unknown error' },
};

export function validatePlivoConfig(config: Record<string, unknown>): string[] {
  const errors = requireStrings(config, ['auth_id', 'auth_token']);
  errors.push(...checkUrl(config, 'base_url'), ...checkUrl(config, 'webhook_base_url'));
  if (config.powerpack_uuid !== undefined && typeof config.powerpack_uuid !== 'string') errors.push('powerpack_uuid must be a string');
  if (config.max_in_flight !== undefined && !(Number.isInteger(config.max_in_flight) && (config.max_in_flight as number) > 0)) errors.push('max_in_flight must be a positive integer');
  return errors;
}

/** Parameters sorted by name (then value), each as name followed by value. */
function sortedParams(entries: Array<[string, string]>): string {
  return [...entries]
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => k + v)
    .join('');
}

/**
 * The V3 signature of a call, built as Plivo's SDKs build it: the URL without its query; then
 * `?` and the query sorted as `name=value&…` (the `?` also when there are POST parameters and no
 * query); then, when both exist, `.`; then the POST parameters sorted, each as name followed by
 * value; then `.` and the nonce.
 */
export function plivoSignatureV3(authToken: string, url: string, nonce: string, post: Array<[string, string]> = []): string {
  const u = new URL(url);
  const byName = ([a, av]: [string, string], [b, bv]: [string, string]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0);
  const query = [...u.searchParams.entries()].sort(byName).map(([k, v]) => `${k}=${v}`).join('&');
  let base = `${u.protocol}//${u.host}${u.pathname}`;
  if (query || post.length > 0) base += `?${query}`;
  if (query && post.length > 0) base += '.';
  base += sortedParams(post);
  return createHmac('sha256', authToken).update(`${base}.${nonce}`, 'utf8').digest('base64');
}

const plus = (n: string) => (/^\d{6,15}$/.test(n) ? `+${n}` : n);

export class PlivoConnector extends HttpProviderConnector<PlivoConfig> {
  readonly type = 'plivo';

  constructor(row: ConnectorRow, deps: ConnectorDeps) {
    super(row, deps, [...CONNECTOR_CHANNELS.plivo]);
  }

  protected async send(m: OutboundMessage): Promise<SubmitResult> {
    const body: Record<string, unknown> = { dst: m.to.replace(/^\+/, ''), text: m.body ?? '' };
    if (this.config.powerpack_uuid) body.powerpack_uuid = this.config.powerpack_uuid;
    else if (m.from) body.src = m.from.replace(/^\+/, '');
    if (m.mediaUrls.length > 0) {
      body.type = 'mms';
      body.media_urls = m.mediaUrls;
    }
    const base = this.config.webhook_base_url ?? this.deps.publicUrl;
    if (base) {
      body.url = `${trimSlash(base)}/hooks/${this.id}/status`;
      body.method = 'POST';
    }
    const answer = await request(`${trimSlash(this.config.base_url ?? PLIVO_BASE_URL)}/v1/Account/${encodeURIComponent(this.config.auth_id)}/Message/`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${this.config.auth_id}:${this.config.auth_token}`).toString('base64')}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body: JSON.stringify(body),
    });
    if (!isAnswer(answer)) return answer;
    const json = (answer.json ?? {}) as { message_uuid?: string[]; error?: string | Record<string, unknown>; api_id?: string };
    const uuid = json.message_uuid?.[0];
    if (answer.status >= 200 && answer.status < 300 && typeof uuid === 'string') return { ok: true, providerMessageId: uuid, raw: { message_uuid: json.message_uuid, api_id: json.api_id } };
    const text = typeof json.error === 'string' ? json.error : json.error ? JSON.stringify(json.error) : answer.text.slice(0, 200);
    // Plivo's submit errors are words, not codes: a bad dst is the one worth telling apart.
    let errorClass = classOfHttpStatus(answer.status);
    if (answer.status === 400 && /\b(dst|destination)\b/i.test(text)) errorClass = 'INVALID_NUMBER';
    return failure(errorClass, `HTTP_${answer.status}`, text || `Plivo answered HTTP ${answer.status}.`, {
      raw: { status: answer.status, error: json.error, api_id: json.api_id },
      retryAfterMs: errorClass === 'RATE_LIMITED' ? retryAfterMs(answer.headers) : undefined,
    });
  }

  async handleWebhook(req: WebhookRequest): Promise<WebhookResponse> {
    const isGet = req.method === 'GET';
    const form = new URLSearchParams(isGet ? '' : req.rawBody);
    const url = `${trimSlash(this.config.webhook_base_url ?? this.deps.publicUrl ?? req.baseUrl)}${req.path}`;
    const nonce = header(req.headers, 'x-plivo-signature-v3-nonce') ?? '';
    const given = [header(req.headers, 'x-plivo-signature-v3'), header(req.headers, 'x-plivo-signature-ma-v3')]
      .filter((x): x is string => !!x)
      .flatMap((x) => x.split(','))
      .map((x) => x.trim());
    const expected = plivoSignatureV3(this.config.auth_token, url, nonce, [...form.entries()]);
    if (!nonce || !given.some((g) => safeEqual(g, expected))) throw new AppError('AUTH_FAILED', 'The X-Plivo-Signature-V3 header does not match this request.');
    const p = Object.fromEntries((isGet ? new URLSearchParams(req.path.split('?')[1] ?? '') : form).entries());
    if (req.kind === 'status') {
      const receipt = plivoReceipt(p);
      if (receipt) await this.deps.sink.receipt(this.id, { ...receipt, raw: p });
      return { status: 204 };
    }
    if (!p.From || !p.To) throw new AppError('VALIDATION_ERROR', 'An inbound message needs From and To.', { field: p.From ? 'To' : 'From' });
    const mediaUrls: string[] = [];
    const n = Math.min(Number(p.MediaCount ?? 0) || 0, 10);
    for (let i = 0; i < n; i++) if (p[`Media${i}`]) mediaUrls.push(p[`Media${i}`]!);
    await this.deps.sink.inbound(this.id, { from: plus(p.From), to: plus(p.To), body: p.Text ?? '', channel: mediaUrls.length > 0 || p.Type === 'mms' ? 'mms' : 'sms', providerMessageId: p.MessageUUID, mediaUrls, raw: p });
    return { status: 204 };
  }
}

/** A status callback's parameters as a receipt; null while the message is not final. */
export function plivoReceipt(p: Record<string, string>): Receipt | null {
  const id = p.MessageUUID;
  const status = p.Status;
  if (!id || !status) return null;
  if (status === 'delivered' || status === 'read') return { providerMessageId: id, status: 'delivered' };
  const outcomes: Record<string, Receipt['status']> = { undelivered: 'undelivered', failed: 'failed', rejected: 'failed' };
  const outcome = outcomes[status];
  if (!outcome) return null; // queued, sent
  const code = p.ErrorCode && p.ErrorCode !== '000' ? p.ErrorCode : undefined;
  const known = code ? PLIVO_CODES[code] : undefined;
  const errorClass: ErrorClass = known?.errorClass ?? 'UNKNOWN_ERROR';
  return { providerMessageId: id, status: outcome, errorClass, code: errorClass, message: known?.meaning ?? `Plivo reported ${status}${code ? ` (error ${code})` : ''}.`, providerCode: code };
}
