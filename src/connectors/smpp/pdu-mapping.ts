// What SMPP v3.4 means in Switchboard's terms, with no sockets: command_status → error class,
// delivery-receipt text → a Receipt, message text → the short_message octets of each submit_sm
// (GSM-7 or UCS-2, split with the concatenation UDH), and deliver_sm text back to a string.
// The `smpp` package frames PDUs; it does none of this (DEPENDENCIES.md), so it lives here, where
// a test can check every table without a server.
import UnicodeToGsmModule from 'sms-segments-calculator/dist/libs/UnicodeToGSM.js';
import type { ErrorClass } from '../../errors.ts';
import type { Receipt } from '../connector.ts';

// ---------------------------------------------------------------------------------------------
// command_status → error class. Every status maps to a class: the named ones below, the vendor
// range 0x400–0x4FF and anything unknown to UNKNOWN_ERROR (bounded retry, then review).

interface StatusInfo {
  name: string;
  errorClass: ErrorClass;
  meaning: string;
}

const S = (name: string, errorClass: ErrorClass, meaning: string): StatusInfo => ({ name, errorClass, meaning });

export const COMMAND_STATUS: Record<number, StatusInfo> = {
  0x0001: S('ESME_RINVMSGLEN', 'UNKNOWN_ERROR', 'Message length is invalid'),
  0x0002: S('ESME_RINVCMDLEN', 'UNKNOWN_ERROR', 'Command length is invalid'),
  0x0003: S('ESME_RINVCMDID', 'UNKNOWN_ERROR', 'Invalid command id'),
  // Sent on a bind that is not (or no longer) bound: the session is broken, not the message.
  0x0004: S('ESME_RINVBNDSTS', 'UNREACHABLE', 'Incorrect bind status for the command'),
  0x0005: S('ESME_RALYBND', 'UNKNOWN_ERROR', 'Already bound'),
  0x0006: S('ESME_RINVPRTFLG', 'UNKNOWN_ERROR', 'Invalid priority flag'),
  0x0007: S('ESME_RINVREGDLVFLG', 'UNKNOWN_ERROR', 'Invalid registered delivery flag'),
  0x0008: S('ESME_RSYSERR', 'UNREACHABLE', 'System error at the SMSC'),
  0x000a: S('ESME_RINVSRCADR', 'FILTERED', 'Invalid source address'),
  0x000b: S('ESME_RINVDSTADR', 'INVALID_NUMBER', 'Invalid destination address'),
  0x000c: S('ESME_RINVMSGID', 'UNKNOWN_ERROR', 'Message id is invalid'),
  0x000d: S('ESME_RBINDFAIL', 'AUTH_FAILED', 'Bind failed'),
  0x000e: S('ESME_RINVPASWD', 'AUTH_FAILED', 'Invalid password'),
  0x000f: S('ESME_RINVSYSID', 'AUTH_FAILED', 'Invalid system id'),
  0x0011: S('ESME_RCANCELFAIL', 'UNKNOWN_ERROR', 'cancel_sm failed'),
  0x0013: S('ESME_RREPLACEFAIL', 'UNKNOWN_ERROR', 'replace_sm failed'),
  0x0014: S('ESME_RMSGQFUL', 'RATE_LIMITED', 'Message queue full'),
  0x0015: S('ESME_RINVSERTYP', 'UNKNOWN_ERROR', 'Invalid service type'),
  0x0033: S('ESME_RINVNUMDESTS', 'UNKNOWN_ERROR', 'Invalid number of destinations'),
  0x0034: S('ESME_RINVDLNAME', 'UNKNOWN_ERROR', 'Invalid distribution list name'),
  0x0040: S('ESME_RINVDESTFLAG', 'UNKNOWN_ERROR', 'Invalid destination flag'),
  0x0042: S('ESME_RINVSUBREP', 'UNKNOWN_ERROR', 'Invalid submit-with-replace request'),
  0x0043: S('ESME_RINVESMCLASS', 'UNKNOWN_ERROR', 'Invalid esm_class'),
  0x0044: S('ESME_RCNTSUBDL', 'UNKNOWN_ERROR', 'Cannot submit to distribution list'),
  0x0045: S('ESME_RSUBMITFAIL', 'UNKNOWN_ERROR', 'submit_sm failed'),
  0x0048: S('ESME_RINVSRCTON', 'FILTERED', 'Invalid source address TON'),
  0x0049: S('ESME_RINVSRCNPI', 'FILTERED', 'Invalid source address NPI'),
  0x0050: S('ESME_RINVDSTTON', 'INVALID_NUMBER', 'Invalid destination address TON'),
  0x0051: S('ESME_RINVDSTNPI', 'INVALID_NUMBER', 'Invalid destination address NPI'),
  0x0053: S('ESME_RINVSYSTYP', 'AUTH_FAILED', 'Invalid system_type'),
  0x0054: S('ESME_RINVREPFLAG', 'UNKNOWN_ERROR', 'Invalid replace_if_present flag'),
  0x0055: S('ESME_RINVNUMMSGS', 'UNKNOWN_ERROR', 'Invalid number of messages'),
  0x0058: S('ESME_RTHROTTLED', 'RATE_LIMITED', 'Throttling error: the ESME exceeded its allowed message limits'),
  0x0061: S('ESME_RINVSCHED', 'UNKNOWN_ERROR', 'Invalid scheduled delivery time'),
  0x0062: S('ESME_RINVEXPIRY', 'UNKNOWN_ERROR', 'Invalid validity period'),
  0x0063: S('ESME_RINVDFTMSGID', 'UNKNOWN_ERROR', 'Predefined message not found'),
  0x0064: S('ESME_RX_T_APPN', 'UNREACHABLE', 'ESME receiver temporary application error'),
  0x0065: S('ESME_RX_P_APPN', 'UNKNOWN_ERROR', 'ESME receiver permanent application error'),
  0x0066: S('ESME_RX_R_APPN', 'FILTERED', 'ESME receiver reject message error'),
  0x0067: S('ESME_RQUERYFAIL', 'UNKNOWN_ERROR', 'query_sm failed'),
  0x00c0: S('ESME_RINVTLVSTREAM', 'UNKNOWN_ERROR', 'Error in the optional part of the PDU body'),
  0x00c1: S('ESME_RTLVNOTALLWD', 'UNKNOWN_ERROR', 'TLV not allowed'),
  0x00c2: S('ESME_RINVTLVLEN', 'UNKNOWN_ERROR', 'Invalid TLV length'),
  0x00c3: S('ESME_RMISSINGTLV', 'UNKNOWN_ERROR', 'Expected TLV missing'),
  0x00c4: S('ESME_RINVTLVVAL', 'UNKNOWN_ERROR', 'Invalid TLV value'),
  0x00fe: S('ESME_RDELIVERYFAILURE', 'UNREACHABLE', 'Transaction delivery failure'),
  0x00ff: S('ESME_RUNKNOWNERR', 'UNKNOWN_ERROR', 'Unknown error'),
  0x0100: S('ESME_RSERTYPUNAUTH', 'AUTH_FAILED', 'ESME not authorised to use the service type'),
  0x0101: S('ESME_RPROHIBITED', 'FILTERED', 'ESME prohibited from this operation'),
  0x0102: S('ESME_RSERTYPUNAVAIL', 'UNREACHABLE', 'Service type unavailable'),
  0x0103: S('ESME_RSERTYPDENIED', 'FILTERED', 'Service type denied'),
  0x0104: S('ESME_RINVDCS', 'UNKNOWN_ERROR', 'Invalid data coding scheme'),
  0x0105: S('ESME_RINVSRCADDRSUBUNIT', 'FILTERED', 'Invalid source address subunit'),
  0x0106: S('ESME_RINVDSTADDRSUBUNIT', 'INVALID_NUMBER', 'Invalid destination address subunit'),
};

