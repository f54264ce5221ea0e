import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, get, type Page } from '../api.ts';
import { can, useSession } from '../session.tsx';
import { Empty, ErrorBox, Field, Section, Status, when } from '../ui.tsx';

const SCOPES = ['messages:send', 'messages:read', 'contacts:read', 'contacts:write', 'consent:write', 'campaigns:send', 'workflows:manage', 'events:send', 'webhooks:manage', 'connectors:manage', 'audit:read', 'admin'];
const EVENTS = ['message.queued', 'message.sent', 'message.delivered', 'message.undelivered', 'message.failed', 'message.expired', 'message.received', 'contact.opted_out', 'contact.opted_in', 'review.created', 'campaign.completed', 'workflow.completed', 'workflow.failed'];

type Row = Record<string, unknown> & { id: string };

/** A secret the API shows once: it stays on screen until dismissed, never stored. */
function Secret({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div role="status" className="card">
      <p>
        <strong>{label}</strong> — copy it now; it is not shown again.
      </p>
      <p className="secret" data-testid="secret">
        {value}
      </p>
      <button onClick={onDone}>I have copied it</button>
    </div>
  );
}

function ScopePicker({ value, onChange }: { value: string[]; onChange: (v: string[]) => void }) {
  return (
    <fieldset>
      <legend>Scopes</legend>
      {SCOPES.map((s) => (
        <label key={s} style={{ marginRight: '0.75rem' }}>
          <input type="checkbox" checked={value.includes(s)} onChange={(e) => onChange(e.target.checked ? [...value, s] : value.filter((x) => x !== s))} /> {s}
        </label>
      ))}
    </fieldset>
  );
}

