import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, get, qs, type Page } from '../api.ts';
import { Link } from '../router.tsx';
import { can, useSession } from '../session.tsx';
import { Empty, ErrorBox, Field, Section, Status, when } from '../ui.tsx';

interface Contact {
  id: string;
  phone: string;
  name: string | null;
  time_zone: string | null;
  owner: string | null;
  tags: string[];
  custom_fields: Record<string, unknown>;
  created_at: string;
}
interface ConsentRecord {
  id: number;
  phone: string;
  status: string;
  purpose: string;
  channel: string;
  source: string;
  evidence: Record<string, unknown>;
  created_at: string;
}
interface Import {
  id: string;
  status: string;
  filename: string | null;
  progress: number | null;
  rows_processed: number;
  created: number;
  updated: number;
  failed: number;
  errors: { row: number; message: string }[];
}

export function ConsentPanel({ phone }: { phone: string }) {
  const s = useSession();
  const qc = useQueryClient();
  const consent = useQuery({ queryKey: ['consent', phone], queryFn: () => get<{ suppressed: boolean; data: ConsentRecord[] }>(`/v1/consent${qs({ phone })}`), refetchInterval: 5000 });
  const optOut = useMutation({
    mutationFn: () => api('POST', '/v1/consent', { phone, status: 'opted_out', source: 'manual', evidence: { note: `Opted out in the dashboard by ${s.user.email}` } }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ['consent', phone] }),
  });
  const latest = consent.data?.data[consent.data.data.length - 1];
  return (
    <Section title="Consent">
      <ErrorBox error={consent.error} />
      <p data-testid="consent-state">
        {consent.data ? consent.data.suppressed ? <Status value="opted_out" /> : latest ? <Status value={latest.status} /> : 'no record (transactional allowed)' : '…'}
      </p>
      <ol className="timeline" aria-label="Consent history">
        {consent.data?.data.map((r) => (
          <li key={r.id}>
            <Status value={r.status} /> {r.purpose}/{r.channel} by {r.source} · {when(r.created_at)}
            {Object.keys(r.evidence).length ? <pre>{JSON.stringify(r.evidence, null, 2)}</pre> : null}
          </li>
        ))}
      </ol>
      {can(s, 'consent:write') && !consent.data?.suppressed ? (
        <button className="danger" onClick={() => optOut.mutate()} disabled={optOut.isPending}>
          Opt out this number
        </button>
      ) : null}
      <ErrorBox error={optOut.error} />
    </Section>
  );
}

