import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { api, get, qs, type Message, type Page } from '../api.ts';
import { Link } from '../router.tsx';
import { canReply, useSession } from '../session.tsx';
import { Body, Empty, ErrorBox, Field, Section, when } from '../ui.tsx';
import { ConsentPanel } from './Contacts.tsx';

export interface Conversation {
  id: string;
  contact: { id: string; phone: string; name: string | null; owner: string | null };
  number: string;
  last_message: Message | null;
  last_message_at: string;
  last_direction: string | null;
  unread?: number;
}

function Thread({ c }: { c: Conversation }) {
  const s = useSession();
  const qc = useQueryClient();
  const [text, setText] = useState('');
  const msgs = useQuery({ queryKey: ['conversation-messages', c.id], queryFn: () => get<Page<Message>>(`/v1/conversations/${c.id}/messages?limit=100`), refetchInterval: 2000 });
  useEffect(() => {
    // Reading the thread marks it read for this person (where the API counts unread messages).
    api('POST', `/v1/conversations/${c.id}/read`).then(
      () => qc.invalidateQueries({ queryKey: ['conversations'] }),
      () => {},
    );
  }, [c.id, msgs.data?.data[0]?.id, qc]);
  const reply = useMutation({
    mutationFn: () => api<Message>('POST', `/v1/conversations/${c.id}/messages`, { body: text }),
    onSuccess: () => {
      setText('');
      void qc.invalidateQueries({ queryKey: ['conversation-messages', c.id] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    reply.mutate();
  };
  const ordered = [...(msgs.data?.data ?? [])].reverse();
  return (
    <Section title={`${c.contact.name ?? c.contact.phone}`}>
      <p className="muted">
        {c.contact.phone} · on {c.number}
        {c.contact.owner ? ` · owner ${c.contact.owner}` : ''}
      </p>
      <ErrorBox error={msgs.error} />
      <ol className="thread" aria-label="Messages in this conversation" aria-live="polite">
        {ordered.map((m) => (
          <li key={m.id} className={`bubble ${m.direction}`} data-testid="thread-message">
            <Body text={m.body} />
            <small>
              <Link to={`/messages/${m.id}`}>{m.direction === 'inbound' ? 'received' : m.status}</Link> · {when(m.created_at)}
            </small>
          </li>
        ))}
      </ol>
      {canReply(s) ? (
        <form onSubmit={submit} className="row-form" aria-label="Reply">
          <Field label={`Reply from ${c.number}`}>
            <textarea rows={2} required value={text} onChange={(e) => setText(e.target.value)} />
          </Field>
          <button type="submit" disabled={reply.isPending}>
            Send reply
          </button>
          <ErrorBox error={reply.error} />
        </form>
      ) : null}
    </Section>
  );
}

export function InboxPage({ id }: { id?: string }) {
  const s = useSession();
  const [mine, setMine] = useState(false);
  const params = { limit: 100, owner: mine ? s.user.id : '' };
  const list = useQuery({ queryKey: ['conversations', params], queryFn: () => get<Page<Conversation>>(`/v1/conversations${qs(params)}`), refetchInterval: 2000 });
  const current = list.data?.data.find((c) => c.id === id);
  return (
    <>
      <h1>Inbox</h1>
      <div className="inbox">
        <Section title="Conversations">
          <label>
            <input type="checkbox" checked={mine} onChange={(e) => setMine(e.target.checked)} /> Routed to me
          </label>
          <ErrorBox error={list.error} />
          {list.data && list.data.data.length === 0 ? <Empty>No conversations yet.</Empty> : null}
          <ul className="conv-list">
            {list.data?.data.map((c) => (
              <li key={c.id}>
                <Link to={`/inbox/${c.id}`} aria-current={c.id === id ? 'true' : undefined} data-testid="conversation">
                  <strong>{c.contact.name ?? c.contact.phone}</strong>
                  {c.unread ? (
                    <span className="unread" aria-label={`${c.unread} unread`}>
                      {c.unread}
                    </span>
                  ) : null}
                  <br />
                  <span className="muted clip">
                    <Body text={c.last_message?.body} />
                  </span>
                  <br />
                  <small className="muted">{when(c.last_message_at)}</small>
                </Link>
              </li>
            ))}
          </ul>
        </Section>
        {current ? <Thread c={current} /> : <Empty>Pick a conversation.</Empty>}
        {current ? <ConsentPanel phone={current.contact.phone} /> : <span />}
      </div>
    </>
  );
}
