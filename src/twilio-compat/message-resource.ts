// The Message resource in Twilio's shape (api.twilio.com/2010-04-01), made from our message view.
// One function, used by every route and callback that shows a message the Twilio way.
import type { MessageView } from '../messages/message-view.ts';
import { messageError } from './twilio-errors.ts';
import { sidOf } from './sids.ts';

export const API_VERSION = '2010-04-01';

/** RFC 2822 as Twilio writes it: `Thu, 30 Jul 2015 20:12:31 +0000`. */
export function rfc2822(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toUTCString().replace('GMT', '+0000');
}

/** SM… for a text message, MM… for one with media, as Twilio tells them apart. */
export function messageSid(view: Pick<MessageView, 'id' | 'channel'>): string {
  return sidOf(view.id, view.channel === 'mms' ? 'MM' : 'SM');
}

/**
 * Twilio's status for ours. `expired` is Twilio's "validity period expired" (error 30036): the
 * message `failed` if it never left, or is `undelivered` if a carrier had it and no receipt came.
 */
export function twilioStatus(view: Pick<MessageView, 'status' | 'provider_message_id'>): string {
  if (view.status === 'expired') return view.provider_message_id ? 'undelivered' : 'failed';
  return view.status;
}

/** outbound-api for what an API sent, outbound-reply for an answer to an inbound message. */
export function twilioDirection(view: Pick<MessageView, 'direction' | 'metadata'>): string {
  if (view.direction === 'inbound') return 'inbound';
  return view.metadata.in_reply_to ? 'outbound-reply' : 'outbound-api';
}

export interface MessageContext {
  accountSid: string;
  messagingServiceSid: string | null;
  /** When a carrier accepted it (its `sent` event); the creation time for inbound messages. */
  sentAt: number | null;
  /** Whether the caller may read bodies (interfaces seam 2). */
  bodies: boolean;
  /** The create answer of a message sent through a messaging service: Twilio says `accepted`. */
  accepted?: boolean;
}

export function messageUri(accountSid: string, sid: string): string {
  return `/${API_VERSION}/Accounts/${accountSid}/Messages/${sid}.json`;
}

export function toTwilioMessage(view: MessageView, ctx: MessageContext) {
  const sid = messageSid(view);
  const uri = messageUri(ctx.accountSid, sid);
  const error = messageError(view);
  const status = twilioStatus(view);
  return {
    account_sid: ctx.accountSid,
    api_version: API_VERSION,
    body: ctx.bodies ? (view.body ?? '') : null,
    ...(ctx.bodies ? {} : { body_redacted: true }),
    date_created: rfc2822(Date.parse(view.created_at)),
    date_sent: rfc2822(ctx.sentAt),
    date_updated: rfc2822(Date.parse(view.updated_at)),
    direction: twilioDirection(view),
    error_code: error && (status === 'failed' || status === 'undelivered' || status === 'canceled') ? error.code : null,
    error_message: error && (status === 'failed' || status === 'undelivered' || status === 'canceled') ? error.message : null,
    from: view.from,
    messaging_service_sid: ctx.messagingServiceSid,
    num_media: String(view.media_urls.length),
    num_segments: String(view.segments),
    price: null,
    price_unit: 'USD',
    sid,
    status: ctx.accepted && status === 'queued' ? 'accepted' : status,
    subresource_uris: { media: `/${API_VERSION}/Accounts/${ctx.accountSid}/Messages/${sid}/Media.json`, feedback: `/${API_VERSION}/Accounts/${ctx.accountSid}/Messages/${sid}/Feedback.json` },
    to: view.to,
    uri,
  };
}

export type TwilioMessage = ReturnType<typeof toTwilioMessage>;
