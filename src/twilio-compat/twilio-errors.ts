// Errors in Twilio's shape, and Twilio's error codes for ours.
//
// An error answer on /2010-04-01 is what Twilio sends — {code, message, more_info, status} with
// Twilio's HTTP status — so that the helper libraries raise RestException with the right code.
// It also carries our own CONTRACT §3 object under `error` (the request id, our code, details):
// Twilio's libraries ignore the extra key, and Switchboard's own clients and tests find the
// body they expect on every route.
//
// Two tables: `apiError` turns an AppError thrown while answering a request (validation,
// consent, auth) into a Twilio REST error; `messageErrorCode` gives a failed message its
// `error_code` in a resource or a status callback.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { errorBody } from '../http/errors.ts';
import { TWILIO_CODES } from '../connectors/twilio/twilio-connector.ts';
import type { MessageView } from '../messages/message-view.ts';

export const moreInfo = (code: number) => `https://www.twilio.com/docs/errors/${code}`;

/** A Twilio REST error: the Twilio code and HTTP status, and our AppError underneath. */
export class TwilioError extends Error {
  constructor(
    readonly twilioCode: number,
    readonly status: number,
    message: string,
    readonly cause: AppError,
  ) {
    super(message);
  }
}

/** A Twilio error with our VALIDATION_ERROR underneath, for checks made in this module. */
export function twilioInvalid(code: number, field: string, message: string, extra: Record<string, unknown> = {}): TwilioError {
  return new TwilioError(code, 400, message, new AppError('VALIDATION_ERROR', message, { field, twilio_code: code, ...extra }));
}

export function twilioNotFound(path: string): TwilioError {
  const message = `The requested resource ${path} was not found`;
  return new TwilioError(20404, 404, message, new AppError('NOT_FOUND', message, { path }));
}

export function twilioAuthFailed(message = 'Authenticate'): TwilioError {
  return new TwilioError(20003, 401, message, new AppError('AUTH_FAILED', message));
}

/** Which Twilio code a validation error of MessageService means, by the field it names. */
function validationCode(details: Record<string, unknown>): number {
  const field = String(details.field ?? '');
  if (field === 'to') return 21211;
  if (field === 'from') return 21606;
  if (field === 'sender_pool_id') return 21705;
  if (field === 'body' || field === 'message' || field === 'text' || field === 'content') {
    return details.segments !== undefined || details.length !== undefined ? 21617 : 21602;
  }
  if (field.startsWith('media_urls')) return 21620;
  if (field === 'status_callback') return 21609;
  if (field === 'send_at') return 35114;
  if (field.startsWith('template')) return 21656;
  return 20422;
}

/** A Twilio REST error for an AppError thrown while handling a /2010-04-01 request. */
export function apiError(err: AppError): TwilioError {
  const d = err.details;
  if (typeof d.twilio_code === 'number') return new TwilioError(d.twilio_code, err.status === 422 ? 400 : err.status, err.message, err);
  switch (err.code) {
    case 'AUTH_FAILED':
      return new TwilioError(20003, 401, 'Authenticate', err);
    case 'FORBIDDEN':
      return new TwilioError(20403, 403, err.message, err);
    case 'NOT_FOUND':
      return new TwilioError(20404, 404, err.message, err);
    case 'RATE_LIMITED':
      return new TwilioError(20429, 429, 'Too Many Requests', err);
    case 'PAYLOAD_TOO_LARGE':
      return new TwilioError(20422, 413, err.message, err);
    case 'IDEMPOTENCY_CONFLICT':
      return new TwilioError(20409, 409, err.message, err);
    case 'INVALID_NUMBER':
      return new TwilioError(21211, 400, d.value !== undefined && d.suppressed !== true ? `The 'To' number ${String(d.value)} is not a valid phone number.` : `Invalid 'To' Phone Number: ${err.message}`, err);
    case 'OPTED_OUT':
      return new TwilioError(21610, 400, `Attempt to send to unsubscribed recipient: ${err.message}`, err);
    case 'CONSENT_REQUIRED':
      return new TwilioError(21610, 400, err.message, err);
    case 'FILTERED':
      if (d.reason === 'no_capable_sender') return new TwilioError(21704, 400, err.message, err);
      if (d.reason === 'no_route' || d.reason === 'mms_not_supported') return new TwilioError(21408, 400, err.message, err);
      return new TwilioError(30007, 400, err.message, err);
    case 'VALIDATION_ERROR':
      return new TwilioError(validationCode(d), 400, err.message, err);
    default:
      return new TwilioError(20500, 500, 'An internal server error has occurred', err);
  }
}

/** Sends a TwilioError: Twilio's fields at the top, our CONTRACT §3 object under `error`. */
export function sendTwilioError(req: FastifyRequest, reply: FastifyReply, e: TwilioError) {
  for (const [k, v] of Object.entries(e.cause.headers)) reply.header(k, v);
  if (e.status === 401) reply.header('www-authenticate', 'Basic realm="Twilio API"');
  const ours = errorBody(req, e.cause.code, e.cause.message, { ...e.cause.details, twilio_code: e.twilioCode });
  return reply.status(e.status).send({ code: e.twilioCode, message: e.message, more_info: moreInfo(e.twilioCode), status: e.status, ...ours });
}

// Our error classes after acceptance → Twilio's delivery error codes (docs/twilio-compatibility.md).
const CLASS_CODES: Record<string, number> = {
  INVALID_NUMBER: 30005,
  OPTED_OUT: 21610,
  UNREACHABLE: 30003,
  FILTERED: 30007,
  RATE_LIMITED: 30001,
  AUTH_FAILED: 30008,
  UNKNOWN_ERROR: 30008,
};

/** The expired status's code: the validity period ran out (Twilio 30036). */
export const VALIDITY_EXPIRED = 30036;

export interface TwilioMessageError {
  code: number;
  message: string;
}

/**
 * A message's Twilio error: the provider's own code when the message went through our Twilio
 * connector (it is a Twilio code already), else the code of its error class; 30036 for an
 * expired message; null when nothing failed.
 */
export function messageError(view: Pick<MessageView, 'status' | 'error' | 'connector_id'>): TwilioMessageError | null {
  if (view.status === 'expired') return { code: VALIDITY_EXPIRED, message: view.error?.message || 'The validity period of the message expired before it was delivered.' };
  const e = view.error;
  if (!e) return null;
  if (e.provider_code && /^\d{5}$/.test(e.provider_code) && TWILIO_CODES[e.provider_code]) return { code: Number(e.provider_code), message: e.message || TWILIO_CODES[e.provider_code].meaning };
  if (e.code === 'MMS_NOT_SUPPORTED' || e.code === 'NO_ROUTE') return { code: 21408, message: e.message };
  if (e.code === 'SUPPRESSED' || e.code === 'CONSENT_WITHDRAWN') return { code: 21610, message: e.message };
  const code = CLASS_CODES[e.class] ?? 30008;
  return { code, message: e.message };
}
