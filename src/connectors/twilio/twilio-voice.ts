// Twilio Programmable Voice: a `voice` message becomes one outbound call.
//
//   submit   — POST {base_url}/2010-04-01/Accounts/{account_sid}/Calls.json, form-encoded: To,
//              From, Twiml (<Say> the text, or <Play> the audio URL), MachineDetection
//              (DetectMessageEnd by default: on an answering machine Twilio waits for the beep,
//              so the message is left whole), StatusCallback and StatusCallbackEvent. The answer's
//              `sid` (CA…) is the provider id.
//   status   — Twilio POSTs CallSid, CallStatus, AnsweredBy, CallDuration (and SipResponseCode,
//              ErrorCode on failures) to /hooks/{connector_id}/status, signed with
//              X-Twilio-Signature exactly as for messages (twilio-connector.ts checks it).
//
// CallStatus and AnsweredBy → the message's outcome (voice/voice-outcome.ts):
//   completed + human / unknown / no AMD          → answered   (delivered)
//   completed + machine_start / machine_end_*      → machine    (delivered: voicemail left)
//   completed + fax                                → failed     (failed, INVALID_NUMBER)
//   busy                                           → busy       (undelivered, UNREACHABLE)
//   no-answer                                      → no_answer  (undelivered, UNREACHABLE)
//   failed / canceled                              → failed     (failed; class from ErrorCode or SipResponseCode)
//   queued, initiated, ringing, in-progress        → not final
import type { ErrorClass } from '../../errors.ts';
import type { OutboundMessage, Receipt, SubmitResult } from '../connector.ts';
import { classOfHttpStatus, failure, isAnswer, request, retryAfterMs } from '../provider-http.ts';
import type { AnsweredBy, VoiceResult } from '../../voice/voice-outcome.ts';
import { classifyTwilioCode } from './twilio-codes.ts';

export interface TwilioVoiceConfig {
  /** `DetectMessageEnd` (default), `Enable` (play at once, over the greeting) or `off`. */
  machine_detection?: 'DetectMessageEnd' | 'Enable' | 'off';
  /** <Say voice="…">, e.g. `alice` or `Polly.Joanna`; Twilio's default when absent. */
  say_voice?: string;
  /** <Say language="…">, e.g. `en-US`. */
  say_language?: string;
  /** Seconds to let the phone ring (Twilio's Timeout, 5–600). */
  ring_timeout_s?: number;
}

export function validateTwilioVoiceConfig(config: Record<string, unknown>): string[] {
  const errors: string[] = [];
  if (config.machine_detection !== undefined && !['DetectMessageEnd', 'Enable', 'off'].includes(config.machine_detection as string)) errors.push('machine_detection must be DetectMessageEnd, Enable or off');
  for (const f of ['say_voice', 'say_language'] as const) if (config[f] !== undefined && (typeof config[f] !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(config[f] as string))) errors.push(`${f} must be a voice or language name`);
  if (config.ring_timeout_s !== undefined && !(Number.isInteger(config.ring_timeout_s) && (config.ring_timeout_s as number) >= 5 && (config.ring_timeout_s as number) <= 600)) errors.push('ring_timeout_s must be a whole number from 5 to 600');
  return errors;
}

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

/** The TwiML of a voice message: play its audio when it has some, else say its text. */
export function callTwiml(m: Pick<OutboundMessage, 'body' | 'mediaUrls'>, config: TwilioVoiceConfig = {}): string {
  let verb: string;
  if (m.mediaUrls.length > 0) verb = `<Play>${xmlEscape(m.mediaUrls[0]!)}</Play>`;
  else {
    const attrs = [config.say_voice ? ` voice="${xmlEscape(config.say_voice)}"` : '', config.say_language ? ` language="${xmlEscape(config.say_language)}"` : ''].join('');
    verb = `<Say${attrs}>${xmlEscape(m.body ?? '')}</Say>`;
  }
  return `<?xml version="1.0" encoding="UTF-8"?><Response>${verb}</Response>`;
}

