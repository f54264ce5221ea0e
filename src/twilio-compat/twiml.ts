// Messaging TwiML: what an incoming-message webhook may answer. We read <Response> with its
// <Message> verbs — text inside the verb or in <Body>, up to ten <Media> URLs, and the `to`,
// `from` and `statusCallback` (or legacy `action`) attributes — and nothing else: <Redirect> and
// unknown verbs are reported, not followed. Parsed with fast-xml-parser (well-formedness checked
// by its validator first); a document type declaration is refused outright, since TwiML never
// needs one and entity expansion is the classic way to make a parser spend memory.
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface TwimlMessage {
  to: string | null;
  from: string | null;
  body: string;
  media: string[];
  statusCallback: string | null;
}

export interface Twiml {
  messages: TwimlMessage[];
  /** Verbs we do not act on (Redirect, voice verbs…), for the attempt log. */
  ignored: string[];
}

/** A TwiML answer that cannot be used, with Twilio's debugger code (12100: document parse failure). */
export class TwimlError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  isArray: (name) => name === 'Message' || name === 'Media' || name === 'Body',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
});

const text = (v: unknown): string => {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Record<string, unknown>)['#text'] === 'string') return (v as Record<string, string>)['#text'];
  return '';
};

const attr = (node: unknown, name: string): string | null => {
  if (!node || typeof node !== 'object') return null;
  const v = (node as Record<string, unknown>)[`@${name}`];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
};

/** Parses a webhook's answer. An empty answer, or an empty <Response>, asks for nothing. */
export function parseTwiml(answer: string): Twiml {
  const xml = answer.trim();
  if (xml === '') return { messages: [], ignored: [] };
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new TwimlError(12100, 'TwiML must not carry a document type declaration.');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new TwimlError(12100, `Document parse failure: ${valid.err.msg} (line ${valid.err.line}).`);
  const doc = parser.parse(xml) as Record<string, unknown>;
  const roots = Object.keys(doc).filter((k) => !k.startsWith('?'));
  if (roots.length !== 1 || roots[0] !== 'Response') throw new TwimlError(12100, 'The root element of TwiML must be <Response>.');
  const response = doc.Response;
  if (typeof response !== 'object' || response === null) return { messages: [], ignored: [] };
  const ignored = Object.keys(response).filter((k) => k !== 'Message' && !k.startsWith('@') && k !== '#text');
  const messages: TwimlMessage[] = [];
  for (const node of ((response as Record<string, unknown>).Message as unknown[] | undefined) ?? []) {
    const bodies = node && typeof node === 'object' ? (((node as Record<string, unknown>).Body as unknown[] | undefined) ?? []) : [];
    const media = node && typeof node === 'object' ? (((node as Record<string, unknown>).Media as unknown[] | undefined) ?? []).map(text).filter(Boolean) : [];
    const body = bodies.length ? bodies.map(text).join('') : text(node);
    if (media.length > 10) throw new TwimlError(14103, 'A <Message> can carry at most 10 <Media> elements.');
    messages.push({ to: attr(node, 'to'), from: attr(node, 'from'), body, media, statusCallback: attr(node, 'statusCallback') ?? attr(node, 'action') });
  }
  return { messages, ignored };
}
