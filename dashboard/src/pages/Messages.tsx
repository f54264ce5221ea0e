import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, get, qs, type Message, type Page } from '../api.ts';
import { ERROR_ACTIONS, ERROR_CLASSES } from '../errors.ts';
import { Link, navigate } from '../router.tsx';
import { can, useSession } from '../session.tsx';
import { Body, Empty, ErrorBox, Field, Section, Status, when } from '../ui.tsx';

const STATUSES = ['scheduled', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'expired', 'canceled', 'received'];

function SendForm() {
  const qc = useQueryClient();
  const [to, setTo] = useState('');
  const [body, setBody] = useState('');
  const [channel, setChannel] = useState('sms');
  const send = useMutation({
    mutationFn: () => api<Message>('POST', '/v1/messages', { to, body, channel }),
    onSuccess: (m) => {
      void qc.invalidateQueries({ queryKey: ['messages'] });
      navigate(`/messages/${m.id}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    send.mutate();
  };
  return (
    <Section title="Send a message">
      <form onSubmit={submit} className="row-form" aria-label="Send a message">
        <Field label="To">
          <input name="to" required value={to} onChange={(e) => setTo(e.target.value)} placeholder="+12025550100" />
        </Field>
        <Field label="Channel">
          <select value={channel} onChange={(e) => setChannel(e.target.value)}>
            <option value="sms">SMS</option>
            <option value="voice">Voice</option>
            <option value="rvm">Ringless voicemail</option>
          </select>
        </Field>
        <Field label="Text">
          <textarea name="body" required value={body} onChange={(e) => setBody(e.target.value)} rows={2} />
        </Field>
        <button type="submit" disabled={send.isPending}>
          Send
        </button>
        <ErrorBox error={send.error} />
      </form>
    </Section>
  );
}

export function MessagesPage() {
  const s = useSession();
  const [f, setF] = useState({ number: '', status: '', channel: '', error_class: '', since: '', until: '' });
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) => setF({ ...f, [k]: e.target.value });
  const params = {
    // A number is searched once it is whole (the API normalises it, and refuses a fragment).
    to: /^\+?[\d\s().-]{8,20}$/.test(f.number.trim()) ? f.number.trim() : '',
    status: f.status,
    channel: f.channel,
    error_class: f.error_class,
    since: f.since ? new Date(f.since).toISOString() : '',
    until: f.until ? new Date(f.until).toISOString() : '',
    limit: 100,
  };
  const list = useQuery({ queryKey: ['messages', params], queryFn: () => get<Page<Message>>(`/v1/messages${qs(params)}`), refetchInterval: 2000 });
  return (
    <>
      <h1>Messages</h1>
      {can(s, 'messages:send') ? <SendForm /> : null}
      <Section title="Message log">
        <form className="filters" aria-label="Filter messages" onSubmit={(e) => e.preventDefault()}>
          <Field label="Number">
            <input type="search" value={f.number} onChange={set('number')} placeholder="+1…" />
          </Field>
          <Field label="Status">
            <select value={f.status} onChange={set('status')}>
              <option value="">any</option>
              {STATUSES.map((x) => (
                <option key={x}>{x}</option>
              ))}
            </select>
          </Field>
          <Field label="Channel">
            <select value={f.channel} onChange={set('channel')}>
              <option value="">any</option>
              {['sms', 'mms', 'voice', 'rvm'].map((x) => (
                <option key={x}>{x}</option>
              ))}
            </select>
          </Field>
          <Field label="Error class">
            <select value={f.error_class} onChange={set('error_class')}>
              <option value="">any</option>
              {ERROR_CLASSES.map((x) => (
                <option key={x}>{x}</option>
              ))}
            </select>
          </Field>
          <Field label="From date">
            <input type="datetime-local" value={f.since} onChange={set('since')} />
          </Field>
          <Field label="To date">
            <input type="datetime-local" value={f.until} onChange={set('until')} />
          </Field>
        </form>
        <ErrorBox error={list.error} />
        {list.data && list.data.data.length === 0 ? <Empty>No messages match.</Empty> : null}
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Direction</th>
                <th scope="col">To</th>
                <th scope="col">From</th>
                <th scope="col">Channel</th>
                <th scope="col">Status</th>
                <th scope="col">Error</th>
                <th scope="col">Text</th>
              </tr>
            </thead>
            <tbody>
              {list.data?.data.map((m) => (
                <tr key={m.id} data-testid="message-row">
                  <td>
                    <Link to={`/messages/${m.id}`}>{when(m.created_at)}</Link>
                  </td>
                  <td>{m.direction}</td>
                  <td>{m.to}</td>
                  <td>{m.from ?? '—'}</td>
                  <td>{m.channel}</td>
                  <td>
                    <Status value={m.status} />
                  </td>
                  <td>{m.error?.class ?? ''}</td>
                  <td className="clip">
                    <Body text={m.body} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
    </>
  );
}

interface MessageEvent {
  status: string;
  at: string;
  ignored: boolean;
  data: Record<string, unknown>;
  data_redacted?: true;
}

const FINAL = new Set(['delivered', 'undelivered', 'failed', 'expired', 'canceled', 'received']);

export function MessagePage({ id }: { id: string }) {
  const msg = useQuery({ queryKey: ['message', id], queryFn: () => get<Message>(`/v1/messages/${encodeURIComponent(id)}`), refetchInterval: (q) => (q.state.data && FINAL.has(q.state.data.status) ? 10_000 : 1000) });
  const events = useQuery({ queryKey: ['message-events', id, msg.data?.status], queryFn: () => get<Page<MessageEvent>>(`/v1/messages/${encodeURIComponent(id)}/events`), enabled: !!msg.data });
  const m = msg.data;
  const advice = m?.error ? ERROR_ACTIONS[m.error.class] : undefined;
  return (
    <>
      <p>
        <Link to="/messages">← Messages</Link>
      </p>
      <h1>Message {id}</h1>
      <ErrorBox error={msg.error} />
      {m ? (
        <>
          <Section title="Summary">
            <dl className="facts">
              <dt>Status</dt>
              <dd data-testid="message-status">
                <Status value={m.status} />
              </dd>
              <dt>Direction</dt>
              <dd>{m.direction}</dd>
              <dt>To</dt>
              <dd>{m.to}</dd>
              <dt>From</dt>
              <dd>{m.from ?? '—'}</dd>
              <dt>Channel</dt>
              <dd>{m.channel}</dd>
              <dt>Segments</dt>
              <dd>
                {m.segments} ({m.encoding})
              </dd>
              <dt>Connector</dt>
              <dd>{m.connector_id ?? '—'}</dd>
              <dt>Provider id</dt>
              <dd>{m.provider_message_id ?? '—'}</dd>
              <dt>Created</dt>
              <dd>{when(m.created_at)}</dd>
              <dt>Text</dt>
              <dd data-testid="message-body">
                <Body text={m.body} />
              </dd>
            </dl>
          </Section>
          {m.error ? (
            <Section title="Error">
              <p>
                <strong>{m.error.class}</strong> ({m.error.code}
                {m.error.provider_code ? `, provider code ${m.error.provider_code}` : ''}): {m.error.message}
              </p>
              {advice ? (
                <p className="advice">
                  <strong>{advice.title}.</strong> What to do: {advice.action}
                </p>
              ) : null}
            </Section>
          ) : null}
          <Section title="Status timeline">
            <ol className="timeline">
              {events.data?.data.map((e, i) => (
                <li key={i}>
                  <Status value={e.status} /> {when(e.at)} {e.ignored ? <em>(ignored: arrived out of order)</em> : null}
                  {e.data_redacted ? (
                    <em className="muted"> raw data hidden</em>
                  ) : Object.keys(e.data).length ? (
                    <details>
                      <summary>Provider’s raw response</summary>
                      <pre>{JSON.stringify(e.data, null, 2)}</pre>
                    </details>
                  ) : null}
                </li>
              ))}
            </ol>
          </Section>
        </>
      ) : null}
    </>
  );
}
