// Encryption at rest: AES-256-GCM under SWITCHBOARD_ENCRYPTION_KEY, with a keyring so that keys
// can be rotated without downtime.
//
// Words used here and in sealing-plugin.ts / key-rotation.ts:
//   key id    — the first 8 hex characters of the key's SHA-256. It names a key without
//               revealing it, and is written into every sealed value.
//   primary   — the key that seals (SWITCHBOARD_ENCRYPTION_KEY). Exactly one.
//   old keys  — keys that only open (SWITCHBOARD_ENCRYPTION_KEYS_OLD): what a rotation is moving
//               away from, kept until `switchboard keys rotate-encryption` has re-sealed
//               everything under the primary.
//   sealed    — `v2:<key id>:<base64 of iv | tag | ciphertext>`, where the GCM additional data is
//               the value's context (`table.column`), so a sealed value copied into another column
//               does not open there. `v1:` values (no context) are what connector credentials were
//               sealed as before; they still open, and a rotation re-seals them as v2.
//   sealed bytes — the binary form, for blob columns (media files): the same `v2:<key id>:`
//               header as ASCII bytes, then iv | tag | ciphertext raw (no base64: a 5 MB file
//               stays about 5 MB).
//
// With no key configured (a first run on a laptop), one is generated into a file beside the
// database, readable by its owner only, and a warning says so: production sets the variable.
import { createCipheriv, createDecipheriv, createHash, randomFillSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../config.ts';

const KEY_ID = /^[0-9a-f]{8}$/;

// IVs come from a pool refilled 4 KiB at a time (as ids.ts does): one call into the CSPRNG per
// few hundred sealed values instead of one each, which is most of a short value's sealing cost.
const ivPool = Buffer.alloc(4096);
let ivAt = ivPool.length;
function freshIv(): Buffer {
  if (ivAt + 12 > ivPool.length) {
    randomFillSync(ivPool);
    ivAt = 0;
  }
  const iv = Buffer.from(ivPool.subarray(ivAt, ivAt + 12));
  ivAt += 12;
  return iv;
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** The parts of a value that looks sealed, or null for anything else (plain text). */
export function parseSealed(value: string): { version: 1 | 2; keyId: string; data: string } | null {
  // Cheap checks first: this runs on every value read from a sealed column.
  if (value.length < 40 || value.charCodeAt(0) !== 118 /* v */ || value.charCodeAt(2) !== 58 || value.charCodeAt(11) !== 58) return null;
  const v = value.charCodeAt(1);
  if (v !== 49 && v !== 50) return null;
  const keyId = value.slice(3, 11);
  if (!KEY_ID.test(keyId)) return null;
  return { version: v === 49 ? 1 : 2, keyId, data: value.slice(12) };
}

/** The key id and iv | tag | ciphertext of bytes that carry the sealed header, or null (plain bytes). */
export function parseSealedBytes(value: Uint8Array): { keyId: string; data: Buffer } | null {
  // 12 bytes of header, then at least the iv and the tag.
  if (value.length < 40 || value[0] !== 118 /* v */ || value[1] !== 50 /* 2 */ || value[2] !== 58 || value[11] !== 58) return null;
  const buf = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const keyId = buf.toString('latin1', 3, 11);
  if (!KEY_ID.test(keyId)) return null;
  return { keyId, data: buf.subarray(12) };
}

export type OpenBytesResult = { ok: true; bytes: Buffer; keyId: string } | { ok: false; reason: 'plain' | 'unknown_key' | 'bad'; keyId?: string };

export type OpenResult = { ok: true; text: string; keyId: string; version: 1 | 2 } | { ok: false; reason: 'plain' | 'unknown_key' | 'bad'; keyId?: string };

export class Keyring {
  /** The primary key's id: what new values are sealed with. */
  readonly keyId: string;
  private keys = new Map<string, Buffer>();

  constructor(primary: Buffer, old: Buffer[] = []) {
    for (const k of [primary, ...old]) if (k.length !== 32) throw new Error('an encryption key must be 32 bytes');
    this.keyId = keyIdOf(primary);
    this.keys.set(this.keyId, primary);
    for (const k of old) {
      const id = keyIdOf(k);
      if (!this.keys.has(id)) this.keys.set(id, k);
    }
  }

  /** Every key id this keyring can open, the primary first. */
  ids(): string[] {
    return [...this.keys.keys()];
  }

  has(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  /** Seals `plaintext` for `context` (`table.column`; '' for a value kept outside the database's sealed columns). */
  seal(plaintext: string, context = ''): string {
    const iv = freshIv();
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.keyId)!, iv);
    if (context) cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v2:${this.keyId}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  /** Opens a sealed value; never throws. `contexts` are tried in order (a column read under an ambiguous name). */
  tryOpen(value: string, contexts: readonly string[] = ['']): OpenResult {
    const parts = parseSealed(value);
    if (!parts) return { ok: false, reason: 'plain' };
    const key = this.keys.get(parts.keyId);
    if (!key) return { ok: false, reason: 'unknown_key', keyId: parts.keyId };
    const raw = Buffer.from(parts.data, 'base64');
    if (raw.length < 28) return { ok: false, reason: 'bad', keyId: parts.keyId };
    // v1 values carry no context: they were sealed before contexts existed.
    for (const context of parts.version === 1 ? [''] : contexts) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        if (context) decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(raw.subarray(12, 28));
        const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
        return { ok: true, text, keyId: parts.keyId, version: parts.version };
      } catch {
        // Wrong context or a damaged value: try the next context.
      }
    }
    return { ok: false, reason: 'bad', keyId: parts.keyId };
  }

  /** Seals bytes (a blob column's value) for `context`: the binary form of seal(). */
  sealBytes(plain: Uint8Array, context = ''): Buffer {
    const iv = freshIv();
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.keyId)!, iv);
    if (context) cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from(`v2:${this.keyId}:`, 'ascii'), iv, cipher.getAuthTag(), body]);
  }

  /** Opens bytes sealed with sealBytes(); never throws. Bytes without the header are `plain`. */
  tryOpenBytes(value: Uint8Array, contexts: readonly string[] = ['']): OpenBytesResult {
    const parts = parseSealedBytes(value);
    if (!parts) return { ok: false, reason: 'plain' };
    const key = this.keys.get(parts.keyId);
    if (!key) return { ok: false, reason: 'unknown_key', keyId: parts.keyId };
    const raw = parts.data;
    for (const context of contexts) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
        if (context) decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(raw.subarray(12, 28));
        return { ok: true, bytes: Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]), keyId: parts.keyId };
      } catch {
        // Wrong context or damaged: try the next one.
      }
    }
    return { ok: false, reason: 'bad', keyId: parts.keyId };
  }

  /** Opens a value sealed with seal(); throws when it cannot. */
  open(sealed: string, context = ''): string {
    const r = this.tryOpen(sealed, [context]);
    if (r.ok) return r.text;
    if (r.reason === 'unknown_key') throw new Error(`sealed with another key (${r.keyId}); add that key to SWITCHBOARD_ENCRYPTION_KEYS_OLD`);
    throw new Error(r.reason === 'plain' ? 'not a sealed value' : 'a sealed value that does not open (damaged, or sealed for another place)');
  }
}

