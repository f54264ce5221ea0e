// Twilio SIDs: two letters and 32 hex digits (128 bits). Our ids are `prefix_` + 26 Crockford
// base32 characters in the ULID layout: 10 of milliseconds (48 bits in practice) and 16 of
// randomness (80 bits), 128 bits in all. So a SID is our id written in hex, and back, with no
// table to keep: SM… / MM… ⇄ msg_…, MG… ⇄ pool_…, PN… ⇄ sender_…, HX… ⇄ tpl_…, SK… ⇄ key_….
// Account SIDs (AC…) are random and stored (twilio_accounts): one Switchboard account has two, a
// live one and a test one, as a Twilio project has its live and its test credentials.
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const SID = /^[A-Z]{2}[0-9a-f]{32}$/;

/** Twilio's two-letter prefix for each of our id prefixes. */
export const SID_PREFIX = { msg: 'SM', pool: 'MG', sender: 'PN', tpl: 'HX', key: 'SK' } as const;
type Kind = keyof typeof SID_PREFIX;

function decodeBase32(s: string): bigint | null {
  let n = 0n;
  for (const ch of s) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return null;
    n = (n << 5n) | BigInt(v);
  }
  return n;
}

function encodeBase32(n: bigint, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    out = ALPHABET[Number(n & 31n)] + out;
    n >>= 5n;
  }
  return out;
}

// Time (10 characters) and randomness (16) are encoded separately in our ids, so they are
// converted separately: 48 bits of time + 80 of randomness = 128 bits = 32 hex digits.
function idToHex(body: string): string | null {
  if (body.length !== 26) return null;
  const time = decodeBase32(body.slice(0, 10));
  const rand = decodeBase32(body.slice(10));
  if (time === null || rand === null || time >= 1n << 48n) return null;
  return time.toString(16).padStart(12, '0') + rand.toString(16).padStart(20, '0');
}

function hexToId(hex: string): string {
  return encodeBase32(BigInt(`0x${hex.slice(0, 12)}`), 10) + encodeBase32(BigInt(`0x${hex.slice(12)}`), 16);
}

/** The SID of one of our ids (`msg_…` → `SM…`); `letters` overrides the prefix (`MM` for media). */
export function sidOf(id: string, letters?: string): string {
  const at = id.indexOf('_');
  const kind = id.slice(0, at) as Kind;
  const hex = idToHex(id.slice(at + 1));
  if (!(kind in SID_PREFIX) || hex === null) throw new Error(`no SID for ${id}`);
  return (letters ?? SID_PREFIX[kind]) + hex;
}

/** Our id for a SID, or null when the SID is malformed or of another kind. */
export function idOf(sid: unknown, kind: Kind, letters: readonly string[] = [SID_PREFIX[kind]]): string | null {
  if (typeof sid !== 'string' || !SID.test(sid) || !letters.includes(sid.slice(0, 2))) return null;
  const hex = sid.slice(2);
  // The first 12 hex digits are milliseconds; our ids never exceed 48 bits of them.
  return `${kind}_${hexToId(hex)}`;
}

export const isSid = (s: unknown, letters: string): s is string => typeof s === 'string' && SID.test(s) && s.startsWith(letters);

/** A new random account SID. */
export const newAccountSid = () => `AC${randomBytes(16).toString('hex')}`;

/** A new auth token: 32 hex digits, as Twilio's are. */
export const newAuthToken = () => randomBytes(16).toString('hex');
