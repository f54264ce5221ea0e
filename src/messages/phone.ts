// Phone numbers: any common notation in, E.164 out, or INVALID_NUMBER. Uses the `max` metadata
// so that validity is checked against real numbering plans (the guide's `+15550001111` is not a
// number; the fictional `+1 NXX 555 01YY` range is).
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import { AppError } from '../errors.ts';

const ALLOWED = /^[0-9+\-().\s/]+$/;

export interface NormalisedNumber {
  e164: string;
  country: string | undefined;
}

export function parseNumber(input: unknown, defaultCountry: CountryCode = 'US'): NormalisedNumber | null {
  if (typeof input !== 'string') return null;
  const trimmed = input.trim();
  // Letters are refused outright: vanity numbers (1-800-FLOWERS) are for people, not APIs, and
  // libphonenumber would otherwise turn "call me" into digits.
  if (trimmed.length < 3 || trimmed.length > 40 || !ALLOWED.test(trimmed)) return null;
  const parsed = parsePhoneNumberFromString(trimmed.startsWith('00') ? `+${trimmed.slice(2)}` : trimmed, defaultCountry);
  if (!parsed || !parsed.isValid()) return null;
  return { e164: parsed.number, country: parsed.country };
}

export function normaliseNumber(input: unknown, field = 'to', defaultCountry: CountryCode = 'US'): NormalisedNumber {
  const n = parseNumber(input, defaultCountry);
  if (!n) {
    throw new AppError('INVALID_NUMBER', `${field} is not a valid phone number: it cannot be normalised to E.164.`, {
      field,
      value: typeof input === 'string' ? input.slice(0, 64) : input,
    });
  }
  return n;
}

/** Alphanumeric sender ids (3–11 characters, at least one letter) as carriers accept them. */
export function isAlphanumericSender(input: string): boolean {
  return /^(?=.*[A-Za-z])[A-Za-z0-9 ]{3,11}$/.test(input);
}
