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

const parsedInputs = new Map<string, NormalisedNumber | null>();

/**
 * Any common notation to E.164 and country, or null. Remembered per input (bounded): parsing
 * with the full metadata is the costliest step of accepting a message, and the same customers'
 * numbers come again and again.
 */
export function parseNumber(input: unknown, defaultCountry: CountryCode = 'US'): NormalisedNumber | null {
  if (typeof input !== 'string') return null;
  const key = `${defaultCountry}:${input}`;
  const known = parsedInputs.get(key);
  if (known !== undefined) return known;
  const result = parseUncached(input, defaultCountry);
  if (parsedInputs.size >= 50_000) parsedInputs.clear();
  parsedInputs.set(key, result);
  return result;
}

function parseUncached(input: string, defaultCountry: CountryCode): NormalisedNumber | null {
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

const countries = new Map<string, { country: string | undefined; likely: string | undefined }>();

/**
 * The country libphonenumber assigns to an E.164 number (`country`), and, when it assigns none,
 * the first country the number could belong to (`likely`). Parsing costs more than the rest of a
 * routing decision and the same number is looked at several times on its way (acceptance,
 * country rules, quiet hours, routing, the claim), so answers are remembered (bounded).
 */
export function countryFacts(e164: string): { country: string | undefined; likely: string | undefined } {
  let facts = countries.get(e164);
  if (!facts) {
    const parsed = parsePhoneNumberFromString(e164);
    facts = { country: parsed?.country, likely: parsed?.country ?? parsed?.getPossibleCountries()[0] };
    if (countries.size >= 50_000) countries.clear();
    countries.set(e164, facts);
  }
  return facts;
}

/** Alphanumeric sender ids (3–11 characters, at least one letter) as carriers accept them. */
export function isAlphanumericSender(input: string): boolean {
  return /^(?=.*[A-Za-z])[A-Za-z0-9 ]{3,11}$/.test(input);
}
