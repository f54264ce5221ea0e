// Reading conversations: one per contact and account number, newest activity first, and the
// messages of one (both directions, by address pair). Replying goes through MessageService like
// any message, from the conversation's number, so every consent rule applies to it.
import type { Principal } from '../auth/scopes.ts';
import { AppError, validation } from '../errors.ts';
import type { MessageService } from '../messages/message-service.ts';
import { toMessageView, visibleTo, type MessageView } from '../messages/message-view.ts';
import type { Storage } from '../storage/database.ts';
import type { ConversationsTable } from '../storage/schema.ts';
import type { InboxService } from './inbox-service.ts';
import { transaction } from '../storage/transactions.ts';

export interface ConversationView {
  id: string;
  object: 'conversation';
  contact: { id: string; phone: string; name: string | null; owner: string | null };
  number: string;
  last_message: MessageView | null;
  last_message_at: string;
  last_direction: string | null;
  created_at: string;
}

async function view(storage: Storage, pr: Principal, c: ConversationsTable): Promise<ConversationView> {
  const [contact, last] = await Promise.all([
    storage.db.selectFrom('contacts').select(['id', 'phone', 'name', 'owner']).where('id', '=', c.contact_id).executeTakeFirst(),
    c.last_message_id ? storage.db.selectFrom('messages').selectAll().where('id', '=', c.last_message_id).executeTakeFirst() : undefined,
  ]);
  return {
    id: c.id,
    object: 'conversation',
    contact: contact ?? { id: c.contact_id, phone: c.contact_phone, name: null, owner: null },
    number: c.number,
    last_message: last ? visibleTo(pr, toMessageView(last)) : null,
    last_message_at: new Date(c.last_message_at).toISOString(),
    last_direction: c.last_direction,
    created_at: new Date(c.created_at).toISOString(),
  };
}

async function getRow(storage: Storage, pr: Principal, id: string): Promise<ConversationsTable> {
  const c = await storage.db.selectFrom('conversations').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
  if (!c) throw new AppError('NOT_FOUND', `No conversation ${id} in this account.`, { id });
  return c;
}

export async function listConversations(storage: Storage, pr: Principal, q: { limit?: number; cursor?: string; owner?: string; number?: string }) {
  const limit = q.limit ?? 50;
  let query = storage.db.selectFrom('conversations').selectAll('conversations').where('conversations.account_id', '=', pr.accountId).where('conversations.mode', '=', pr.mode);
  if (q.number !== undefined) query = query.where('conversations.number', '=', q.number);
  if (q.owner !== undefined) {
    query = query.innerJoin('contacts', 'contacts.id', 'conversations.contact_id').where('contacts.owner', '=', q.owner);
  }
  if (q.cursor !== undefined) {
    const m = /^(\d{1,16})_(conv_[0-9a-z]{26})$/.exec(q.cursor);
    if (!m) throw validation('cursor', 'cursor is not one this API returned.');
    const at = Number(m[1]);
    query = query.where((eb) => eb.or([eb('conversations.last_message_at', '<', at), eb.and([eb('conversations.last_message_at', '=', at), eb('conversations.id', '<', m[2])])]));
  }
  const rows = await query.orderBy('conversations.last_message_at', 'desc').orderBy('conversations.id', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { data: await Promise.all(page.map((c) => view(storage, pr, c))), next_cursor: rows.length > limit ? `${last.last_message_at}_${last.id}` : null };
}

export async function getConversation(storage: Storage, pr: Principal, id: string): Promise<ConversationView> {
  return view(storage, pr, await getRow(storage, pr, id));
}

export async function conversationMessages(storage: Storage, pr: Principal, id: string, q: { limit?: number; cursor?: string }) {
  const c = await getRow(storage, pr, id);
  const limit = q.limit ?? 50;
  let query = storage.db
    .selectFrom('messages')
    .selectAll()
    .where('account_id', '=', pr.accountId)
    .where('mode', '=', pr.mode)
    .where((eb) =>
      eb.or([
        eb.and([eb('direction', '=', 'inbound'), eb('from_addr', '=', c.contact_phone), eb('to_addr', '=', c.number)]),
        eb.and([eb('direction', '=', 'outbound'), eb('to_addr', '=', c.contact_phone), eb('from_addr', '=', c.number)]),
      ]),
    );
  if (q.cursor !== undefined) {
    if (!/^msg_[0-9a-z]{26}$/.test(q.cursor)) throw validation('cursor', 'cursor is not one this API returned.');
    query = query.where('id', '<', q.cursor);
  }
  const rows = await query.orderBy('id', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  return { data: page.map((r) => visibleTo(pr, toMessageView(r))), next_cursor: rows.length > limit ? page[page.length - 1].id : null };
}

/** Replies in a conversation: to its contact, from its number, through the normal send path. */
export async function replyInConversation(
  deps: { storage: Storage; messages: MessageService; inbox: InboxService },
  pr: Principal,
  id: string,
  input: Record<string, unknown>,
  idempotencyKey: string | null,
): Promise<{ message: MessageView; replayed: boolean }> {
  const c = await getRow(deps.storage, pr, id);
  for (const f of ['to', 'from'] as const) {
    if (input[f] !== undefined) throw validation(f, `A reply goes to the conversation's contact from its number: leave out ${f}.`);
  }
  const result = await deps.messages.send(pr, { ...input, to: c.contact_phone, from: c.number }, idempotencyKey);
  if (!result.replayed) {
    await transaction(deps.storage.db, async (tx) => {
      const row = await tx.selectFrom('messages').selectAll().where('id', '=', result.message.id).executeTakeFirstOrThrow();
      await deps.inbox.touchConversation(tx, { id: c.contact_id, phone: c.contact_phone }, row);
    });
  }
  return result;
}
