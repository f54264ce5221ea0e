// Signing people in through HTTP, for tests: a session is its cookie and its CSRF token, and
// `as(session)` makes requests the way the dashboard does (cookie, X-CSRF-Token on writes).
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Role } from '../src/users/roles.ts';
import type { TestEnv } from './helpers.ts';

export const PASSWORD = 'correct horse battery staple';

export interface TestSession {
  cookie: string;
  csrf: string;
  body: Record<string, unknown> & { user: { id: string; role: string; account_id: string; totp_enabled: boolean }; mode: string };
  setCookie: string;
}

export async function addUser(env: TestEnv, role: Role, opts: { email?: string; accountId?: string; password?: string } = {}) {
  const email = opts.email ?? `${role}.${Math.random().toString(36).slice(2, 8)}@clinic.example`;
  const user = await env.p.users.create(opts.accountId ?? env.accountId, { email, password: opts.password ?? PASSWORD, role }, { actor: { type: 'system', id: 'test' }, ip: null });
  return { ...user, email };
}

export function postSession(env: TestEnv, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return env.app.inject({ method: 'POST', url: '/v1/session', headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) });
}

export async function signIn(env: TestEnv, email: string, opts: { password?: string; totp?: string; mode?: 'test' | 'live'; headers?: Record<string, string> } = {}): Promise<TestSession> {
  const res = await postSession(env, { email, password: opts.password ?? PASSWORD, ...(opts.totp ? { totp: opts.totp } : {}), ...(opts.mode ? { mode: opts.mode } : {}) }, opts.headers);
  if (res.statusCode !== 200) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`);
  const setCookie = String(res.headers['set-cookie']);
  const cookie = /sb_session=([^;]+)/.exec(setCookie)![1];
  return { cookie, csrf: res.json().csrf_token, body: res.json(), setCookie };
}

/** Adds a user of `role` and signs them in. */
export async function person(env: TestEnv, role: Role, opts: { accountId?: string; mode?: 'test' | 'live' } = {}) {
  const user = await addUser(env, role, { accountId: opts.accountId });
  const session = await signIn(env, user.email, { mode: opts.mode });
  return { user, session, req: as(env, session) };
}

/** Requests with the session cookie; writes carry X-CSRF-Token unless `csrf` is false or a string to send instead. */
export function as(env: TestEnv, s: TestSession) {
  return (method: InjectOptions['method'], url: string, body?: unknown, opts: { csrf?: boolean | string; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { cookie: `sb_session=${s.cookie}`, ...opts.headers };
    const csrf = opts.csrf ?? true;
    if (csrf !== false) headers['x-csrf-token'] = csrf === true ? s.csrf : csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return env.app.inject({ method, url, headers, payload: body === undefined ? undefined : JSON.stringify(body) });
  };
}
