// Which URLs the platform will call (webhooks, status callbacks, media). Refuses what is not
// http(s), carries credentials, is too long, or — unless the operator allows it with
// SWITCHBOARD_ALLOW_PRIVATE_URLS=true — names a loopback, private or link-local address.
// This is the static check at the door; the resolved address is checked again at connect time.
import { isIP } from 'node:net';
import { validation } from '../errors.ts';

export const MAX_URL_LENGTH = 2048;

export function isPrivateAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal')) return true;
  const v = isIP(h);
  if (v === 4) {
    const [a, b] = h.split('.').map(Number);
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  if (v === 6) {
    if (h === '::1' || h === '::') return true;
    if (h.startsWith('fc') || h.startsWith('fd') || h.startsWith('fe80')) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    if (mapped) return isPrivateAddress(mapped[1]);
  }
  return false;
}

export function checkUrl(value: unknown, field: string, allowPrivate: boolean): string {
  if (typeof value !== 'string' || value.length === 0) throw validation(field, `${field} must be a URL.`);
  if (value.length > MAX_URL_LENGTH) throw validation(field, `${field} is longer than ${MAX_URL_LENGTH} characters.`);
  if (/[\r\n\t\0 ]/.test(value)) throw validation(field, `${field} must not contain white space or control characters.`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw validation(field, `${field} is not a valid URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw validation(field, `${field} must be an http or https URL.`);
  if (url.username || url.password) throw validation(field, `${field} must not carry credentials; use the signing secret instead.`);
  if (!allowPrivate && isPrivateAddress(url.hostname)) {
    throw validation(field, `${field} points at a private or loopback address, which is refused unless SWITCHBOARD_ALLOW_PRIVATE_URLS=true.`);
  }
  return url.toString();
}
