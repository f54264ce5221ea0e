// What the HTTP provider connectors (twilio/, telnyx/, vonage/, plivo/) share: one request with a
// timeout, the classes for transport failures and bare HTTP statuses, and the checks their
// configs have in common. Each provider's own codes are mapped in its own folder.
import { timingSafeEqual } from 'node:crypto';
import type { ErrorClass } from '../errors.ts';
import type { SubmitResult } from './connector.ts';

export const REQUEST_TIMEOUT_MS = 10_000;

export interface HttpAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** One request; a network failure or timeout is returned as a SubmitResult (UNREACHABLE). */
export async function request(url: string, init: RequestInit, timeoutMs = REQUEST_TIMEOUT_MS): Promise<HttpAnswer | SubmitResult> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: ctl.signal, redirect: 'error' });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    return { status: res.status, headers: res.headers, text, json };
  } catch (err) {
    const timedOut = ctl.signal.aborted;
    return {
      ok: false,
      errorClass: 'UNREACHABLE',
      code: 'UNREACHABLE',
      message: timedOut ? `The provider did not answer within ${timeoutMs} ms.` : `The provider could not be reached: ${(err as Error).message}.`,
      providerCode: timedOut ? 'TIMEOUT' : 'NETWORK',
    };
  } finally {
    clearTimeout(timer);
  }
}

export function isAnswer(x: HttpAnswer | SubmitResult): x is HttpAnswer {
  return 'status' in x && typeof (x as HttpAnswer).status === 'number';
}

/** The class of an HTTP status when the provider's body names no code we know. */
export function classOfHttpStatus(status: number): ErrorClass {
  if (status === 401 || status === 403) return 'AUTH_FAILED';
  if (status === 429) return 'RATE_LIMITED';
  if (status >= 500) return 'UNREACHABLE';
  return 'UNKNOWN_ERROR';
}

/** Retry-After in milliseconds (seconds or an HTTP date), when the provider sent one. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const v = headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function failure(errorClass: ErrorClass, providerCode: string, message: string, extra: { raw?: unknown; retryAfterMs?: number } = {}): SubmitResult {
  return { ok: false, errorClass, code: errorClass, message, providerCode, ...extra };
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Names the missing or mistyped fields of a config; never echoes their values. */
export function requireStrings(config: Record<string, unknown>, fields: string[]): string[] {
  const out: string[] = [];
  for (const f of fields) if (typeof config[f] !== 'string' || config[f] === '') out.push(`${f} is required`);
  return out;
}

export function checkUrl(config: Record<string, unknown>, field: string): string[] {
  const v = config[field];
  if (v === undefined) return [];
  if (typeof v !== 'string') return [`${field} must be an http(s) URL`];
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:' ? [] : [`${field} must be an http(s) URL`];
  } catch {
    return [`${field} must be an http(s) URL`];
  }
}

export const trimSlash = (s: string) => s.replace(/\/+$/, '');
