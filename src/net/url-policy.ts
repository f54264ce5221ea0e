// Which URLs the platform will call (webhooks, status callbacks, media). Refuses what is not
// http(s), carries credentials, is too long, or — unless the operator allows it with
// SWITCHBOARD_ALLOW_PRIVATE_URLS=true — names a loopback, private, link-local or otherwise
// non-public address. This is the static check at the door; the resolved address is checked
// again at connect time (guarded-fetch.ts), so a name that resolves to 127.0.0.1 — or starts to,
// after the check (DNS rebinding) — is refused too.
import { isIP } from 'node:net';
import { validation } from '../errors.ts';

export const MAX_URL_LENGTH = 2048;

function v4ToInt(a: string): number | null {
  const parts = a.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = n * 256 + Number(p);
  }
  return n;
}

// [first address, prefix length]: everything that is not a public unicast address.
const V4_BLOCKED: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network", 0.0.0.0 itself
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255
];
const V4_RANGES = V4_BLOCKED.map(([a, bits]) => ({ base: v4ToInt(a)!, mask: bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0 }));

function privateV4(n: number): boolean {
  return V4_RANGES.some((r) => (n & r.mask) >>> 0 === r.base);
}

/** An IPv6 address as eight 16-bit groups, or null. Accepts a trailing dotted IPv4 part. */
function v6Groups(a: string): number[] | null {
  let s = a.split('%')[0];
  let tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const n = v4ToInt(dotted[2]);
    if (n === null) return null;
    tail = [n >>> 16, n & 0xffff];
    s = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const given = head.length + rest.length + tail.length;
  if (head.some(Number.isNaN) || rest.some(Number.isNaN)) return null;
  if (halves.length === 1 && given !== 8) return null;
  if (given > 8) return null;
  return [...head, ...new Array(8 - given).fill(0), ...rest, ...tail];
}

function privateV6(g: number[]): boolean {
  const v4 = (hi: number, lo: number) => privateV4(((hi << 16) >>> 0) + lo);
  if (g.slice(0, 5).every((x) => x === 0)) {
    if (g[5] === 0xffff) return v4(g[6], g[7]); // IPv4-mapped ::ffff:a.b.c.d
    if (g[5] === 0) return g[6] === 0 && g[7] <= 1 ? true : v4(g[6], g[7]); // ::, ::1, IPv4-compatible
  }
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4(g[6], g[7]); // NAT64
  if (g[0] === 0x2002) return v4(g[1], g[2]); // 6to4 carries an IPv4 address
  if ((g[0] & 0xfe00) === 0xfc00) return true; // unique local fc00::/7
  if ((g[0] & 0xffc0) === 0xfe80 || (g[0] & 0xffc0) === 0xfec0) return true; // link-local, site-local
  if ((g[0] & 0xff00) === 0xff00) return true; // multicast
  if (g[0] === 0x2001 && g[1] === 0x0db8) return true; // documentation
  if (g[0] === 0x2001 && g[1] === 0) return true; // Teredo: tunnels to an address we cannot check
  if (g[0] === 0x0100 && g.slice(1, 4).every((x) => x === 0)) return true; // discard prefix
  return false;
}

/** True for an address (or a name that is one by convention) that is not on the public internet. */
export function isPrivateAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (h === '' || h === 'localhost' || h.endsWith('.localhost') || h.endsWith('.local') || h.endsWith('.internal') || h.endsWith('.home.arpa')) return true;
  const v = isIP(h);
  if (v === 4) return privateV4(v4ToInt(h)!);
  if (v === 6) {
    const g = v6Groups(h);
    return g === null ? true : privateV6(g);
  }
  return false;
}

export function checkUrl(value: unknown, field: string, allowPrivate: boolean): string {
  if (typeof value !== 'string' || value.length === 0) throw validation(field, `${field} must be a URL.`);
  if (value.length > MAX_URL_LENGTH) throw validation(field, `${field} is longer than ${MAX_URL_LENGTH} characters.`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f]/.test(value)) throw validation(field, `${field} must not contain white space or control characters.`);
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
