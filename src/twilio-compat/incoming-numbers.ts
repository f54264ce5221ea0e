// Twilio's IncomingPhoneNumbers resource over our senders: a sender that is a phone number (or a
// short code) is an incoming phone number, PN + the hex of its `sender_…` id. What Twilio keeps
// on a number and we do not — its friendly name, its incoming-message URL and method — is in
// `twilio_numbers`, per mode: a test credential configures where test-mode inbound messages (the
// simulator's) go, a live one where live ones go. Creating one adds a sender to the account
// (senders belong to the account, not to a mode); deleting one removes the sender.
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import { checkUrl } from '../net/url-policy.ts';
import type { SenderService, SenderView } from '../senders/sender-service.ts';
import { recordBy } from '../audit/audit-service.ts';
import type { Storage } from '../storage/database.ts';
import { transaction } from '../storage/transactions.ts';
import type { SendersTable } from '../storage/schema.ts';
import { API_VERSION, rfc2822 } from './message-resource.ts';
import { idOf, sidOf } from './sids.ts';
import { TwilioError, apiError, twilioInvalid, twilioNotFound } from './twilio-errors.ts';
import { one, type Form, type TwilioPrincipal } from './twilio-message-api.ts';
import { twilioDb, twilioTx, type TwilioNumbersTable } from './twilio-tables.ts';

const PHONE_TYPES = ['long_code', 'toll_free', 'short_code'];