/** The name the code used before keyrings: a keyring is what seals. */
export type Sealer = Keyring;

export function parseKey(value: string): Buffer {
  return /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
}

/** SWITCHBOARD_ENCRYPTION_KEYS_OLD: keys separated by commas or white space. */
export function parseKeyList(value: string | undefined): Buffer[] {
  if (!value) return [];
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((v) => {
      const k = parseKey(v);
      if (k.length !== 32) throw new ConfigError('SWITCHBOARD_ENCRYPTION_KEYS_OLD: every key must be 32 bytes (64 hex characters or base64).');
      return k;
    });
}

/** The configured keys, or a generated primary kept beside the database (SQLite file deployments). */
export function loadKeyring(configured: string | undefined, oldKeys: string | undefined, keyFileNear: string | null, warn: (msg: string) => void): Keyring {
  const old = parseKeyList(oldKeys);
  if (configured) return new Keyring(parseKey(configured), old);
  if (!keyFileNear) throw new ConfigError('SWITCHBOARD_ENCRYPTION_KEY is required with PostgreSQL: set it to 32 bytes (64 hex characters or base64).');
  const file = `${keyFileNear}.key`;
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const fresh = Buffer.alloc(32);
    randomFillSync(fresh);
    writeFileSync(file, fresh.toString('hex'), { mode: 0o600 });
    warn(`SWITCHBOARD_ENCRYPTION_KEY is not set: generated a key in ${file}. Set the variable in production and keep the key apart from the database.`);
  }
  chmodSync(file, 0o600);
  return new Keyring(parseKey(readFileSync(file, 'utf8').trim()), old);
}
