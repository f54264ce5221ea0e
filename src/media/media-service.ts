// Media: audio (mp3, wav) and images (jpeg, png, gif) uploaded through /v1/media, and audio
// rendered from text (text-to-speech.ts). The bytes live in the database, not on one host's
// disk, so every process of a multi-process PostgreSQL install serves every file.
//
//   id      — media_…, what the account's API names it by (GET/DELETE /v1/media/{id}).
//   token   — 32 random bytes, the unguessable part of the public URL
//             {SWITCHBOARD_PUBLIC_URL}/media/{id}/{token}. Carriers and providers fetch the file
//             there without credentials, as they fetch any MMS or voicemail audio.
//   mode    — test or live, as every object: a test key sees only test media.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { seesBodies, type Principal } from '../auth/scopes.ts';
import { AppError, validation } from '../errors.ts';
import { newId, randomToken } from '../ids.ts';
import { recordBy } from '../audit/audit-service.ts';
import type { Storage } from '../storage/database.ts';
import { transaction } from '../storage/transactions.ts';
import type { MediaTable } from '../storage/schema.ts';
import { ACCEPTED_CONTENT_TYPES, declaredType, sniffType } from './media-types.ts';

export interface MediaView {
  id: string;
  object: 'media';
  /** null for a principal that may not see message bodies (a viewer): the URL opens the file. */
  url: string | null;
  url_redacted?: true;
  content_type: string;
  size: number;
  source: string;
  created_at: string;
}

type MediaMeta = Omit<MediaTable, 'data'>;

const META_COLUMNS = ['id', 'account_id', 'mode', 'token', 'content_type', 'size', 'sha256', 'source', 'tts_key', 'created_at'] as const;

