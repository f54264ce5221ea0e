// The two-way inbox: what happens to an inbound message after it is stored. The sender's contact
// is linked (or created), the conversation (one per contact and account number) is brought up to
// date, and keywords are acted on: opt-out, opt-in, help and the account's custom keywords, each
// with its reply. This module owns the `conversations` and `keyword_replies` tables.
//
// Keyword replies are real outbound messages, accepted in the same transaction as the consent
// record they answer, from the number the keyword came to. Who gets one:
//   opt-out  — the one confirmation, only when the keyword changed the state (a second STOP gets
//              nothing). It is the ONLY message that may reach a suppressed number: it is marked
//              in keyword_replies and the dispatcher's suppression check lets exactly it through.
//   opt-in   — a reply when the keyword lifted an opt-out.
//   help     — the help text, unless the number is opted out.
//   custom   — `JOIN VIP` appends an opt-in to the named list `vip`; the reply unless opted out.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { ConsentService } from '../consent/consent-service.ts';
import { HELP_KEYWORDS, OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, fillReply, keywordOf, readAccountSettings } from '../consent/messaging-settings.ts';
import type { ContactService, ContactRow } from '../contacts/contact-service.ts';
import { newId } from '../ids.ts';
import type { MessageService } from '../messages/message-service.ts';
import type { MessageRow } from '../messages/message-view.ts';
import type { Tx } from '../storage/database.ts';

export type KeywordReplyKind = 'opt_out_confirmation' | 'opt_in_confirmation' | 'help' | 'list_join';

export interface InboundLink {
  contact: { id: string; phone: string; name: string | null; owner: string | null; tags: string[] };
  conversation_id: string;
}

const E164 = /^\+[1-9]\d{6,14}$/;

export class InboxService {
  constructor(
    private clock: Clock,
    private consent: ConsentService,
    private contacts: ContactService,
    private messages: MessageService,
    private log: Logger,
  ) {}

  /** Links the sender's contact and the conversation. Null for senders that are not numbers. */
  async link(tx: Tx, row: MessageRow): Promise<InboundLink | null> {
    if (!row.from_addr || !E164.test(row.from_addr)) return null;
    const contact = await this.contacts.ensure(tx, row.account_id, row.mode, row.from_addr);
    const conversationId = await this.touchConversation(tx, contact, row);
    return {
      contact: { id: contact.id, phone: contact.phone, name: contact.name, owner: contact.owner, tags: JSON.parse(contact.tags) },
      conversation_id: conversationId,
    };
  }

  /** One conversation per contact and account number; its last message moves forward. */
  async touchConversation(tx: Tx, contact: Pick<ContactRow, 'id' | 'phone'>, row: MessageRow): Promise<string> {
    const number = row.direction === 'inbound' ? row.to_addr : row.from_addr;
    const now = this.clock.now();
    await tx
      .insertInto('conversations')
      .values({
        id: newId('conv', now),
        account_id: row.account_id,
        mode: row.mode,
        contact_id: contact.id,
        contact_phone: contact.phone,
        number: number ?? '',
        last_message_id: row.id,
        last_message_at: row.created_at,
        last_direction: row.direction,
        created_at: now,
      })
      .onConflict((oc) =>
        oc.columns(['account_id', 'mode', 'contact_phone', 'number']).doUpdateSet({ last_message_id: row.id, last_message_at: row.created_at, last_direction: row.direction }),
      )
      .execute();
    const conv = await tx
      .selectFrom('conversations')
      .select('id')
      .where('account_id', '=', row.account_id)
      .where('mode', '=', row.mode)
      .where('contact_phone', '=', contact.phone)
      .where('number', '=', number ?? '')
      .executeTakeFirstOrThrow();
    return conv.id;
  }

  /** Acts on a keyword in an inbound message: consent record, event, reply. */
  async handleKeywords(tx: Tx, row: MessageRow): Promise<void> {
    const keyword = keywordOf(row.body ?? '');
    if (!keyword || keyword.length > 40) return;
    const isOut = OPT_OUT_KEYWORDS.includes(keyword);
    const isIn = OPT_IN_KEYWORDS.includes(keyword);
    const isHelp = HELP_KEYWORDS.includes(keyword);
    const account = await readAccountSettings(tx, row.account_id);
    const custom = account.messaging.keywords.custom.find((c) => keywordOf(c.keyword) === keyword);
    if (!isOut && !isIn && !isHelp && !custom) return;

    const { account_id: accountId, mode, from_addr: phone } = row;
    if (!phone) return;
    const suppressed = await this.consent.isSuppressed(tx, accountId, mode, phone);
    // The keyword and the message that carried it are the evidence; the text itself stays on the
    // message (sealed, and removed by retention), not copied into the ledger.
    const evidence = { keyword, message_id: row.id, to: row.to_addr };
    const texts = account.messaging.keywords;
    const reply = (kind: KeywordReplyKind, text: string) => this.reply(tx, row, kind, fillReply(text, account.name));

    if (isOut || isIn) {
      if (isOut === suppressed) return; // nothing changes: no record, no second confirmation
      await this.consent.record(tx, { accountId, mode, phone, status: isOut ? 'opted_out' : 'opted_in', purpose: 'all', channel: 'all', source: 'keyword', evidence });
      await reply(isOut ? 'opt_out_confirmation' : 'opt_in_confirmation', isOut ? texts.opt_out_reply : texts.opt_in_reply);
      return;
    }
    if (custom) {
      await this.consent.record(tx, { accountId, mode, phone, status: 'opted_in', purpose: custom.list, channel: 'all', source: 'keyword', evidence: { ...evidence, list: custom.list } });
    }
    if (suppressed) return;
    if (custom) await reply('list_join', custom.reply);
    else await reply('help', texts.help_reply);
  }

  private async reply(tx: Tx, inbound: MessageRow, kind: KeywordReplyKind, text: string): Promise<void> {
    const msg = await this.messages.acceptInternal(tx, {
      accountId: inbound.account_id,
      mode: inbound.mode,
      to: inbound.from_addr!,
      from: inbound.to_addr,
      body: text.slice(0, 1600),
      metadata: { keyword_reply: kind, in_reply_to: inbound.id },
    });
    if (!msg) {
      this.log.warn({ account_id: inbound.account_id, kind }, 'no route carries the keyword reply; not sent');
      return;
    }
    await tx.insertInto('keyword_replies').values({ message_id: msg.id, account_id: msg.account_id, mode: msg.mode, inbound_message_id: inbound.id, kind, created_at: msg.created_at }).execute();
  }
}
