// Encryption at rest: AES-256-GCM under SWITCHBOARD_ENCRYPTION_KEY. A value is stored as
// `v1:<key id>:<base64 of iv | tag | ciphertext>`; the key id (the first 8 hex characters of the
// key's SHA-256) says which key sealed it, so a rotation can tell old values from new ones.
//
// With no key configured (a first run on a laptop), one is generated into a file beside the
// database, readable by its owner only, and a warning says so: production sets the variable.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../config.ts';

export class Sealer {
  readonly keyId: string;
  constructor(private key: Buffer) {
    if (key.length !== 32) throw new Error('the encryption key must be 32 bytes');
    this.keyId = createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1:${this.keyId}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  open(sealed: string): string {
    const [version, keyId, data] = sealed.split(':');
    if (version !== 'v1' || !data) throw new Error('not a sealed value');
    if (keyId !== this.keyId) throw new Error(`sealed with another key (${keyId}); set SWITCHBOARD_ENCRYPTION_KEY to the key that sealed it`);
    const raw = Buffer.from(data, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}

export function parseKey(value: string): Buffer {
  return /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
}

/** The configured key, or a generated one kept beside the database (SQLite file deployments). */
export function loadSealer(configured: string | undefined, keyFileNear: string | null, warn: (msg: string) => void): Sealer {
  if (configured) return new Sealer(parseKey(configured));
  if (!keyFileNear) throw new ConfigError('SWITCHBOARD_ENCRYPTION_KEY is required with PostgreSQL: set it to 32 bytes (64 hex characters or base64).');
  const file = `${keyFileNear}.key`;
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
    warn(`SWITCHBOARD_ENCRYPTION_KEY is not set: generated a key in ${file}. Set the variable in production and keep the key apart from the database.`);
  }
  chmodSync(file, 0o600);
  return new Sealer(parseKey(readFileSync(file, 'utf8').trim()));
}
