// What a media file really is, read from its first bytes, and the content types we accept.
//
// Our own few lines rather than a library: we accept exactly five formats, each with a fixed
// signature, and the check must not trust the Content-Type a client sends. The packages that
// sniff hundreds of formats (file-type) are ESM streams-first APIs with a larger surface than
// these five comparisons.

export type MediaKind = 'audio' | 'image';

export interface MediaType {
  contentType: string;
  kind: MediaKind;
  extension: string;
}

const TYPES: Record<string, MediaType> = {
  'audio/mpeg': { contentType: 'audio/mpeg', kind: 'audio', extension: 'mp3' },
  'audio/wav': { contentType: 'audio/wav', kind: 'audio', extension: 'wav' },
  'image/jpeg': { contentType: 'image/jpeg', kind: 'image', extension: 'jpg' },
  'image/png': { contentType: 'image/png', kind: 'image', extension: 'png' },
  'image/gif': { contentType: 'image/gif', kind: 'image', extension: 'gif' },
};

/** Names clients use for the same types. */
const ALIASES: Record<string, string> = {
  'audio/mp3': 'audio/mpeg',
  'audio/mpeg3': 'audio/mpeg',
  'audio/x-mpeg-3': 'audio/mpeg',
  'audio/x-wav': 'audio/wav',
  'audio/wave': 'audio/wav',
  'audio/vnd.wave': 'audio/wav',
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
};

export const ACCEPTED_CONTENT_TYPES = Object.keys(TYPES);

/** A declared Content-Type (parameters dropped, aliases resolved), or null when it is not one we take. */
export function declaredType(header: string | undefined | null): MediaType | null {
  if (!header) return null;
  const bare = header.split(';')[0]!.trim().toLowerCase();
  return TYPES[ALIASES[bare] ?? bare] ?? null;
}

const startsWith = (b: Buffer, sig: number[], at = 0) => b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

/** The type the bytes say, or null for anything else. */
export function sniffType(b: Buffer): MediaType | null {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return TYPES['image/jpeg']!;
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return TYPES['image/png']!;
  if (startsWith(b, ascii('GIF87a')) || startsWith(b, ascii('GIF89a'))) return TYPES['image/gif']!;
  if (startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WAVE'), 8)) return TYPES['audio/wav']!;
  if (startsWith(b, ascii('ID3'))) return TYPES['audio/mpeg']!;
  // An MPEG audio frame header: 11 sync bits, a version that is not "reserved" (01), a layer
  // that is not "reserved" (00).
  if (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && (b[1]! & 0x18) !== 0x08 && (b[1]! & 0x06) !== 0) return TYPES['audio/mpeg']!;
  return null;
}

export interface WavInfo {
  format: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  dataBytes: number;
}

/** The `fmt ` and `data` chunks of a RIFF/WAVE file, or null when it is not one. */
export function readWav(b: Buffer): WavInfo | null {
  if (!(startsWith(b, ascii('RIFF')) && startsWith(b, ascii('WAVE'), 8))) return null;
  let at = 12;
  let fmt: Omit<WavInfo, 'dataBytes'> | null = null;
  while (at + 8 <= b.length) {
    const id = b.toString('ascii', at, at + 4);
    const size = b.readUInt32LE(at + 4);
    if (id === 'fmt ' && at + 24 <= b.length) {
      fmt = { format: b.readUInt16LE(at + 8), channels: b.readUInt16LE(at + 10), sampleRate: b.readUInt32LE(at + 12), bitsPerSample: b.readUInt16LE(at + 22) };
    }
    if (id === 'data') return fmt ? { ...fmt, dataBytes: Math.min(size, b.length - at - 8) } : null;
    at += 8 + size + (size % 2);
  }
  return null;
}