function ImportCsv() {
  const qc = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const imports = useQuery({ queryKey: ['imports'], queryFn: () => get<Page<Import>>('/v1/contacts/imports'), refetchInterval: (q) => (q.state.data?.data.some((i) => i.status === 'running') ? 500 : 5000) });
  const run = useMutation({
    mutationFn: async () => {
      const text = await file!.text();
      return api<Import>('POST', '/v1/contacts/import', text, { contentType: 'text/csv' });
    },
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: ['imports'] });
      void qc.invalidateQueries({ queryKey: ['contacts'] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (file) run.mutate();
  };
  return (
    <Section title="Import a CSV">
      <form onSubmit={submit} className="row-form" aria-label="Import contacts">
        <Field label="CSV file (a phone column, any others)">
          <input type="file" accept=".csv,text/csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </Field>
        <button type="submit" disabled={!file || run.isPending}>
          Import
        </button>
      </form>
      {run.isPending ? <progress aria-label="Import progress" /> : null}
      <ErrorBox error={run.error} />
      {run.data ? (
        <p role="status" data-testid="import-result">
          Import {run.data.status}: {run.data.created} created, {run.data.updated} updated, {run.data.failed} failed.
        </p>
      ) : null}
      <ul>
        {imports.data?.data.slice(0, 5).map((i) => (
          <li key={i.id}>
            {i.filename ?? 'CSV'}: <Status value={i.status} /> {i.progress !== null ? <progress max={100} value={i.progress} aria-label="progress" /> : null} {i.rows_processed} rows, {i.created} created, {i.updated} updated,{' '}
            {i.failed} failed
            {i.errors.length ? <span className="muted"> (first error: row {i.errors[0].row}: {i.errors[0].message})</span> : null}
          </li>
        ))}
      </ul>
    </Section>
  );
}

export function ContactsPage() {
  const s = useSession();
  const [phone, setPhone] = useState('');
  const [tag, setTag] = useState('');
  const params = { phone, tag, limit: 100 };
  const list = useQuery({ queryKey: ['contacts', params], queryFn: () => get<Page<Contact>>(`/v1/contacts${qs(params)}`) });
  return (
    <>
      <h1>Contacts</h1>
      {can(s, 'contacts:write') ? <ImportCsv /> : null}
      <Section title="Contacts">
        <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Search contacts">
          <Field label="Phone">
            <input type="search" value={phone} onChange={(e) => setPhone(e.target.value)} />
          </Field>
          <Field label="Tag">
            <input type="search" value={tag} onChange={(e) => setTag(e.target.value)} />
          </Field>
        </form>
        <ErrorBox error={list.error} />
        {list.data && list.data.data.length === 0 ? <Empty>No contacts match.</Empty> : null}
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Phone</th>
                <th scope="col">Name</th>
                <th scope="col">Tags</th>
                <th scope="col">Owner</th>
                <th scope="col">Added</th>
              </tr>
            </thead>
            <tbody>
              {list.data?.data.map((c) => (
                <tr key={c.id} data-testid="contact-row">
                  <td>
                    <Link to={`/contacts/${c.id}`}>{c.phone}</Link>
                  </td>
                  <td>{c.name ?? ''}</td>
                  <td>{c.tags.join(', ')}</td>
                  <td>{c.owner ?? ''}</td>
                  <td>{when(c.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
    </>
  );
}

export function ContactPage({ id }: { id: string }) {
  const s = useSession();
  const qc = useQueryClient();
  const contact = useQuery({ queryKey: ['contact', id], queryFn: () => get<Contact>(`/v1/contacts/${encodeURIComponent(id)}`) });
  const [edit, setEdit] = useState<{ name: string; tags: string; owner: string; time_zone: string } | null>(null);
  const save = useMutation({
    mutationFn: () =>
      api<Contact>('PATCH', `/v1/contacts/${encodeURIComponent(id)}`, {
        name: edit!.name || null,
        owner: edit!.owner || null,
        time_zone: edit!.time_zone || null,
        tags: edit!.tags
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
      }),
    onSuccess: (c) => {
      qc.setQueryData(['contact', id], c);
      setEdit(null);
    },
  });
  const c = contact.data;
  return (
    <>
      <p>
        <Link to="/contacts">← Contacts</Link>
      </p>
      <h1>{c ? (c.name ?? c.phone) : 'Contact'}</h1>
      <ErrorBox error={contact.error} />
      {c ? (
        <div className="grid2">
          <Section title="Details">
            {edit ? (
              <form
                className="stack"
                onSubmit={(e) => {
                  e.preventDefault();
                  save.mutate();
                }}
              >
                <Field label="Name">
                  <input value={edit.name} onChange={(e) => setEdit({ ...edit, name: e.target.value })} />
                </Field>
                <Field label="Tags" hint="Separated by commas">
                  <input value={edit.tags} onChange={(e) => setEdit({ ...edit, tags: e.target.value })} />
                </Field>
                <Field label="Owner" hint="user_… or team:name">
                  <input value={edit.owner} onChange={(e) => setEdit({ ...edit, owner: e.target.value })} />
                </Field>
                <Field label="Time zone">
                  <input value={edit.time_zone} onChange={(e) => setEdit({ ...edit, time_zone: e.target.value })} />
                </Field>
                <ErrorBox error={save.error} />
                <div className="row-form">
                  <button type="submit">Save</button>
                  <button type="button" className="secondary" onClick={() => setEdit(null)}>
                    Cancel
                  </button>
                </div>
              </form>
            ) : (
              <>
                <dl className="facts">
                  <dt>Phone</dt>
                  <dd>{c.phone}</dd>
                  <dt>Name</dt>
                  <dd data-testid="contact-name">{c.name ?? '—'}</dd>
                  <dt>Tags</dt>
                  <dd>{c.tags.join(', ') || '—'}</dd>
                  <dt>Owner</dt>
                  <dd>{c.owner ?? '—'}</dd>
                  <dt>Time zone</dt>
                  <dd>{c.time_zone ?? '—'}</dd>
                  {Object.entries(c.custom_fields).map(([k, v]) => (
                    <div key={k} style={{ display: 'contents' }}>
                      <dt>{k}</dt>
                      <dd>{String(v)}</dd>
                    </div>
                  ))}
                </dl>
                {can(s, 'contacts:write') ? (
                  <button onClick={() => setEdit({ name: c.name ?? '', tags: c.tags.join(', '), owner: c.owner ?? '', time_zone: c.time_zone ?? '' })}>Edit</button>
                ) : null}
              </>
            )}
          </Section>
          <ConsentPanel phone={c.phone} />
        </div>
      ) : null}
    </>
  );
}
