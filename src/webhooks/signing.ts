// Signing per the Standard Webhooks specification, with the `standardwebhooks` package (no
// hand-rolled HMAC). A secret is `whsec_` + base64 of 24 random bytes. During a rotation's
// overlap window the signature header carries one `v1,…` entry per valid secret, so receivers
// holding either the old or the new secret verify the same request.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export interface SigningSecrets {
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
}

/** The secrets that sign at `now`: the current one, and the previous one during its overlap. */
export function activeSecrets(s: SigningSecrets, now: number): string[] {
  const out = [s.secret];
  if (s.previous_secret && s.previous_secret_expires_at !== null && s.previous_secret_expires_at > now) out.push(s.previous_secret);
  return out;
}

/**
 * The three Standard Webhooks headers. `webhookId` stays the same across retries of one delivery
 * (receivers de-duplicate on it); `sentAt` is wall-clock time, because receivers check it against
 * their own clock (5 minutes tolerance) to refuse replayed requests.
 */
export function signedHeaders(webhookId: string, sentAt: Date, payload: string, secrets: string[]): Record<string, string> {
  const signatures = secrets.map((s) => new Webhook(s).sign(webhookId, sentAt, payload));
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}
