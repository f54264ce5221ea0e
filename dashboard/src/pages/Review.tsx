import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, get, type Message, type Page } from '../api.ts';
import { ERROR_ACTIONS } from '../errors.ts';
import { Link } from '../router.tsx';
import { can, useSession } from '../session.tsx';
import { Body, Empty, ErrorBox, Section, when } from '../ui.tsx';

interface Item {
  id: string;
  message_id: string;
  error_class: string;
  reason: string;
  status: string;
  resolution: string | null;
  note: string | null;
  created_at: string;
}

function ItemRow({ item }: { item: Item }) {
  const s = useSession();
  const qc = useQueryClient();
  const msg = useQuery({ queryKey: ['message', item.message_id], queryFn: () => get<Message>(`/v1/messages/${item.message_id}`) });
  const resolve = useMutation({
    mutationFn: async (resolution: string) => {
      if (resolution === 'suppressed' && msg.data) await api('POST', '/v1/consent', { phone: msg.data.to, status: 'opted_out', source: 'manual', evidence: { note: `Suppressed from the review queue (${item.id})` } });
      return api('POST', `/v1/review/${item.id}/resolve`, { resolution });
    },
    onSuccess: () => qc.invalidateQueries({ queryKey: ['review'] }),
  });
  return (
    <li className="card">
      <p>
        <strong>{item.error_class}</strong> · {item.reason} · {when(item.created_at)} · <Link to={`/messages/${item.message_id}`}>message</Link>
        {msg.data ? ` to ${msg.data.to}` : ''}
      </p>
      <p className="preview">
        <Body text={msg.data?.body} />
      </p>
      {ERROR_ACTIONS[item.error_class] ? <p className="advice">{ERROR_ACTIONS[item.error_class].action}</p> : null}
      {item.status === 'open' && can(s, 'messages:send') ? (
        <div className="row-form">
          <button onClick={() => resolve.mutate('fixed')}>Resolve</button>
          <button className="secondary" onClick={() => resolve.mutate('dismissed')}>
            Dismiss
          </button>
          <button className="danger" onClick={() => resolve.mutate('suppressed')}>
            Suppress the number
          </button>
        </div>
      ) : (
        <p className="muted">
          {item.resolution ?? ''} {item.note ?? ''}
        </p>
      )}
      <ErrorBox error={resolve.error} />
    </li>
  );
}

export function ReviewPage() {
  const [status, setStatus] = useState('open');
  const list = useQuery({ queryKey: ['review', status], queryFn: () => get<Page<Item>>(`/v1/review?status=${status}&limit=100`), refetchInterval: 5000 });
  return (
    <>
      <h1>Review queue</h1>
      <div className="tabs" role="tablist">
        {['open', 'resolved'].map((x) => (
          <button key={x} role="tab" aria-selected={status === x} onClick={() => setStatus(x)}>
            {x}
          </button>
        ))}
      </div>
      <Section title={`${status} items`}>
        <ErrorBox error={list.error} />
        {list.data && list.data.data.length === 0 ? <Empty>Nothing to review.</Empty> : null}
        <ul style={{ listStyle: 'none', padding: 0 }}>
          {list.data?.data.map((i) => (
            <ItemRow key={i.id} item={i} />
          ))}
        </ul>
      </Section>
    </>
  );
}
