// The message object of the API (CONTRACT §4), made from a row. One function, used by every
// route, webhook and CLI command that shows a message.
import { seesBodies, type Principal } from '../auth/scopes.ts';
import type { MessagesTable } from '../storage/schema.ts';
import { voiceView, type VoiceView } from '../voice/voice-outcome.ts';

export type MessageRow = MessagesTable;

export interface MessageError {
  class: string;
  code: string;
  message: string;
  provider_code: string | null;
}

export interface MessageView {
  id: string;
  object: 'message';
  account_id: string;
  mode: string;
  direction: string;
  channel: string;
  to: string;
  from: string | null;
  body: string | null;
  media_urls: string[];
  status: string;
  segments: number;
  encoding: string;
  purpose: string;
  provider_message_id: string | null;
  connector_id: string | null;
  error: MessageError | null;
  /** Voice and rvm: the call's outcome (voice/voice-outcome.ts); null for sms and mms. */
  voice: VoiceView | null;
  attempts: number;
  send_at: string | null;
  expires_at: string | null;
  status_callback: string | null;
  created_at: string;
  updated_at: string;
  metadata: Record<string, string>;
  /** Present (true) when the body and media references are left out: removed by the account's retention (security/retention.ts), or not shown to this reader (a viewer). */
  body_redacted?: true;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toMessageView(row: MessageRow): MessageView {
  return {
    id: row.id,
    object: 'message',
    account_id: row.account_id,
    mode: row.mode,
    direction: row.direction,
    channel: row.channel,
    to: row.to_addr,
    from: row.from_addr,
    body: row.body,
    media_urls: row.media_urls ? JSON.parse(row.media_urls) : [],
    status: row.status,
    segments: row.segments,
    encoding: row.encoding,
    purpose: row.purpose,
    provider_message_id: row.provider_message_id,
    connector_id: row.connector_id,
    error: row.error_class
      ? { class: row.error_class, code: row.error_code ?? row.error_class, message: row.error_message ?? '', provider_code: row.provider_code }
      : null,
    voice: voiceView(row),
    attempts: row.attempts,
    send_at: iso(row.send_at),
    expires_at: iso(row.expires_at),
    status_callback: row.status_callback,
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
    metadata: JSON.parse(row.metadata),
    ...(row.redacted_at ? { body_redacted: true as const } : {}),
  };
}

type RowDefaults = 'from_addr' | 'body' | 'media_urls' | 'purpose' | 'provider_message_id' | 'connector_id' | 'error_class' | 'error_code' | 'error_message' | 'provider_code' | 'metadata' | 'status_callback' | 'send_at' | 'expires_at' | 'next_attempt_at' | 'attempts' | 'lease_owner' | 'lease_expires_at' | 'updated_at';

/** A new message row: what every fresh message starts with, and what this one says. */
export function messageRow(fields: Omit<MessageRow, RowDefaults> & Partial<Pick<MessageRow, RowDefaults>>): MessageRow {
  return {
    from_addr: null,
    body: null,
    media_urls: null,
    purpose: 'transactional',
    provider_message_id: null,
    connector_id: null,
    error_class: null,
    error_code: null,
    error_message: null,
    provider_code: null,
    metadata: '{}',
    status_callback: null,
    send_at: null,
    expires_at: null,
    next_attempt_at: null,
    attempts: 0,
    lease_owner: null,
    lease_expires_at: null,
    updated_at: fields.created_at,
    ...fields,
  };
}

/**
 * The message as `principal` may see it: without its body and media references when the
 * principal may not read bodies (the `viewer` role). Every view that shows a message goes
 * through this.
 */
export function visibleTo(principal: Pick<Principal, 'bodies'>, view: MessageView): MessageView {
  if (seesBodies(principal)) return view;
  return { ...view, body: null, media_urls: [], body_redacted: true };
}

// Keys of an event's data that can carry the text: a provider's raw payload (an SMPP receipt
// quotes the first characters of the message), and any field named like a body.
const CONTENT_KEYS = new Set(['raw', 'body', 'text', 'message', 'content', 'short_message', 'media_urls']);

/** An event's data as `principal` may see it: the provider's raw data left out for a viewer. */
export function eventDataVisibleTo(principal: Pick<Principal, 'bodies'>, data: Record<string, unknown>): { data: Record<string, unknown>; redacted: boolean } {
  if (seesBodies(principal)) return { data, redacted: false };
  const kept = Object.fromEntries(Object.entries(data).filter(([k]) => !CONTENT_KEYS.has(k)));
  return { data: kept, redacted: Object.keys(kept).length !== Object.keys(data).length };
}