export const hex32 = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

/** Maps a non-zero command_status to {errorClass, code, message, providerCode}. */
export function classifyStatus(status: number): { errorClass: ErrorClass; code: string; message: string; providerCode: string } {
  const known = COMMAND_STATUS[status];
  if (known) return { errorClass: known.errorClass, code: known.name, message: `${known.meaning} (${known.name}).`, providerCode: hex32(status) };
  const vendor = status >= 0x400 && status <= 0x4ff;
  return {
    errorClass: 'UNKNOWN_ERROR',
    code: vendor ? 'SMPP_VENDOR_ERROR' : 'SMPP_UNKNOWN_STATUS',
    message: `The SMSC answered command_status ${hex32(status)}${vendor ? ' (vendor specific)' : ''}.`,
    providerCode: hex32(status),
  };
}

// ---------------------------------------------------------------------------------------------
// Delivery receipts. The de-facto format (SMPP 3.4 appendix B):
//   id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
// SMSCs vary (`dlvr`, upper case, missing fields, ids in decimal), so fields are found by name.

export interface ReceiptText {
  id: string | null;
  sub: string | null;
  dlvrd: string | null;
  submitDate: string | null;
  doneDate: string | null;
  stat: string | null;
  err: string | null;
  text: string | null;
}

export function parseReceiptText(text: string): ReceiptText {
  const field = (re: RegExp) => re.exec(text)?.[1] ?? null;
  return {
    id: field(/\bid:\s*([^\s]+)/i),
    sub: field(/\bsub:\s*(\S+)/i),
    dlvrd: field(/\bdlvrd?:\s*(\S+)/i),
    submitDate: field(/\bsubmit[ _]date:\s*(\d+)/i),
    doneDate: field(/\bdone[ _]date:\s*(\d+)/i),
    stat: field(/\bstat:\s*([A-Za-z_]+)/i)?.toUpperCase() ?? null,
    err: field(/\berr:\s*(\w+)/i),
    text: field(/\btext:(.*)$/is),
  };
}

