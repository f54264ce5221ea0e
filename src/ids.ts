// Time-ordered identifiers: `prefix_` + 10 characters of milliseconds + 16 of randomness, in
// Crockford base32 (the ULID layout). Ordered ids keep inserts at the end of the primary-key
// index, which matters for write throughput, and make "newest first" a primary-key scan.
import { randomFillSync } from 'node:crypto';

// Random bytes are drawn from a pool refilled 4 KiB at a time: one call into the CSPRNG per
// few hundred ids instead of one each (randomBytes does not pool).
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function random(n: number): Buffer {
  if (poolAt + n > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = Buffer.from(pool.subarray(poolAt, poolAt + n));
  poolAt += n;
  return out;
}

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

let lastMs = 0;
let lastRand: Uint8Array = new Uint8Array(10);

function encodeTime(ms: number): string {
  let out = '';
  for (let i = 9; i >= 0; i--) {
    const mod = ms % 32;
    out = ALPHABET[mod] + out;
    ms = (ms - mod) / 32;
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits -> 16 characters of 5 bits.
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/** Monotonic within one process: ids made in the same millisecond still sort in creation order. */
export function newId(prefix: string, nowMs: number = Date.now()): string {
  if (nowMs <= lastMs) {
    nowMs = lastMs;
    const next = new Uint8Array(lastRand);
    for (let i = next.length - 1; i >= 0; i--) {
      if (next[i] === 255) {
        next[i] = 0;
      } else {
        next[i]++;
        break;
      }
    }
    lastRand = next;
  } else {
    lastMs = nowMs;
    lastRand = new Uint8Array(random(10));
  }
  return `${prefix}_${encodeTime(nowMs)}${encodeRandom(lastRand)}`;
}

export function randomToken(bytes = 24): string {
  return random(bytes).toString('base64url');
}

/** The smallest id of `prefix` made at `ms`: every id made before `ms` sorts below it. */
export function idFloor(prefix: string, ms: number): string {
  return `${prefix}_${encodeTime(ms)}${'0'.repeat(16)}`;
}
