// Drop Cowboy ringless voicemail (rvm) over its REST API (api-v2.dropcowboy.com), as its
// public docs and official examples describe it (github.com/Drop-Cowboy/dropcowboy).
//
//   submit   — POST {base_url}/rvm, JSON, headers x-key / x-secret and an Idempotency-Key (a
//              UUID derived from our message id, so a resubmit after a crash or a throttle is
//              the same send to Drop Cowboy, never a second voicemail). Body: to, phone_line_id
//              or caller_id, audio_url (the message's audio, or its text rendered by text to
//              speech and served from /media), foreign_id (our message id), callback_url.
//              Answer: 202 {"status": "queued", "message_id"} — the provider id. A 202 is only
//              "in line": a wrong secret or an unusable audio file still gets one and fails in
//              the result.
//   results  — each send ends with status success|failure and a numeric reason_code, which
//              reaches /hooks/{connector_id}/status two ways:
//                • the per-send callback_url: unsigned (Drop Cowboy documents no signature for
//                  it), one attempt, echoes foreign_id. We make it authentic ourselves: the URL
//                  carries t = HMAC-SHA256(api_secret, connector id + message id), checked
//                  against the body's foreign_id.
//                • a webhook for contact.rvm.status registered in the Drop Cowboy account:
//                  signed (X-Signature: sha256=HMAC-SHA256(webhook_secret, X-Timestamp + "." +
//                  raw body), X-Timestamp within 5 minutes), retried on 5xx. It carries no
//                  foreign_id, so it is matched on `to`: the oldest rvm message to that number
//                  on this connector still waiting for its result (Drop Cowboy allows few sends
//                  to one number a day, so two in flight at once are rare; see docs/connectors.md).
//              Either, or both (the second is recorded as a duplicate). A call that does not
//              authenticate is 401 and changes nothing.
import { createHash, createHmac } from 'node:crypto';
import { sql } from 'kysely';
import { AppError, type ErrorClass } from '../../errors.ts';
import type { VoiceResult } from '../../voice/voice-outcome.ts';
import { CONNECTOR_CHANNELS } from '../connector-channels.ts';
import type { ConnectorDeps, ConnectorRow, OutboundMessage, Receipt, SubmitResult, WebhookRequest, WebhookResponse } from '../connector.ts';
import { HttpProviderConnector } from '../http-provider-connector.ts';
import { checkUrl, classOfHttpStatus, failure, header, isAnswer, request, requireStrings, retryAfterMs, safeEqual, trimSlash } from '../provider-http.ts';

export interface DropCowboyConfig {
  api_key: string;
  api_secret: string;
  /** The signing secret of the account's contact.rvm.status webhook; without it, only callbacks are taken. */
  webhook_secret?: string;
  /** The phone line to send from (retail accounts); the account's default line when absent. */
  phone_line_id?: string;
  /** BYOC accounts: show the message's sender as caller_id instead of sending phone_line_id. */
  caller_id_from_sender?: boolean;
  base_url?: string;
  webhook_base_url?: string;
  max_in_flight?: number;
}

export const DROPCOWBOY_BASE_URL = 'https://api-v2.dropcowboy.com';
const SIGNATURE_TOLERANCE_S = 300;