export async function sendCall(
  m: OutboundMessage,
  ctx: { baseUrl: string; config: TwilioVoiceConfig & { account_sid: string }; authorization: string; statusCallback: string | null },
): Promise<SubmitResult> {
  if (!m.from) return failure('FILTERED', 'NO_CALLER_ID', 'A call needs a From number: give the message a sender of this account on the Twilio connector.');
  const form = new URLSearchParams();
  form.set('To', m.to);
  form.set('From', m.from);
  form.set('Twiml', callTwiml(m, ctx.config));
  const amd = ctx.config.machine_detection ?? 'DetectMessageEnd';
  if (amd !== 'off') form.set('MachineDetection', amd);
  if (ctx.config.ring_timeout_s) form.set('Timeout', String(ctx.config.ring_timeout_s));
  if (ctx.statusCallback) {
    form.set('StatusCallback', ctx.statusCallback);
    form.set('StatusCallbackMethod', 'POST');
    // Only `completed` (the default) carries the outcome; the others show progress in events.
    for (const e of ['initiated', 'ringing', 'answered', 'completed']) form.append('StatusCallbackEvent', e);
  }
  const answer = await request(`${ctx.baseUrl}/2010-04-01/Accounts/${encodeURIComponent(ctx.config.account_sid)}/Calls.json`, {
    method: 'POST',
    headers: { authorization: ctx.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: form.toString(),
  });
  if (!isAnswer(answer)) return answer;
  const body = (answer.json ?? {}) as { sid?: string; status?: string; code?: number; message?: string };
  if (answer.status >= 200 && answer.status < 300 && typeof body.sid === 'string') return { ok: true, providerMessageId: body.sid, raw: { sid: body.sid, status: body.status } };
  const code = body.code ?? (answer.status === 429 ? 20429 : undefined);
  const c = classifyTwilioCode(code, classOfHttpStatus(answer.status));
  return failure(c.errorClass, code !== undefined ? String(code) : `HTTP_${answer.status}`, body.message ?? c.message ?? `Twilio answered HTTP ${answer.status}.`, {
    raw: { status: answer.status, code: body.code, message: body.message },
    retryAfterMs: c.errorClass === 'RATE_LIMITED' ? retryAfterMs(answer.headers) : undefined,
  });
}

/** A call's status callback (CallSid and CallStatus, no MessageSid), as opposed to a message's. */
export function isCallCallback(p: Record<string, string>): boolean {
  return Boolean(p.CallSid && p.CallStatus && !p.MessageSid && !p.SmsSid);
}

function answeredBy(v: string | undefined): AnsweredBy | null {
  if (!v) return null;
  if (v === 'human') return 'human';
  if (v.startsWith('machine')) return 'machine';
  if (v === 'fax') return 'fax';
  return 'unknown';
}

/** SIP final responses of a failed call, when Twilio gives no ErrorCode. */
function classOfSip(code: string | undefined): ErrorClass {
  const n = Number(code);
  if ([404, 484, 604].includes(n)) return 'INVALID_NUMBER';
  if ([403, 603, 607, 608].includes(n)) return 'FILTERED';
  if ([408, 480, 486, 503, 600].includes(n)) return 'UNREACHABLE';
  return 'UNKNOWN_ERROR';
}

/** A call status callback as a receipt with the call's outcome; null while the call is not over. */
export function twilioCallReceipt(p: Record<string, string>): Receipt | null {
  const id = p.CallSid!;
  const duration = p.CallDuration !== undefined && /^\d+$/.test(p.CallDuration) ? Number(p.CallDuration) : 0;
  const who = answeredBy(p.AnsweredBy);
  const voice = (outcome: VoiceResult['outcome']): VoiceResult => ({ outcome, durationS: duration, answeredBy: who });
  switch (p.CallStatus) {
    case 'completed':
      if (who === 'fax') {
        return { providerMessageId: id, status: 'failed', errorClass: 'INVALID_NUMBER', code: 'INVALID_NUMBER', message: 'A fax machine answered the call.', providerCode: 'FAX', voice: voice('failed'), raw: p };
      }
      return { providerMessageId: id, status: 'delivered', voice: voice(who === 'machine' ? 'machine' : 'answered'), raw: p };
    case 'busy':
      return { providerMessageId: id, status: 'undelivered', errorClass: 'UNREACHABLE', code: 'UNREACHABLE', message: 'The line was busy.', providerCode: 'busy', voice: voice('busy'), raw: p };
    case 'no-answer':
      return { providerMessageId: id, status: 'undelivered', errorClass: 'UNREACHABLE', code: 'UNREACHABLE', message: 'Nobody answered the call.', providerCode: 'no-answer', voice: voice('no_answer'), raw: p };
    case 'failed':
    case 'canceled': {
      const code = p.ErrorCode || undefined;
      const known = classifyTwilioCode(code, p.CallStatus === 'canceled' ? 'UNKNOWN_ERROR' : classOfSip(p.SipResponseCode));
      return {
        providerMessageId: id,
        status: 'failed',
        errorClass: known.errorClass,
        code: known.errorClass,
        message: known.message ?? (p.SipResponseCode ? `The call failed (SIP ${p.SipResponseCode}).` : `Twilio reported the call ${p.CallStatus}.`),
        providerCode: code ?? (p.SipResponseCode ? `SIP_${p.SipResponseCode}` : p.CallStatus),
        voice: voice('failed'),
        raw: p,
      };
    }
    default:
      return null; // queued, initiated, ringing, in-progress
  }
}