/** message_state TLV values (SMPP 3.4 §5.2.28) as receipt stat words. */
export const MESSAGE_STATES: Record<number, string> = {
  1: 'ENROUTE',
  2: 'DELIVRD',
  3: 'EXPIRED',
  4: 'DELETED',
  5: 'UNDELIV',
  6: 'ACCEPTD',
  7: 'UNKNOWN',
  8: 'REJECTD',
};

/**
 * The `err:` field is SMSC specific; many carry the GSM MAP error of the final attempt. Where
 * that tells more than the stat word, it refines the class; a connector's `receipt_errors`
 * config adds to or overrides this table.
 */
export const DEFAULT_RECEIPT_ERRORS: Record<string, ErrorClass> = {
  '001': 'INVALID_NUMBER', // MAP unknown subscriber
  '005': 'INVALID_NUMBER', // MAP unidentified subscriber
  '009': 'INVALID_NUMBER', // MAP illegal subscriber
  '013': 'FILTERED', // MAP call barred
};

type Final = Pick<Receipt, 'status' | 'errorClass' | 'code' | 'message'>;

const STAT_OUTCOME: Record<string, Final> = {
  DELIVRD: { status: 'delivered' },
  UNDELIV: { status: 'undelivered', errorClass: 'UNREACHABLE', code: 'UNDELIVERABLE', message: 'The carrier could not deliver the message (UNDELIV).' },
  REJECTD: { status: 'undelivered', errorClass: 'FILTERED', code: 'REJECTED', message: 'The carrier rejected the message (REJECTD).' },
  EXPIRED: { status: 'expired', errorClass: 'UNREACHABLE', code: 'EXPIRED', message: 'The carrier gave up when the validity period ran out (EXPIRED).' },
  DELETED: { status: 'undelivered', errorClass: 'UNKNOWN_ERROR', code: 'DELETED', message: 'The message was deleted at the carrier (DELETED).' },
};

/**
 * A final stat → the Receipt's outcome; null for a state that is not final (ENROUTE, ACCEPTD,
 * UNKNOWN, anything unrecognised): the message stays `sent` and the connector counts it.
 */
export function receiptOutcome(stat: string, err: string | null, receiptErrors: Record<string, ErrorClass> = DEFAULT_RECEIPT_ERRORS): Final | null {
  const base = STAT_OUTCOME[stat];
  if (!base) return null;
  if (base.status !== 'undelivered' || !err) return { ...base };
  const refined = receiptErrors[err.padStart(3, '0')];
  return refined ? { ...base, errorClass: refined, message: `${base.message} err:${err}` } : { ...base, message: `${base.message} err:${err}` };
}

// ---------------------------------------------------------------------------------------------
// Encoding and splitting. GSM-7 goes as unpacked septets, one per octet, with data_coding 0 (what
// SMSCs expect over SMPP); UCS-2 as UTF-16BE with data_coding 8. A text longer than one segment
// is split, each part carrying the 8-bit-reference concatenation UDH (05 00 03 ref total seq):
// 153 septets or 67 UTF-16 units per part, never splitting an escape pair or a surrogate pair,
// which is how src/messages/encoding.ts counts them.

export const DATA_CODING_GSM = 0;
export const DATA_CODING_UCS2 = 8;

const UnicodeToGsm = ((UnicodeToGsmModule as unknown as { default?: unknown }).default ?? UnicodeToGsmModule) as Record<number, number[]>;
const GsmToUnicode = new Map<number, string>();
const GsmExtToUnicode = new Map<number, string>();
for (const [code, units] of Object.entries(UnicodeToGsm)) {
  const ch = String.fromCharCode(Number(code));
  if (units.length === 1 && !GsmToUnicode.has(units[0])) GsmToUnicode.set(units[0], ch);
  if (units.length === 2 && !GsmExtToUnicode.has(units[1])) GsmExtToUnicode.set(units[1], ch);
}