/** reason_code → class, the status it leaves the message in, and the voicemail's outcome. */
export const DROPCOWBOY_REASONS: Record<number, { errorClass: ErrorClass; status: 'undelivered' | 'failed'; outcome: VoiceResult['outcome']; meaning: string }> = {
  3000: { errorClass: 'AUTH_FAILED', status: 'failed', outcome: 'failed', meaning: 'No funds on the account' },
  3001: { errorClass: 'UNKNOWN_ERROR', status: 'failed', outcome: 'failed', meaning: 'The audio is not usable (could not be downloaded, or not MP3 or WAV)' },
  3007: { errorClass: 'AUTH_FAILED', status: 'failed', outcome: 'failed', meaning: 'Wrong key or secret' },
  3014: { errorClass: 'FILTERED', status: 'failed', outcome: 'failed', meaning: 'audio_url is not enabled for this account (BYOC plans, enabled by support)' },
  3021: { errorClass: 'UNKNOWN_ERROR', status: 'failed', outcome: 'failed', meaning: 'tts_body over 1,200 characters' },
  3027: { errorClass: 'UNKNOWN_ERROR', status: 'failed', outcome: 'failed', meaning: 'Idempotency-Key used before with a different body' },
  3028: { errorClass: 'UNKNOWN_ERROR', status: 'failed', outcome: 'failed', meaning: 'Idempotency-Key is not valid' },
  3040: { errorClass: 'FILTERED', status: 'failed', outcome: 'failed', meaning: 'The account is in testing mode and this is not a test number' },
  4000: { errorClass: 'UNREACHABLE', status: 'undelivered', outcome: 'no_answer', meaning: 'Voicemail not detected' },
  4001: { errorClass: 'UNREACHABLE', status: 'undelivered', outcome: 'failed', meaning: 'The contact has no voicemail set up' },
  4002: { errorClass: 'UNREACHABLE', status: 'undelivered', outcome: 'failed', meaning: "The contact's voicemail is full" },
  4004: { errorClass: 'UNREACHABLE', status: 'undelivered', outcome: 'failed', meaning: 'Number not reachable' },
  4005: { errorClass: 'UNREACHABLE', status: 'undelivered', outcome: 'no_answer', meaning: 'No answer' },
  4006: { errorClass: 'UNREACHABLE', status: 'undelivered', outcome: 'busy', meaning: 'User busy' },
  4010: { errorClass: 'AUTH_FAILED', status: 'failed', outcome: 'failed', meaning: 'No phone line to send from (set phone_line_id, or a default line)' },
  4013: { errorClass: 'RATE_LIMITED', status: 'failed', outcome: 'failed', meaning: 'Too many attempts to this number (contact frequency limit)' },
  4016: { errorClass: 'OPTED_OUT', status: 'failed', outcome: 'failed', meaning: 'On the internal do-not-call list' },
  4017: { errorClass: 'FILTERED', status: 'failed', outcome: 'failed', meaning: 'Known litigator' },
  4019: { errorClass: 'INVALID_NUMBER', status: 'failed', outcome: 'failed', meaning: 'Reassigned number (the consent belonged to its previous owner)' },
  4021: { errorClass: 'UNKNOWN_ERROR', status: 'failed', outcome: 'failed', meaning: 'Reassigned-numbers lookup failed' },
  6000: { errorClass: 'FILTERED', status: 'failed', outcome: 'failed', meaning: 'The carrier denied the use case' },
  6002: { errorClass: 'FILTERED', status: 'failed', outcome: 'failed', meaning: 'Number pool suspended' },
  6005: { errorClass: 'OPTED_OUT', status: 'failed', outcome: 'failed', meaning: 'Opt-in revoked' },
  6011: { errorClass: 'FILTERED', status: 'failed', outcome: 'failed', meaning: 'The account requires consent and none is on file at Drop Cowboy' },
};

export function validateDropCowboyConfig(config: Record<string, unknown>): string[] {
  const errors = requireStrings(config, ['api_key', 'api_secret']);
  errors.push(...checkUrl(config, 'base_url'), ...checkUrl(config, 'webhook_base_url'));
  for (const f of ['webhook_secret', 'phone_line_id'] as const) if (config[f] !== undefined && (typeof config[f] !== 'string' || config[f] === '')) errors.push(`${f} must be a non-empty string`);
  if (config.caller_id_from_sender !== undefined && typeof config.caller_id_from_sender !== 'boolean') errors.push('caller_id_from_sender must be true or false');
  if (config.max_in_flight !== undefined && !(Number.isInteger(config.max_in_flight) && (config.max_in_flight as number) > 0)) errors.push('max_in_flight must be a positive integer');
  return errors;
}

