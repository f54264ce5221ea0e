import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, get, type Page } from '../api.ts';
import { Link, navigate } from '../router.tsx';
import { can, useSession } from '../session.tsx';
import { Empty, ErrorBox, Field, Section, Status, when } from '../ui.tsx';

interface Stats {
  total: number;
  queued: number;
  sent: number;
  delivered: number;
  failed: number;
  failed_by_class: Record<string, number>;
  suppressed: number;
  expired: number;
  canceled: number;
  replies: number;
  clicks: number;
}
interface Campaign {
  id: string;
  name: string;
  status: string;
  body: string;
  channel: string;
  purpose: string;
  template_id: string | null;
  rate_per_minute: number | null;
  send_window: { start: string; end: string } | null;
  start_at: string | null;
  stats: Stats;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
}
interface Template {
  id: string;
  name: string;
  body: string;
  variables: string[];
}
interface Preview {
  body: string;
  encoding: string;
  segments: number;
  warnings: string[];
}
interface List {
  id: string;
  name: string;
}

function firstRow(csv: string): Record<string, string> {
  const [head, row] = csv.trim().split(/\r?\n/);
  if (!head || !row) return {};
  const keys = head.split(',').map((k) => k.trim());
  const vals = row.split(',');
  return Object.fromEntries(keys.map((k, i) => [k, (vals[i] ?? '').trim()]));
}