export class MediaService {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private opts: { maxBytes: number; publicUrl: () => string | undefined },
  ) {}

  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  /** The public URL of a file: on SWITCHBOARD_PUBLIC_URL, else on the base the caller was reached at. */
  url(m: Pick<MediaMeta, 'id' | 'token'>, fallbackBase?: string): string {
    const base = (this.opts.publicUrl() ?? fallbackBase ?? '').replace(/\/+$/, '');
    return `${base}/media/${m.id}/${m.token}`;
  }

  view(m: MediaMeta, fallbackBase?: string): MediaView {
    return { id: m.id, object: 'media', url: this.url(m, fallbackBase), content_type: m.content_type, size: m.size, source: m.source, created_at: new Date(m.created_at).toISOString() };
  }

  /**
   * Checks and stores an upload. The Content-Type the client declared must be one we take AND
   * agree with what the bytes are; a file over the limit is refused before anything is written.
   */
  async upload(principal: Principal, data: Buffer, declared: string | undefined, fallbackBase?: string): Promise<MediaView> {
    if (data.length === 0) throw validation('file', 'The file is empty.');
    if (data.length > this.opts.maxBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `The file is ${data.length} bytes; the limit is ${this.opts.maxBytes}.`, { size: data.length, max_bytes: this.opts.maxBytes });
    }
    const claimed = declaredType(declared);
    if (!claimed) {
      throw validation('content_type', `Content-Type ${declared ? `"${declared.split(';')[0]}"` : '(none)'} is not accepted; send one of ${ACCEPTED_CONTENT_TYPES.join(', ')}.`, { accepted: ACCEPTED_CONTENT_TYPES, declared: declared ?? null });
    }
    const actual = sniffType(data);
    if (!actual) throw validation('file', `The file is not ${claimed.extension.toUpperCase()} (nor any type we accept): its first bytes match no known signature.`, { declared: claimed.contentType, detected: null });
    if (actual.contentType !== claimed.contentType) {
      throw validation('content_type', `The file was sent as ${claimed.contentType} but its bytes are ${actual.contentType}.`, { declared: claimed.contentType, detected: actual.contentType });
    }
    const row = await this.insert(principal.accountId, principal.mode, { data, contentType: actual.contentType, source: 'upload', ttsKey: null }, principal);
    return this.view(row, fallbackBase);
  }

  /** Stores a file; an upload by a principal is audited with it (rendered audio is the platform's own). */
  private async insert(accountId: string, mode: string, f: { data: Buffer; contentType: string; source: string; ttsKey: string | null }, by?: Principal): Promise<MediaMeta> {
    const now = this.clock.now();
    const row: MediaTable = {
      id: newId('media', now),
      account_id: accountId,
      mode,
      token: randomToken(32),
      content_type: f.contentType,
      size: f.data.length,
      sha256: createHash('sha256').update(f.data).digest('hex'),
      data: f.data,
      source: f.source,
      tts_key: f.ttsKey,
      created_at: now,
    };
    await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('media').values(row).execute();
      if (by) await recordBy(tx, by, { accountId, mode, action: 'media.uploaded', target: { type: 'media', id: row.id }, details: { content_type: row.content_type, size: row.size, sha256: row.sha256 }, at: now });
    });
    const { data: _data, ...meta } = row;
    return meta;
  }

  private async meta(principal: Principal, id: string): Promise<MediaMeta> {
    const row = await this.storage.db
      .selectFrom('media')
      .select(META_COLUMNS)
      .where('id', '=', id)
      .where('account_id', '=', principal.accountId)
      .where('mode', '=', principal.mode)
      .executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No media ${id} in this account.`, { id });
    return row;
  }

  /**
   * A file's details. A viewer (no bodies) gets them without the URL: the URL is the file, and a
   * file attached to a message is as much its content as its text is.
   */
  async get(principal: Principal, id: string, fallbackBase?: string): Promise<MediaView> {
    const view = this.view(await this.meta(principal, id), fallbackBase);
    return seesBodies(principal) ? view : { ...view, url: null, url_redacted: true };
  }

  async delete(principal: Principal, id: string): Promise<void> {
    await transaction(this.storage.db, async (tx) => {
      const res = await tx.deleteFrom('media').where('id', '=', id).where('account_id', '=', principal.accountId).where('mode', '=', principal.mode).executeTakeFirst();
      if (Number(res.numDeletedRows) !== 1) throw new AppError('NOT_FOUND', `No media ${id} in this account.`, { id });
      await recordBy(tx, principal, { accountId: principal.accountId, mode: principal.mode, action: 'media.deleted', target: { type: 'media', id }, at: this.clock.now() });
    });
  }

  /** The file behind a public URL, or null: an unknown id and a wrong token look the same. */
  async fetchPublic(id: string, token: string): Promise<{ contentType: string; data: Buffer } | null> {
    if (!/^media_[0-9a-z]{26}$/.test(id) || token.length > 100) return null;
    const row = await this.storage.db.selectFrom('media').select(['token', 'content_type', 'data']).where('id', '=', id).executeTakeFirst();
    if (!row) return null;
    const a = Buffer.from(row.token);
    const b = Buffer.from(token);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return null;
    return { contentType: row.content_type, data: Buffer.from(row.data) };
  }

  /** Rendered audio for this text, if made before (the cache of text-to-speech.ts). */
  async findRendered(accountId: string, mode: string, ttsKey: string): Promise<MediaMeta | null> {
    return (await this.storage.db.selectFrom('media').select(META_COLUMNS).where('account_id', '=', accountId).where('mode', '=', mode).where('tts_key', '=', ttsKey).executeTakeFirst()) ?? null;
  }

  /** Stores rendered audio; two workers rendering the same text at once keep the first. */
  async storeRendered(accountId: string, mode: string, ttsKey: string, data: Buffer, contentType: string): Promise<MediaMeta> {
    try {
      return await this.insert(accountId, mode, { data, contentType, source: 'tts', ttsKey });
    } catch (err) {
      const existing = await this.findRendered(accountId, mode, ttsKey);
      if (existing) return existing;
      throw err;
    }
  }
}