function Credentials({ kind }: { kind: 'keys' | 'clients' }) {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: [kind], queryFn: () => get<Page<Row>>(`/v1/${kind}`) });
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>(['messages:send', 'messages:read']);
  const [secret, setSecret] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => api<Record<string, string>>('POST', `/v1/${kind}`, { name: name || undefined, scopes }),
    onSuccess: (r) => {
      setSecret(kind === 'keys' ? r.secret : `client_id ${r.client_id}\nclient_secret ${r.client_secret}`);
      setName('');
      void qc.invalidateQueries({ queryKey: [kind] });
    },
  });
  const revoke = useMutation({ mutationFn: (id: string) => api('DELETE', `/v1/${kind}/${id}`), onSuccess: () => qc.invalidateQueries({ queryKey: [kind] }) });
  const title = kind === 'keys' ? 'API keys' : 'OAuth clients';
  return (
    <Section title={title}>
      {secret ? <Secret label={kind === 'keys' ? 'The new key' : 'The new client'} value={secret} onDone={() => setSecret(null)} /> : null}
      <form
        className="stack"
        aria-label={`New ${kind === 'keys' ? 'API key' : 'OAuth client'}`}
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="Name">
          <input value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <ScopePicker value={scopes} onChange={setScopes} />
        <button type="submit">Create</button>
        <ErrorBox error={create.error} />
      </form>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Name</th>
              <th scope="col">Mode</th>
              <th scope="col">Scopes</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span className="muted">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data?.data.map((k) => {
              const id = String(k.id ?? k.client_id);
              return (
                <tr key={id}>
                  <td>{id}</td>
                  <td>{String(k.name ?? '')}</td>
                  <td>{String(k.mode ?? '')}</td>
                  <td>{Array.isArray(k.scopes) ? k.scopes.join(', ') : ''}</td>
                  <td>{when(k.created_at as string)}</td>
                  <td>{k.revoked_at ? 'revoked' : <button className="danger" onClick={() => revoke.mutate(id)}>Revoke</button>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <ErrorBox error={list.error ?? revoke.error} />
    </Section>
  );
}

function Deliveries({ webhookId }: { webhookId: string }) {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ['deliveries', webhookId], queryFn: () => get<Page<Row>>(`/v1/webhooks/${webhookId}/deliveries?limit=50`), refetchInterval: 3000 });
  const retry = useMutation({ mutationFn: (id: string) => api('POST', `/v1/webhooks/deliveries/${id}/retry`), onSuccess: () => qc.invalidateQueries({ queryKey: ['deliveries', webhookId] }) });
  const replay = useMutation({ mutationFn: () => api<{ replayed: number }>('POST', `/v1/webhooks/${webhookId}/replay`, { since: new Date(Date.now() - 24 * 3600 * 1000).toISOString() }) });
  return (
    <div>
      <button className="secondary" onClick={() => replay.mutate()}>
        Replay the last 24 h of failed deliveries
      </button>
      {replay.data ? <span role="status"> {replay.data.replayed} replayed</span> : null}
      <ErrorBox error={replay.error ?? retry.error ?? list.error} />
      {list.data && list.data.data.length === 0 ? <Empty>No deliveries yet.</Empty> : null}
      <table>
        <tbody>
          {list.data?.data.map((d) => (
            <tr key={d.id}>
              <td>{String(d.event_type)}</td>
              <td>
                <Status value={String(d.status)} />
              </td>
              <td>{String(d.attempt_count)} attempts</td>
              <td>{d.last_status_code ? `HTTP ${String(d.last_status_code)}` : String(d.last_error ?? '')}</td>
              <td>{d.status === 'failed' ? <button onClick={() => retry.mutate(d.id)}>Retry</button> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Webhooks() {
  const qc = useQueryClient();
  const list = useQuery({ queryKey: ['webhooks'], queryFn: () => get<Page<Row>>('/v1/webhooks') });
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(['message.delivered', 'message.failed', 'message.received']);
  const [secret, setSecret] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () => api<{ secret: string }>('POST', '/v1/webhooks', { url, events }),
    onSuccess: (r) => {
      setSecret(r.secret);
      setUrl('');
      void qc.invalidateQueries({ queryKey: ['webhooks'] });
    },
  });
  const remove = useMutation({ mutationFn: (id: string) => api('DELETE', `/v1/webhooks/${id}`), onSuccess: () => qc.invalidateQueries({ queryKey: ['webhooks'] }) });
  return (
    <Section title="Webhooks">
      {secret ? <Secret label="The signing secret" value={secret} onDone={() => setSecret(null)} /> : null}
      <form
        className="stack"
        aria-label="New webhook"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <Field label="URL">
          <input type="url" required value={url} onChange={(e) => setUrl(e.target.value)} />
        </Field>
        <fieldset>
          <legend>Events</legend>
          {EVENTS.map((ev) => (
            <label key={ev} style={{ marginRight: '0.75rem' }}>
              <input type="checkbox" checked={events.includes(ev)} onChange={(e) => setEvents(e.target.checked ? [...events, ev] : events.filter((x) => x !== ev))} /> {ev}
            </label>
          ))}
        </fieldset>
        <button type="submit">Add webhook</button>
        <ErrorBox error={create.error ?? remove.error} />
      </form>
      <ul>
        {list.data?.data.map((w) => (
          <li key={w.id}>
            <strong>{String(w.url)}</strong> ({Array.isArray(w.events) ? w.events.join(', ') : ''}){' '}
            <button className="secondary" aria-expanded={open === w.id} onClick={() => setOpen(open === w.id ? null : w.id)}>
              Delivery log
            </button>{' '}
            <button className="danger" onClick={() => remove.mutate(w.id)}>
              Delete
            </button>
            {open === w.id ? <Deliveries webhookId={w.id} /> : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

function Connectors() {
  const list = useQuery({
    queryKey: ['connectors'],
    queryFn: async () => {
      const page = await get<Page<Row>>('/v1/connectors');
      // The list has no live state; each connector's own answer does.
      return Promise.all(page.data.map((c) => get<Row>(`/v1/connectors/${c.id}`).catch(() => c)));
    },
    refetchInterval: 2000,
  });
  const senders = useQuery({ queryKey: ['senders'], queryFn: () => get<Page<Row>>('/v1/senders') });
  return (
    <>
      <Section title="Connectors">
        <ErrorBox error={list.error} />
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Type</th>
                <th scope="col">Enabled</th>
                <th scope="col">Live state</th>
              </tr>
            </thead>
            <tbody>
              {list.data?.map((c) => {
                const st = (c.state ?? {}) as Record<string, unknown>;
                return (
                  <tr key={c.id}>
                    <td>{String(c.name)}</td>
                    <td>{String(c.type)}</td>
                    <td>{String(c.enabled)}</td>
                    <td>
                      {st.status ? <Status value={String(st.status)} /> : '—'}{' '}
                      <span className="muted">
                        {Object.entries(st)
                          .filter(([k, v]) => k !== 'status' && (typeof v === 'number' || typeof v === 'string'))
                          .map(([k, v]) => `${k}: ${String(v)}`)
                          .join(' · ')}
                      </span>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </Section>
      <Section title="Senders">
        <ErrorBox error={senders.error} />
        <ul>
          {senders.data?.data.map((s) => (
            <li key={s.id}>
              {String(s.address)} ({String(s.type)}) via {String(s.connector_id)} · {Array.isArray(s.capabilities) ? s.capabilities.join(', ') : ''}
            </li>
          ))}
        </ul>
      </Section>
    </>
  );
}

/** Settings kept as one JSON object by the API: shown and edited as JSON, saved with PATCH. */
function JsonSettings({ title, path, hint }: { title: string; path: string; hint: string }) {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['settings', path], queryFn: () => get<Record<string, unknown>>(path) });
  const [text, setText] = useState<string | null>(null);
  const save = useMutation({
    mutationFn: () => api<Record<string, unknown>>('PATCH', path, JSON.parse(text ?? '{}')),
    onSuccess: (r) => {
      qc.setQueryData(['settings', path], r);
      setText(null);
    },
  });
  const shown = text ?? JSON.stringify(q.data ?? {}, null, 2);
  return (
    <Section title={title}>
      <Field label={`${title} (JSON)`} hint={hint}>
        <textarea rows={12} value={shown} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      </Field>
      <button onClick={() => save.mutate()} disabled={text === null}>
        Save
      </button>
      <ErrorBox error={q.error ?? save.error} />
    </Section>
  );
}

function TwilioCredentials() {
  const qc = useQueryClient();
  const q = useQuery({ queryKey: ['twilio-credentials'], queryFn: () => get<{ account_sid: string; auth_token: string; mode: string }>('/v1/twilio/credentials') });
  const [show, setShow] = useState(false);
  const rotate = useMutation({ mutationFn: () => api('POST', '/v1/twilio/credentials', { rotate: true }), onSuccess: (r) => qc.setQueryData(['twilio-credentials'], r) });
  return (
    <Section title="Twilio-compatible credentials">
      <ErrorBox error={q.error ?? rotate.error} />
      {q.data ? (
        <dl className="facts">
          <dt>Account SID</dt>
          <dd>{q.data.account_sid}</dd>
          <dt>Auth token</dt>
          <dd className="secret">{show ? q.data.auth_token : '••••••••••••'}</dd>
          <dt>Mode</dt>
          <dd>{q.data.mode}</dd>
        </dl>
      ) : null}
      <div className="row-form">
        <button className="secondary" onClick={() => setShow(!show)}>
          {show ? 'Hide' : 'Show'} the auth token
        </button>
        <button className="danger" onClick={() => rotate.mutate()}>
          Rotate the auth token
        </button>
      </div>
      <p className="muted">Point a Twilio SDK at this server’s /2010-04-01 with these.</p>
    </Section>
  );
}

function Audit() {
  const list = useQuery({ queryKey: ['audit'], queryFn: () => get<Page<Row>>('/v1/audit?limit=100'), refetchInterval: 10_000 });
  return (
    <Section title="Audit log">
      <ErrorBox error={list.error} />
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">IP</th>
            </tr>
          </thead>
          <tbody>
            {list.data?.data.map((e) => {
              const actor = e.actor as { type: string; id: string };
              const target = e.target as { type: string; id: string } | null;
              return (
                <tr key={e.id}>
                  <td>{String(e.seq)}</td>
                  <td>{when(e.at as string)}</td>
                  <td>
                    {actor.type} {actor.id}
                  </td>
                  <td>{String(e.action)}</td>
                  <td>{target ? `${target.type} ${target.id}` : ''}</td>
                  <td>{String(e.ip ?? '')}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </Section>
  );
}

const TABS = [
  { id: 'keys', label: 'API keys & OAuth', scope: 'admin' },
  { id: 'webhooks', label: 'Webhooks', scope: 'webhooks:manage' },
  { id: 'connectors', label: 'Connectors & senders', scope: 'connectors:manage' },
  { id: 'messaging', label: 'Quiet hours & keywords', scope: 'admin' },
  { id: 'data', label: 'Retention', scope: 'admin' },
  { id: 'twilio', label: 'Twilio credentials', scope: 'admin' },
  { id: 'audit', label: 'Audit log', scope: 'audit:read' },
];

export function SettingsPage() {
  const s = useSession();
  const tabs = TABS.filter((t) => can(s, t.scope));
  const [tab, setTab] = useState(tabs[0]?.id);
  if (!tabs.length) return <Empty>Your role has no settings to manage.</Empty>;
  return (
    <>
      <h1>Settings</h1>
      <div className="tabs" role="tablist" aria-label="Settings">
        {tabs.map((t) => (
          <button key={t.id} role="tab" aria-selected={tab === t.id} onClick={() => setTab(t.id)}>
            {t.label}
          </button>
        ))}
      </div>
      {tab === 'keys' ? (
        <>
          <Credentials kind="keys" />
          <Credentials kind="clients" />
        </>
      ) : null}
      {tab === 'webhooks' ? <Webhooks /> : null}
      {tab === 'connectors' ? <Connectors /> : null}
      {tab === 'messaging' ? <JsonSettings title="Messaging settings" path="/v1/settings/messaging" hint="Keyword texts (help, stop, start), quiet hours and country rules" /> : null}
      {tab === 'data' ? <JsonSettings title="Data settings" path="/v1/settings" hint="body_retention_days, mask_phone_numbers, status_callback_include_body" /> : null}
      {tab === 'twilio' ? <TwilioCredentials /> : null}
      {tab === 'audit' ? <Audit /> : null}
    </>
  );
}