function NewCampaign() {
  const qc = useQueryClient();
  const templates = useQuery({ queryKey: ['templates'], queryFn: () => get<Page<Template>>('/v1/templates') });
  const lists = useQuery({ queryKey: ['lists'], queryFn: () => get<Page<List>>('/v1/lists') });
  const [f, setF] = useState({ name: '', template_id: '', body: '', audience: 'csv', list_id: '', csv: 'phone,first_name\n', start_at: '', rate: '', win_start: '', win_end: '', purpose: 'transactional' });
  const set = (k: keyof typeof f) => (e: { target: { value: string } }) => setF({ ...f, [k]: e.target.value });
  const sample = f.audience === 'csv' ? firstRow(f.csv) : {};
  const preview = useQuery({
    queryKey: ['preview', f.template_id, sample],
    queryFn: () => api<Preview>('POST', `/v1/templates/${f.template_id}/preview`, { variables: sample }),
    enabled: !!f.template_id,
    retry: false,
  });
  const create = useMutation({
    mutationFn: async () => {
      const c = await api<Campaign>('POST', '/v1/campaigns', {
        name: f.name,
        ...(f.template_id ? { template_id: f.template_id } : { body: f.body }),
        audience: f.audience === 'csv' ? { csv: f.csv } : { list_id: f.list_id },
        purpose: f.purpose,
        ...(f.start_at ? { start_at: new Date(f.start_at).toISOString() } : {}),
        ...(f.rate ? { rate_per_minute: Number(f.rate) } : {}),
        ...(f.win_start && f.win_end ? { send_window: { start: f.win_start, end: f.win_end } } : {}),
      });
      return c;
    },
    onSuccess: (c) => {
      void qc.invalidateQueries({ queryKey: ['campaigns'] });
      navigate(`/campaigns/${c.id}`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Section title="New campaign">
      <form className="stack" onSubmit={submit} aria-label="New campaign">
        <Field label="Name">
          <input required value={f.name} onChange={set('name')} />
        </Field>
        <Field label="Template">
          <select value={f.template_id} onChange={set('template_id')}>
            <option value="">(write the text here)</option>
            {templates.data?.data.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </Field>
        {f.template_id ? null : (
          <Field label="Text" hint="Liquid: {{ first_name }} takes the CSV column first_name">
            <textarea rows={3} value={f.body} onChange={set('body')} />
          </Field>
        )}
        {f.template_id ? (
          <div aria-live="polite" data-testid="preview">
            <ErrorBox error={preview.error} />
            {preview.data ? (
              <>
                <p className="preview">{preview.data.body}</p>
                <p className="muted">
                  {preview.data.encoding}, {preview.data.segments} segment{preview.data.segments === 1 ? '' : 's'}
                  {preview.data.warnings.length ? ` · ${preview.data.warnings.join('; ')}` : ''}
                </p>
              </>
            ) : null}
          </div>
        ) : null}
        <Field label="Audience">
          <select value={f.audience} onChange={set('audience')}>
            <option value="csv">Paste a CSV</option>
            <option value="list">A list</option>
          </select>
        </Field>
        {f.audience === 'csv' ? (
          <Field label="Recipients (CSV)" hint="A phone column; the other columns are template variables">
            <textarea rows={4} value={f.csv} onChange={set('csv')} />
          </Field>
        ) : (
          <Field label="List">
            <select value={f.list_id} onChange={set('list_id')}>
              <option value="">—</option>
              {lists.data?.data.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
            </select>
          </Field>
        )}
        <Field label="Purpose">
          <select value={f.purpose} onChange={set('purpose')}>
            <option value="transactional">transactional</option>
            <option value="marketing">marketing (needs opt-in)</option>
          </select>
        </Field>
        <Field label="Start at (empty: when started)">
          <input type="datetime-local" value={f.start_at} onChange={set('start_at')} />
        </Field>
        <Field label="Rate (messages per minute)">
          <input type="number" min={1} value={f.rate} onChange={set('rate')} />
        </Field>
        <div className="row-form">
          <Field label="Send window from">
            <input type="time" value={f.win_start} onChange={set('win_start')} />
          </Field>
          <Field label="to">
            <input type="time" value={f.win_end} onChange={set('win_end')} />
          </Field>
        </div>
        <ErrorBox error={create.error} />
        <button type="submit" disabled={create.isPending}>
          Create campaign
        </button>
      </form>
    </Section>
  );
}

export function CampaignsPage() {
  const s = useSession();
  const list = useQuery({ queryKey: ['campaigns'], queryFn: () => get<Page<Campaign>>('/v1/campaigns'), refetchInterval: 3000 });
  return (
    <>
      <h1>Campaigns</h1>
      {can(s, 'campaigns:send') ? <NewCampaign /> : null}
      <Section title="Campaigns">
        <ErrorBox error={list.error} />
        {list.data && list.data.data.length === 0 ? <Empty>No campaigns yet.</Empty> : null}
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Recipients</th>
                <th scope="col">Delivered</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.data?.data.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to={`/campaigns/${c.id}`}>{c.name}</Link>
                  </td>
                  <td>
                    <Status value={c.status} />
                  </td>
                  <td>{c.stats.total}</td>
                  <td>{c.stats.delivered}</td>
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

const STAT_LABELS: [keyof Stats, string][] = [
  ['total', 'Recipients'],
  ['queued', 'Waiting'],
  ['sent', 'Sent'],
  ['delivered', 'Delivered'],
  ['failed', 'Failed'],
  ['suppressed', 'Suppressed'],
  ['expired', 'Expired'],
  ['replies', 'Replies'],
  ['clicks', 'Clicks'],
];

export function CampaignPage({ id }: { id: string }) {
  const s = useSession();
  const qc = useQueryClient();
  const c = useQuery({ queryKey: ['campaign', id], queryFn: () => get<Campaign>(`/v1/campaigns/${encodeURIComponent(id)}`), // Receipts and replies keep arriving after the last message went out: a completed
    // campaign's numbers still move.
    refetchInterval: (q) => (q.state.data?.status === 'draft' ? 5000 : 1000),
  });
  const act = useMutation({
    mutationFn: (action: string) => api<Campaign>('POST', `/v1/campaigns/${encodeURIComponent(id)}/${action}`),
    onSuccess: (x) => qc.setQueryData(['campaign', id], x),
  });
  const d = c.data;
  const actions: Record<string, string[]> = { draft: ['start'], scheduled: ['cancel'], running: ['pause', 'cancel'], paused: ['resume', 'cancel'] };
  return (
    <>
      <p>
        <Link to="/campaigns">← Campaigns</Link>
      </p>
      <h1>{d?.name ?? 'Campaign'}</h1>
      <ErrorBox error={c.error} />
      {d ? (
        <>
          <Section
            title="Progress"
            actions={
              can(s, 'campaigns:send') ? (
                <div className="row-form">
                  {(actions[d.status] ?? []).map((a) => (
                    <button key={a} className={a === 'cancel' ? 'danger' : undefined} onClick={() => act.mutate(a)} disabled={act.isPending}>
                      {a[0].toUpperCase() + a.slice(1)}
                    </button>
                  ))}
                </div>
              ) : null
            }
          >
            <p>
              Status: <span data-testid="campaign-status"><Status value={d.status} /></span> · started {when(d.started_at)} · completed {when(d.completed_at)}
            </p>
            <ErrorBox error={act.error} />
            <div className="stats" aria-live="polite">
              {STAT_LABELS.map(([k, label]) => (
                <div className="stat" key={k} data-testid={`stat-${k}`}>
                  <b>{String(d.stats[k])}</b>
                  {label}
                </div>
              ))}
            </div>
            {Object.keys(d.stats.failed_by_class).length ? (
              <p>
                Failed by class:{' '}
                {Object.entries(d.stats.failed_by_class)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ')}
              </p>
            ) : null}
          </Section>
          <Section title="Content">
            <p className="preview">{d.body}</p>
            <p className="muted">
              {d.channel}, {d.purpose}
              {d.rate_per_minute ? `, ${d.rate_per_minute}/min` : ''}
              {d.send_window ? `, window ${d.send_window.start}–${d.send_window.end}` : ''}
            </p>
          </Section>
        </>
      ) : null}
    </>
  );
}