/** The GSM 03.38 code units of a text, grouped per character; null if a character has none. */
export function toGsmUnits(text: string): number[][] | null {
  const out: number[][] = [];
  for (let i = 0; i < text.length; i++) {
    const units = UnicodeToGsm[text.charCodeAt(i)];
    if (!units) return null;
    out.push(units);
  }
  return out;
}

export function decodeGsm(octets: Buffer): string {
  let s = '';
  for (let i = 0; i < octets.length; i++) {
    const b = octets[i] & 0x7f;
    if (b === 0x1b && i + 1 < octets.length) {
      const ext = GsmExtToUnicode.get(octets[i + 1] & 0x7f);
      if (ext) {
        s += ext;
        i++;
        continue;
      }
    }
    s += GsmToUnicode.get(b) ?? ' ';
  }
  return s;
}

export interface EncodedParts {
  dataCoding: number;
  /** short_message of each submit_sm, UDH included when there is more than one. */
  parts: Buffer[];
  encoding: 'GSM-7' | 'UCS-2';
}

/** Groups units into chunks of at most `max`, never splitting a group. */
function chunk(groups: number[][], max: number): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  for (const g of groups) {
    if (cur.length + g.length > max) {
      out.push(cur);
      cur = [];
    }
    cur.push(...g);
  }
  out.push(cur);
  return out;
}

function ucs2Groups(text: string): number[][] {
  const groups: number[][] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      groups.push([c, text.charCodeAt(i + 1)]);
      i++;
    } else groups.push([c]);
  }
  return groups;
}

/**
 * Encodes a text for submit_sm. `prefer` is the encoding the platform chose at acceptance; a
 * GSM-7 text with a character outside the GSM tables (which acceptance should never let
 * through) falls back to UCS-2 rather than sending a wrong character.
 */
export function encodeText(text: string, prefer: 'GSM-7' | 'UCS-2', ref: number): EncodedParts {
  const gsm = prefer === 'GSM-7' ? toGsmUnits(text) : null;
  if (gsm) {
    const septets = gsm.reduce((n, g) => n + g.length, 0);
    if (septets <= 160) return { dataCoding: DATA_CODING_GSM, encoding: 'GSM-7', parts: [Buffer.from(gsm.flat())] };
    return { dataCoding: DATA_CODING_GSM, encoding: 'GSM-7', parts: withUdh(chunk(gsm, 153).map((c) => Buffer.from(c)), ref) };
  }
  const groups = ucs2Groups(text);
  const toBuf = (units: number[]) => {
    const b = Buffer.alloc(units.length * 2);
    units.forEach((u, i) => b.writeUInt16BE(u, i * 2));
    return b;
  };
  const total = groups.reduce((n, g) => n + g.length, 0);
  if (total <= 70) return { dataCoding: DATA_CODING_UCS2, encoding: 'UCS-2', parts: [toBuf(groups.flat())] };
  return { dataCoding: DATA_CODING_UCS2, encoding: 'UCS-2', parts: withUdh(chunk(groups, 67).map(toBuf), ref) };
}

function withUdh(parts: Buffer[], ref: number): Buffer[] {
  return parts.map((p, i) => Buffer.concat([Buffer.from([0x05, 0x00, 0x03, ref & 0xff, parts.length, i + 1]), p]));
}

/**
 * The concatenation info among a deliver_sm's UDH information elements (as the `smpp` package
 * decodes them: one buffer per element, `[iei, length, ...data]`): IE 0x00 (8-bit reference) or
 * 0x08 (16-bit reference).
 */
export function concatInfo(elements: Buffer[]): { ref: number; total: number; seq: number } | null {
  for (const ie of elements) {
    if (ie[0] === 0x00 && ie[1] === 3 && ie.length >= 5) return { ref: ie[2], total: ie[3], seq: ie[4] };
    if (ie[0] === 0x08 && ie[1] === 4 && ie.length >= 6) return { ref: ie.readUInt16BE(2), total: ie[4], seq: ie[5] };
  }
  return null;
}

/** Decodes the text octets of a deliver_sm by its data_coding. */
export function decodeText(octets: Buffer, dataCoding: number): string {
  const dc = dataCoding & 0xff;
  // 0x08 and 0x18–0x1B (UCS-2 with a message class) are UTF-16BE; 0x00 and the rest GSM.
  if (dc === 0x08 || (dc & 0xfc) === 0x18) {
    const even = octets.subarray(0, octets.length - (octets.length % 2));
    const swapped = Buffer.from(even);
    swapped.swap16();
    return swapped.toString('utf16le');
  }
  if (dc === 0x03) return octets.toString('latin1');
  if (dc === 0x01) return octets.toString('ascii');
  return decodeGsm(octets);
}
