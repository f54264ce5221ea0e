// The one way the dashboard talks to the API: same origin, the session cookie, and the CSRF
// token on every write (the API refuses a cookie-authenticated write without it).
let csrfToken = '';
export function setCsrf(token: string): void {
  csrfToken = token;
}

export class ApiError extends Error {
  status: number;
  code: string;
  details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export interface Page<T> {
  data: T[];
  next_cursor?: string | null;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown, opts: { contentType?: string; headers?: Record<string, string> } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = csrfToken;
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    if (typeof body === 'string') {
      headers['content-type'] = opts.contentType ?? 'text/plain';
      payload = body;
    } else {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
  }
  const res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  if (res.status === 204) return undefined as T;
  const json = (await res.json().catch(() => null)) as { error?: { code: string; message: string; details?: Record<string, unknown> } } | null;
  if (!res.ok) {
    const e = json?.error;
    // The session ended (idle or absolute expiry, signed out elsewhere): back to the sign-in page.
    if (res.status === 401 && path !== '/v1/session') window.dispatchEvent(new Event('sb:signed-out'));
    throw new ApiError(res.status, e?.code ?? 'UNKNOWN_ERROR', e?.message ?? `HTTP ${res.status}`, e?.details ?? {});
  }
  return json as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/** A query string from the non-empty entries. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export interface Session {
  user: { id: string; email: string; role: string; account_id: string; totp_enabled: boolean };
  account: { id: string; name: string };
  mode: 'live' | 'test';
  scopes: string[];
  bodies: boolean;
  permissions?: string[];
  csrf_token: string;
  expires_at: string;
}

export interface Message {
  id: string;
  direction: string;
  channel: string;
  to: string;
  from: string | null;
  body: string | null;
  status: string;
  segments: number;
  encoding: string;
  purpose: string;
  connector_id: string | null;
  provider_message_id: string | null;
  error: null | { class: string; code: string; message: string; provider_code: string | null };
  created_at: string;
  updated_at: string;
  campaign_id?: string | null;
  metadata?: Record<string, string>;
}