/** The Idempotency-Key of a message: the same UUID on every attempt (RFC 4122 layout, from a hash). */
export function idempotencyKey(connectorId: string, reference: string): string {
  const h = createHash('sha256').update(`dropcowboy\u0000${connectorId}\u0000${reference}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** X-Signature of a webhook delivery: sha256= + hex HMAC-SHA256(secret, timestamp + "." + raw body). */
export function dropCowboySignature(secret: string, timestamp: string, rawBody: string): string {
  return `sha256=${createHmac('sha256', secret).update(timestamp).update('.').update(rawBody).digest('hex')}`;
}

/** A result (callback or webhook data) as a receipt for the message Drop Cowboy calls `providerId`. */
export function dropCowboyReceipt(providerId: string, r: { status?: unknown; reason?: unknown; reason_code?: unknown }, raw: unknown): Receipt | null {
  const code = Number(r.reason_code);
  if (r.status === 'success' || (r.status === undefined && code === 0)) {
    return { providerMessageId: providerId, status: 'delivered', voice: { outcome: 'machine', durationS: null, answeredBy: 'machine' }, raw };
  }
  if (r.status !== 'failure') return null;
  const known = DROPCOWBOY_REASONS[code];
  const reason = typeof r.reason === 'string' && r.reason ? r.reason : null;
  return {
    providerMessageId: providerId,
    status: known?.status ?? 'failed',
    errorClass: known?.errorClass ?? 'UNKNOWN_ERROR',
    code: known?.errorClass ?? 'UNKNOWN_ERROR',
    message: reason ?? known?.meaning ?? `Drop Cowboy reason ${code}.`,
    providerCode: Number.isFinite(code) ? String(code) : undefined,
    voice: { outcome: known?.outcome ?? 'failed', durationS: 0, answeredBy: null },
    raw,
  };
}

export class DropCowboyConnector extends HttpProviderConnector<DropCowboyConfig> {
  readonly type = 'dropcowboy';

  constructor(row: ConnectorRow, deps: ConnectorDeps) {
    super(row, deps, [...CONNECTOR_CHANNELS.dropcowboy]);
  }

  private get baseUrl() {
    return trimSlash(this.config.base_url ?? DROPCOWBOY_BASE_URL);
  }

  /** The token in a send's callback_url: only we (and Drop Cowboy, which we told) know it. */
  private callbackToken(reference: string): string {
    return createHmac('sha256', this.config.api_secret).update(`dropcowboy-callback\u0000${this.id}\u0000${reference}`).digest('base64url');
  }

  protected async send(m: OutboundMessage): Promise<SubmitResult> {
    if (m.channel !== 'rvm') return failure('FILTERED', 'CHANNEL_NOT_SUPPORTED', `Drop Cowboy sends ringless voicemail only, not ${m.channel}.`);
    let audioUrl = m.mediaUrls[0];
    let tts: Record<string, unknown> | undefined;
    if (!audioUrl) {
      if (!m.body) return failure('FILTERED', 'NO_AUDIO', 'A ringless voicemail needs audio: give media_urls or a text to speak.');
      if (!this.deps.speech) return failure('UNKNOWN_ERROR', 'TTS_UNAVAILABLE', 'Text to speech is not set up in this process.');
      try {
        const rendered = await this.deps.speech.render({ accountId: m.accountId, mode: m.mode, text: m.body });
        audioUrl = rendered.url;
        tts = { media_id: rendered.mediaId, url: rendered.url, content_type: rendered.contentType, cached: rendered.cached };
      } catch (err) {
        return failure('UNKNOWN_ERROR', 'TTS_FAILED', `Text to speech failed: ${(err as Error).message}`);
      }
    }
    const body: Record<string, unknown> = { to: m.to };
    if (this.config.caller_id_from_sender && m.from) body.caller_id = m.from;
    else if (this.config.phone_line_id) body.phone_line_id = this.config.phone_line_id;
    body.audio_url = audioUrl;
    body.foreign_id = m.reference;
    const base = this.publicBase();
    if (base) body.callback_url = `${base}/hooks/${this.id}/status?t=${this.callbackToken(m.reference)}`;
    const answer = await request(`${this.baseUrl}/rvm`, {
      method: 'POST',
      headers: {
        'x-key': this.config.api_key,
        'x-secret': this.config.api_secret,
        'content-type': 'application/json',
        accept: 'application/json',
        'idempotency-key': idempotencyKey(this.id, m.reference),
      },
      body: JSON.stringify(body),
    });
    if (!isAnswer(answer)) return answer;
    const json = (answer.json ?? {}) as { status?: string; message_id?: string; title?: string; detail?: string; code?: string; message?: string };
    if (answer.status >= 200 && answer.status < 300 && typeof json.message_id === 'string') {
      return { ok: true, providerMessageId: json.message_id, raw: { status: json.status, message_id: json.message_id, ...(tts ? { tts } : {}) } };
    }
    const errorClass = answer.status === 409 ? 'UNKNOWN_ERROR' : classOfHttpStatus(answer.status);
    return failure(errorClass, json.code ?? `HTTP_${answer.status}`, json.detail ?? json.title ?? json.message ?? `Drop Cowboy answered HTTP ${answer.status}.`, {
      raw: { status: answer.status, title: json.title, detail: json.detail, code: json.code },
      retryAfterMs: errorClass === 'RATE_LIMITED' ? retryAfterMs(answer.headers) : undefined,
    });
  }

  async handleWebhook(req: WebhookRequest): Promise<WebhookResponse> {
    if (req.kind !== 'status' || req.method !== 'POST') throw new AppError('NOT_FOUND', 'Drop Cowboy posts results to /hooks/{connector_id}/status.');
    return header(req.headers, 'x-signature') !== undefined ? this.handleSignedWebhook(req) : this.handleCallback(req);
  }

  /** A per-send callback_url call: authentic when its t matches the foreign_id it carries. */
  private async handleCallback(req: WebhookRequest): Promise<WebhookResponse> {
    const given = new URL(req.path, 'http://x').searchParams.get('t') ?? '';
    const body = parseObject(req.rawBody);
    const reference = typeof body?.foreign_id === 'string' ? body.foreign_id : '';
    if (!given || !reference || !safeEqual(given, this.callbackToken(reference))) throw new AppError('AUTH_FAILED', 'This callback does not carry the token of its send.');
    const row = await this.deps.storage.db.selectFrom('messages').select(['provider_message_id']).where('id', '=', reference).where('connector_id', '=', this.id).executeTakeFirst();
    // The 202 of this send is not recorded yet (a result within milliseconds of it): ask again.
    if (!row?.provider_message_id) return { status: 503, contentType: 'application/json', body: JSON.stringify({ received: false, retry: true }) };
    const receipt = dropCowboyReceipt(row.provider_message_id, body!, body);
    if (receipt) await this.deps.sink.receipt(this.id, receipt);
    return { status: 200, contentType: 'application/json', body: JSON.stringify({ received: true }) };
  }

  private async handleSignedWebhook(req: WebhookRequest): Promise<WebhookResponse> {
    const secret = this.config.webhook_secret;
    const signature = header(req.headers, 'x-signature') ?? '';
    const timestamp = header(req.headers, 'x-timestamp') ?? '';
    const version = header(req.headers, 'x-signature-version');
    if (!secret) throw new AppError('AUTH_FAILED', 'This connector has no webhook_secret to check X-Signature with.');
    if (!/^\d+$/.test(timestamp) || Math.abs(this.deps.clock.now() / 1000 - Number(timestamp)) > SIGNATURE_TOLERANCE_S) throw new AppError('AUTH_FAILED', 'X-Timestamp is missing or more than 5 minutes from our clock.');
    if ((version !== undefined && version !== 'v1') || !safeEqual(signature, dropCowboySignature(secret, timestamp, req.rawBody))) throw new AppError('AUTH_FAILED', 'The X-Signature header does not match this request.');
    const event = parseObject(req.rawBody);
    if (!event) throw new AppError('VALIDATION_ERROR', 'The webhook body is not a JSON object.', { field: 'body' });
    const data = (event.data ?? {}) as Record<string, unknown>;
    if (event.event !== 'contact.rvm.status' || typeof data.to !== 'string') return { status: 200, contentType: 'application/json', body: JSON.stringify({ received: true, ignored: true }) };
    const row = await this.waitingFor(data.to);
    if (row === 'pending') return { status: 503, contentType: 'application/json', body: JSON.stringify({ received: false, retry: true }) };
    if (row) {
      const receipt = dropCowboyReceipt(row, data, event);
      if (receipt) await this.deps.sink.receipt(this.id, receipt);
    }
    return { status: 200, contentType: 'application/json', body: JSON.stringify({ received: true }) };
  }

  /**
   * The provider id of the rvm message to `to` whose result this is: the oldest still `sent`;
   * else the latest that already has its result (the webhook after the callback: a duplicate,
   * recorded as such); 'pending' when one is still being submitted (its 202 not yet recorded).
   */
  private async waitingFor(to: string): Promise<string | 'pending' | null> {
    const rows = await this.deps.storage.db
      .selectFrom('messages')
      .select(['provider_message_id', 'status'])
      .where('connector_id', '=', this.id)
      .where('to_addr', '=', to)
      .where('channel', '=', 'rvm')
      .where('direction', '=', 'outbound')
      .where(sql<boolean>`status in ('sending', 'sent', 'delivered', 'undelivered', 'failed')`)
      .orderBy('id')
      .execute();
    const sent = rows.find((r) => r.status === 'sent' && r.provider_message_id);
    if (sent) return sent.provider_message_id;
    if (rows.some((r) => r.status === 'sending')) return 'pending';
    return rows.filter((r) => r.provider_message_id).at(-1)?.provider_message_id ?? null;
  }
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}
