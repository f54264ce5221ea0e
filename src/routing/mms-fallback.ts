// Routing a message, with the MMS fallback: the one place that decides whether an MMS goes as
// MMS, goes as SMS with its media links, or cannot go at all. Used at accept (message-service
// prepare) and again at claim (the dispatcher), since the route table may change in between.
//
// An MMS goes to the connectors that carry media, in route order, skipping those that do not
// (an SMPP bind). Only when none on any matching route carries media does the fallback apply:
// if the account allows it (messaging setting `mms_fallback_to_sms_link`), the message becomes
// an SMS whose text is the body followed by the media URLs, one a line, its segments and encoding
// recomputed, to the same routes' SMS connectors. Otherwise it is refused: FILTERED with reason
// `mms_not_supported` at accept, or failed with error code MMS_NOT_SUPPORTED at claim.
import { readMessagingSettings } from '../consent/messaging-settings.ts';
import { analyseText } from '../messages/encoding.ts';
import type { Executor } from '../storage/database.ts';
import type { Router, RoutingRequest } from './router.ts';

/** What a fallback changes on the message row. */
export interface SmsFallbackPatch {
  channel: 'sms';
  body: string;
  media_urls: null;
  segments: number;
  encoding: 'GSM-7' | 'UCS-2';
}

export type RoutePlan =
  | { kind: 'route'; connectors: string[] }
  | { kind: 'sms_fallback'; connectors: string[]; patch: SmsFallbackPatch; event: Record<string, unknown> }
  | { kind: 'mms_not_supported'; message: string; details: Record<string, unknown> };

/** The text of an MMS sent as SMS: its body, then each media URL on a line of its own. */
export function textWithLinks(body: string | null, mediaUrls: string[]): string {
  return [...(body ? [body] : []), ...mediaUrls].join('\n');
}

export async function planRoute(
  router: Router,
  db: Executor,
  req: RoutingRequest,
  message: { body: string | null; mediaUrls: string[] },
  maxSegments: number,
): Promise<RoutePlan> {
  const connectors = await router.candidates(req, db);
  if (connectors.length > 0 || req.channel !== 'mms') return { kind: 'route', connectors };
  const asSms = await router.candidates({ ...req, carry: 'sms' }, db);
  // No route at all for this message, media or not: the caller's usual no-route answer.
  if (asSms.length === 0) return { kind: 'route', connectors: [] };
  const details = { to: req.to, channel: 'mms', reason: 'mms_not_supported', connector_ids: asSms };
  if (!(await readMessagingSettings(db, req.accountId)).mms_fallback_to_sms_link) {
    return {
      kind: 'mms_not_supported',
      message: `No route carries media to ${req.to}: the connectors that would carry this message send SMS only. Allow mms_fallback_to_sms_link in /v1/settings/messaging to send it as SMS with links.`,
      details,
    };
  }
  const body = textWithLinks(message.body, message.mediaUrls);
  const info = analyseText(body);
  if (info.segments > maxSegments) {
    return { kind: 'mms_not_supported', message: `This MMS would go as SMS with its links, but that text needs ${info.segments} segments; the limit is ${maxSegments}.`, details: { ...details, segments: info.segments, max_segments: maxSegments } };
  }
  return {
    kind: 'sms_fallback',
    connectors: asSms,
    patch: { channel: 'sms', body, media_urls: null, segments: info.segments, encoding: info.encoding },
    event: { mms_fallback: { channel: 'sms', reason: 'no_route_carries_media', media_urls: message.mediaUrls } },
  };
}