export class IncomingNumbers {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private senders: SenderService,
    private allowPrivateUrls: boolean,
  ) {}

  private listUri(accountSid: string) {
    return `/${API_VERSION}/Accounts/${accountSid}/IncomingPhoneNumbers.json`;
  }

  private resource(pr: TwilioPrincipal, s: Pick<SendersTable, 'id' | 'address' | 'capabilities' | 'created_at'>, c: TwilioNumbersTable | undefined) {
    const sid = sidOf(s.id, 'PN');
    const caps: string[] = JSON.parse(s.capabilities);
    return {
      account_sid: pr.accountSid,
      address_requirements: 'none',
      api_version: API_VERSION,
      beta: false,
      capabilities: { fax: false, mms: caps.includes('mms'), sms: caps.includes('sms'), voice: caps.includes('voice') },
      date_created: rfc2822(s.created_at),
      date_updated: rfc2822(c?.updated_at ?? s.created_at),
      friendly_name: c?.friendly_name ?? s.address,
      origin: 'switchboard',
      phone_number: s.address,
      sid,
      sms_application_sid: '',
      sms_fallback_method: 'POST',
      sms_fallback_url: '',
      sms_method: c?.sms_method ?? 'POST',
      sms_url: c?.sms_url ?? '',
      status: 'in-use',
      status_callback: '',
      status_callback_method: 'POST',
      uri: `/${API_VERSION}/Accounts/${pr.accountSid}/IncomingPhoneNumbers/${sid}.json`,
      voice_method: 'POST',
      voice_url: '',
    };
  }

  private async configs(senderIds: string[], mode: string): Promise<Map<string, TwilioNumbersTable>> {
    if (senderIds.length === 0) return new Map();
    const rows = await twilioDb(this.storage).selectFrom('twilio_numbers').selectAll().where('sender_id', 'in', senderIds).where('mode', '=', mode).execute();
    return new Map(rows.map((r) => [r.sender_id, r]));
  }

  private async sender(pr: TwilioPrincipal, sid: string, path: string) {
    const id = idOf(sid, 'sender', ['PN']);
    const row = id
      ? await this.storage.db.selectFrom('senders').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('type', 'in', PHONE_TYPES).executeTakeFirst()
      : undefined;
    if (!row) throw twilioNotFound(path);
    return row;
  }

  async list(pr: TwilioPrincipal, q: Form) {
    const sizeText = one(q, 'PageSize');
    const pageSize = sizeText === undefined ? 50 : Number(sizeText);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) throw twilioInvalid(20422, 'PageSize', 'PageSize must be a whole number from 1 to 1000.');
    const pageText = one(q, 'Page');
    const page = pageText === undefined ? 0 : Number(pageText);
    if (!Number.isInteger(page) || page < 0) throw twilioInvalid(20422, 'Page', 'Page must be a whole number from 0.');
    let query = this.storage.db.selectFrom('senders').selectAll().where('account_id', '=', pr.accountId).where('type', 'in', PHONE_TYPES);
    const filters = new URLSearchParams();
    const phone = one(q, 'PhoneNumber');
    if (phone) {
      filters.set('PhoneNumber', phone);
      // Twilio matches any part of the number.
      query = query.where('address', 'like', `%${phone.replace(/[^\d+]/g, '')}%`);
    }
    const rows = await query.orderBy('id').offset(page * pageSize).limit(pageSize + 1).execute();
    const more = rows.length > pageSize;
    const senders = rows.slice(0, pageSize);
    const configs = await this.configs(senders.map((s) => s.id), pr.mode);
    const uri = (p: number) => {
      const params = new URLSearchParams(filters);
      params.set('PageSize', String(pageSize));
      params.set('Page', String(p));
      return `${this.listUri(pr.accountSid)}?${params.toString()}`;
    };
    return {
      end: page * pageSize + Math.max(senders.length - 1, 0),
      first_page_uri: uri(0),
      incoming_phone_numbers: senders.map((s) => this.resource(pr, s, configs.get(s.id))),
      next_page_uri: more ? uri(page + 1) : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? uri(page - 1) : null,
      start: page * pageSize,
      uri: uri(page),
    };
  }

  async fetch(pr: TwilioPrincipal, sid: string, path: string) {
    const s = await this.sender(pr, sid, path);
    return this.resource(pr, s, (await this.configs([s.id], pr.mode)).get(s.id));
  }

  /** SmsUrl, SmsMethod and FriendlyName, checked. An empty SmsUrl clears it. */
  private settings(f: Form): Partial<TwilioNumbersTable> {
    const patch: Partial<TwilioNumbersTable> = {};
    const url = one(f, 'SmsUrl');
    if (url !== undefined) {
      if (url === '') patch.sms_url = null;
      else {
        try {
          patch.sms_url = checkUrl(url, 'SmsUrl', this.allowPrivateUrls);
        } catch (err) {
          throw twilioInvalid(21502, 'SmsUrl', (err as Error).message);
        }
      }
    }
    const method = one(f, 'SmsMethod');
    if (method !== undefined) {
      const m = method.toUpperCase();
      if (m !== 'GET' && m !== 'POST') throw twilioInvalid(20422, 'SmsMethod', 'SmsMethod must be GET or POST.');
      patch.sms_method = m;
    }
    const name = one(f, 'FriendlyName');
    if (name !== undefined) {
      if (name.length > 64) throw twilioInvalid(20422, 'FriendlyName', 'FriendlyName is at most 64 characters.');
      patch.friendly_name = name === '' ? null : name;
    }
    return patch;
  }

  /**
   * Writes a number's settings for this credential's mode; a change of an existing number is
   * audited as `sender.updated` (field names, and the SmsUrl without its query, where secrets go).
   */
  private async configure(pr: TwilioPrincipal, senderId: string, patch: Partial<TwilioNumbersTable>, audit: boolean): Promise<void> {
    if (Object.keys(patch).length === 0) return;
    const now = this.clock.now();
    await transaction(this.storage.db, async (tx) => {
      await twilioTx(tx)
        .insertInto('twilio_numbers')
        .values({ sender_id: senderId, mode: pr.mode, friendly_name: patch.friendly_name ?? null, sms_url: patch.sms_url ?? null, sms_method: patch.sms_method ?? 'POST', created_at: now, updated_at: now })
        .onConflict((oc) => oc.columns(['sender_id', 'mode']).doUpdateSet({ ...patch, updated_at: now }))
        .execute();
      if (!audit) return;
      const details: Record<string, unknown> = { via: 'twilio-compat', fields: Object.keys(patch) };
      if (patch.sms_url) details.sms_url = patch.sms_url.split('?')[0];
      await recordBy(tx, pr, { accountId: pr.accountId, mode: pr.mode, action: 'sender.updated', target: { type: 'sender', id: senderId }, details, at: now });
    });
  }

  async update(pr: TwilioPrincipal, sid: string, f: Form, path: string) {
    const s = await this.sender(pr, sid, path);
    await this.configure(pr, s.id, this.settings(f), true);
    return this.fetch(pr, sid, path);
  }

  /** "Buying" a number: the number becomes a sender of the account (sms and mms). */
  async create(pr: TwilioPrincipal, f: Form) {
    const phone = one(f, 'PhoneNumber');
    if (!phone) throw twilioInvalid(20422, 'PhoneNumber', 'A PhoneNumber is required (this server does not search for numbers: name the one to add).');
    // The checks come before the sender exists, so bad input leaves nothing behind.
    const settings = this.settings(f);
    let created: SenderView;
    try {
      created = await this.senders.create(pr.accountId, { address: phone, type: /^\d{3,8}$/.test(phone) ? 'short_code' : 'long_code', capabilities: ['sms', 'mms'] }, pr);
    } catch (err) {
      if (err instanceof AppError) {
        if (err.code === 'INVALID_NUMBER' || err.details.field === 'address') throw new TwilioError(21421, 400, `PhoneNumber is invalid: ${err.message}`, err);
        throw apiError(err);
      }
      throw err;
    }
    await this.configure(pr, created.id, settings, false);
    return this.fetch(pr, sidOf(created.id, 'PN'), this.listUri(pr.accountSid));
  }

  async remove(pr: TwilioPrincipal, sid: string, path: string): Promise<void> {
    const s = await this.sender(pr, sid, path);
    await this.senders.remove(pr.accountId, s.id, pr);
    await twilioDb(this.storage).deleteFrom('twilio_numbers').where('sender_id', '=', s.id).execute();
  }
}
