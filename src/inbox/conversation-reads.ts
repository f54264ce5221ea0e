// Per-person read marks on conversations (migration 015): the dashboard's unread counts. Only a
// signed-in person has them; API keys and OAuth clients see no `unread`.
import type { Principal } from '../auth/scopes.ts';
import type { Storage } from '../storage/database.ts';
import { getConversation } from './conversation-service.ts';

interface ConversationRef {
  id: string;
  contact: { phone: string };
  number: string;
}

export async function withUnread<T extends ConversationRef>(storage: Storage, pr: Principal, conversations: T[]): Promise<(T & { unread?: number })[]> {
  const userId = pr.userId;
  if (pr.kind !== 'session' || !userId || conversations.length === 0) return conversations;
  const reads = await storage.db
    .selectFrom('conversation_reads')
    .select(['conversation_id', 'read_at'])
    .where('user_id', '=', userId)
    .where(
      'conversation_id',
      'in',
      conversations.map((c) => c.id),
    )
    .execute();
  const readAt = new Map(reads.map((r) => [r.conversation_id, Number(r.read_at)]));
  return Promise.all(
    conversations.map(async (c) => {
      const row = await storage.db
        .selectFrom('messages')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('account_id', '=', pr.accountId)
        .where('mode', '=', pr.mode)
        .where('direction', '=', 'inbound')
        .where('from_addr', '=', c.contact.phone)
        .where('to_addr', '=', c.number)
        .where('created_at', '>', readAt.get(c.id) ?? 0)
        .executeTakeFirst();
      return { ...c, unread: Number(row?.n ?? 0) };
    }),
  );
}

export async function markRead(storage: Storage, pr: Principal, id: string, now: number): Promise<{ id: string; unread: number }> {
  await getConversation(storage, pr, id);
  if (pr.kind === 'session' && pr.userId) {
    const userId = pr.userId;
    await storage.db
      .insertInto('conversation_reads')
      .values({ conversation_id: id, user_id: userId, read_at: now })
      .onConflict((oc) => oc.columns(['conversation_id', 'user_id']).doUpdateSet({ read_at: now }))
      .execute();
  }
  return { id, unread: 0 };
}
