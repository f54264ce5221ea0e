// Tracked short links. When SWITCHBOARD_PUBLIC_URL is set, every http(s) link written in a
// campaign's text becomes `{public}/l/{code}`: the code is the link's own eight characters
// followed by the recipient's number in the campaign (base 36), so one row per link serves every
// recipient, and a click is recorded against that recipient's message and contact.
// Links that a variable's value brings in are left as they are.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Executor, Storage } from '../storage/database.ts';

const CODE_LENGTH = 8;
const ALPHABET = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const URL_IN_TEXT = /https?:\/\/[^\s<>"'{}]+[^\s<>"'{}.,;:!?)]/g;

export interface CampaignLink {
  code: string;
  url: string;
}

function newCode(): string {
  return [...randomBytes(CODE_LENGTH)].map((b) => ALPHABET[b % ALPHABET.length]).join('');
}

/** The literal links of a Liquid text (outside tags), longest first so none shadows another. */
export function linksIn(text: string): string[] {
  const literal = text.replace(/\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g, ' ');
  return [...new Set(literal.match(URL_IN_TEXT) ?? [])].sort((a, b) => b.length - a.length);
}

export class LinkService {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private publicUrl: string | undefined,
  ) {}

  get enabled(): boolean {
    return this.publicUrl !== undefined;
  }

  async create(tx: Executor, campaignId: string, urls: string[]): Promise<void> {
    if (!urls.length) return;
    const now = this.clock.now();
    await tx.insertInto('campaign_links').values(urls.map((url) => ({ code: newCode(), campaign_id: campaignId, url, created_at: now }))).execute();
  }

  async ofCampaign(campaignId: string): Promise<CampaignLink[]> {
    const rows = await this.storage.db.selectFrom('campaign_links').select(['code', 'url']).where('campaign_id', '=', campaignId).execute();
    return rows.sort((a, b) => b.url.length - a.url.length);
  }

  /** The text with each campaign link replaced by the recipient's short link. */
  shorten(text: string, links: CampaignLink[], seq: number): string {
    if (!this.publicUrl || links.length === 0) return text;
    const base = this.publicUrl.replace(/\/+$/, '');
    // Split on every link at once, so a short link is never itself rewritten by a later, shorter URL.
    const byUrl = new Map(links.map((l) => [l.url, l.code]));
    const pattern = new RegExp(links.map((l) => l.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
    return text.replace(pattern, (url) => `${base}/l/${byUrl.get(url)}${seq.toString(36)}`);
  }

  /** Resolves a short code and records the click; null when the code is unknown. */
  async click(code: string, userAgent: string | null): Promise<string | null> {
    if (code.length <= CODE_LENGTH || !/^[0-9a-z]+$/.test(code.slice(CODE_LENGTH))) return null;
    const db = this.storage.db;
    const link = await db.selectFrom('campaign_links').selectAll().where('code', '=', code.slice(0, CODE_LENGTH)).executeTakeFirst();
    if (!link) return null;
    const seq = parseInt(code.slice(CODE_LENGTH), 36);
    const recipient = await db.selectFrom('campaign_recipients').select(['message_id', 'contact_id', 'phone']).where('campaign_id', '=', link.campaign_id).where('seq', '=', seq).executeTakeFirst();
    if (!recipient) return null;
    await db
      .insertInto('link_clicks')
      .values({ campaign_id: link.campaign_id, code: link.code, seq, message_id: recipient.message_id, contact_id: recipient.contact_id, user_agent: userAgent?.slice(0, 300) ?? null, at: this.clock.now() })
      .execute();
    return link.url;
  }
}
