// Twilio error codes → error classes: REST API errors answered to a submit (a message or a
// call), and delivery errors carried by a status callback's ErrorCode. docs/connectors.md lists them.
import type { ErrorClass } from '../../errors.ts';

export const TWILIO_CODES: Record<string, { errorClass: ErrorClass; meaning: string }> = {
  '20003': { errorClass: 'AUTH_FAILED', meaning: 'Authentication failed (account SID or auth token)' },
  '20005': { errorClass: 'AUTH_FAILED', meaning: 'Account not active' },
  '20404': { errorClass: 'AUTH_FAILED', meaning: 'Resource not found (the account SID in the URL is not this account)' },
  '20429': { errorClass: 'RATE_LIMITED', meaning: 'Too many requests' },
  '14107': { errorClass: 'RATE_LIMITED', meaning: 'SMS send rate limit exceeded' },
  '21211': { errorClass: 'INVALID_NUMBER', meaning: "Invalid 'To' phone number" },
  '21614': { errorClass: 'INVALID_NUMBER', meaning: "'To' number is not a valid mobile number" },
  '21408': { errorClass: 'FILTERED', meaning: 'Permission to send to this region is not enabled' },
  '21610': { errorClass: 'OPTED_OUT', meaning: 'The recipient unsubscribed (replied STOP) from this sender' },
  '30001': { errorClass: 'RATE_LIMITED', meaning: 'Queue overflow' },
  '30002': { errorClass: 'AUTH_FAILED', meaning: 'Account suspended' },
  '30003': { errorClass: 'UNREACHABLE', meaning: 'Unreachable destination handset' },
  '30004': { errorClass: 'FILTERED', meaning: 'Message blocked (by the recipient or the carrier; not a proven opt-out)' },
  '30005': { errorClass: 'INVALID_NUMBER', meaning: 'Unknown destination handset' },
  '30006': { errorClass: 'INVALID_NUMBER', meaning: 'Landline or unreachable carrier' },
  '30007': { errorClass: 'FILTERED', meaning: 'Message filtered by the carrier' },
  '30008': { errorClass: 'UNKNOWN_ERROR', meaning: 'Unknown error' },
  '30032': { errorClass: 'FILTERED', meaning: 'Toll-free number not verified' },
  '30034': { errorClass: 'FILTERED', meaning: 'Message from an unregistered 10DLC number' },
  // Programmable Voice: refusals of a call (REST API errors).
  '13223': { errorClass: 'INVALID_NUMBER', meaning: 'Dial: invalid phone number format' },
  '13224': { errorClass: 'INVALID_NUMBER', meaning: 'Dial: invalid phone number' },
  '13225': { errorClass: 'FILTERED', meaning: 'Dial: forbidden phone number (a premium or blocked destination)' },
  '13227': { errorClass: 'FILTERED', meaning: 'Dial: no international calling permission for this destination' },
  '21210': { errorClass: 'FILTERED', meaning: "'From' phone number is not a verified number of this account" },
  '21212': { errorClass: 'FILTERED', meaning: "Invalid 'From' phone number (caller id)" },
  '21213': { errorClass: 'FILTERED', meaning: "'From' phone number (caller id) is required" },
  '21214': { errorClass: 'UNREACHABLE', meaning: "'To' phone number cannot be reached" },
  '21215': { errorClass: 'FILTERED', meaning: 'Geo permissions do not allow calls to this number' },
  '21216': { errorClass: 'FILTERED', meaning: 'This account is not allowed to call this number' },
  '21217': { errorClass: 'INVALID_NUMBER', meaning: 'The phone number does not appear to be valid' },
  '21219': { errorClass: 'FILTERED', meaning: "'To' phone number not verified (trial account)" },
  '21220': { errorClass: 'UNKNOWN_ERROR', meaning: 'Invalid call state' },
};

export function classifyTwilioCode(code: string | number | null | undefined, fallback: ErrorClass): { errorClass: ErrorClass; message: string | null } {
  const known = code === null || code === undefined ? undefined : TWILIO_CODES[String(code)];
  return known ? { errorClass: known.errorClass, message: known.meaning } : { errorClass: fallback, message: null };
}

