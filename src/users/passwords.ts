// Password hashing: argon2id through @node-rs/argon2 (Rust, shipped as a prebuilt binary inside
// the npm package, so nothing is compiled or downloaded at install; checked on Node 20 here).
// Argon2id is memory-hard, which is what OWASP and RFC 9106 recommend against GPU guessing;
// Node's built-in crypto.scrypt would have been the fallback. Parameters: OWASP's minimum for
// argon2id (19 MiB, 2 passes, 1 lane), about 50 ms on this class of machine. The encoded hash
// carries its parameters, so raising them later still verifies old hashes, and
// `needsRehash` says when to upgrade one at the next sign-in.
import { hash, verify } from '@node-rs/argon2';
import { validation } from '../errors.ts';

// `Algorithm.Argon2id` is a const enum in the package's types, which isolatedModules cannot
// inline: 2 is its value.
const ARGON2ID = 2 as never;
const PARAMS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 1024;

export function checkPasswordRules(password: unknown, field = 'password'): string {
  if (typeof password !== 'string') throw validation(field, `${field} must be a string.`);
  if (password.length < PASSWORD_MIN) throw validation(field, `${field} must be at least ${PASSWORD_MIN} characters.`, { min_length: PASSWORD_MIN });
  if (password.length > PASSWORD_MAX) throw validation(field, `${field} must be at most ${PASSWORD_MAX} characters.`, { max_length: PASSWORD_MAX });
  return password;
}

export const hashPassword = (password: string): Promise<string> => hash(password, PARAMS);

export async function verifyPassword(encoded: string, password: string): Promise<boolean> {
  try {
    return await verify(encoded, password);
  } catch {
    return false; // a malformed stored hash never signs anyone in
  }
}

export function needsRehash(encoded: string): boolean {
  return !encoded.startsWith(`$argon2id$v=19$m=${PARAMS.memoryCost},t=${PARAMS.timeCost},p=${PARAMS.parallelism}$`);
}

let dummy: Promise<string> | null = null;

/**
 * A hash of nothing anyone knows, verified when an email matches no user, so that a sign-in for
 * an unknown email costs the same time as one with a wrong password.
 */
export function dummyHash(): Promise<string> {
  dummy ??= hash(`no user ${Math.random()}`, PARAMS);
  return dummy;
}
