import { useQuery } from '@tanstack/react-query';
import { ApiError, get, type Page } from '../api.ts';
import { Link, match } from '../router.tsx';
import { Empty, ErrorBox, Section, Status, when } from '../ui.tsx';

interface Workflow {
  id: string;
  name: string;
  enabled?: boolean;
  version?: number;
  trigger?: { event?: string };
  created_at?: string;
}
interface Run {
  id: string;
  status: string;
  workflow_id: string;
  version: number;
  contact_id: string | null;
  created_at?: string;
  steps?: { id: string; type: string; status: string; started_at: string | null; finished_at: string | null; message_id?: string | null }[];
}

/** The workflows API may not be there yet (another part of the platform): a 404 is an empty state. */
async function orEmpty<T>(path: string): Promise<Page<T>> {
  try {
    return await get<Page<T>>(path);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return { data: [] };
    throw e;
  }
}

function RunPage({ id }: { id: string }) {
  const q = useQuery({ queryKey: ['run', id], queryFn: () => get<Run>(`/v1/runs/${encodeURIComponent(id)}`), refetchInterval: 2000 });
  const r = q.data;
  return (
    <>
      <p>
        <Link to={r ? `/workflows/${r.workflow_id}` : '/workflows'}>← Runs</Link>
      </p>
      <h1>Run {id}</h1>
      <ErrorBox error={q.error} />
      {r ? (
        <Section title="Path">
          <p>
            <Status value={r.status} /> · version {r.version} · contact {r.contact_id ? <Link to={`/contacts/${r.contact_id}`}>{r.contact_id}</Link> : '—'}
          </p>
          <ol className="timeline">
            {r.steps?.map((s) => (
              <li key={s.id}>
                <strong>{s.id}</strong> ({s.type}) <Status value={s.status} /> {when(s.started_at)} → {when(s.finished_at)}
                {s.message_id ? (
                  <>
                    {' '}
                    · <Link to={`/messages/${s.message_id}`}>message</Link>
                  </>
                ) : null}
              </li>
            ))}
          </ol>
        </Section>
      ) : null}
    </>
  );
}

function Runs({ id }: { id: string }) {
  const q = useQuery({ queryKey: ['workflow-runs', id], queryFn: () => orEmpty<Run>(`/v1/workflows/${encodeURIComponent(id)}/runs`), refetchInterval: 3000 });
  return (
    <>
      <p>
        <Link to="/workflows">← Workflows</Link>
      </p>
      <h1>Runs of {id}</h1>
      <ErrorBox error={q.error} />
      {q.data && q.data.data.length === 0 ? <Empty>No runs yet.</Empty> : null}
      <ul>
        {q.data?.data.map((r) => (
          <li key={r.id}>
            <Link to={`/workflows/runs/${r.id}`}>{r.id}</Link> <Status value={r.status} /> v{r.version} {when(r.created_at)}
          </li>
        ))}
      </ul>
    </>
  );
}

export function WorkflowsPage({ path }: { path: string }) {
  const run = match('/workflows/runs/:id', path);
  const wf = match('/workflows/:id', path);
  const q = useQuery({ queryKey: ['workflows'], queryFn: () => orEmpty<Workflow>('/v1/workflows'), enabled: !run && !wf });
  if (run) return <RunPage id={run.id} />;
  if (wf) return <Runs id={wf.id} />;
  return (
    <>
      <h1>Workflows</h1>
      <ErrorBox error={q.error} />
      {q.data && q.data.data.length === 0 ? <Empty>No workflows yet. They are created through the API (POST /v1/workflows).</Empty> : null}
      <ul>
        {q.data?.data.map((w) => (
          <li key={w.id}>
            <Link to={`/workflows/${w.id}`}>{w.name}</Link> {w.enabled === false ? <Status value="disabled" /> : <Status value="enabled" />} {w.trigger?.event ? `on ${w.trigger.event}` : ''} {w.version ? `v${w.version}` : ''}
          </li>
        ))}
      </ul>
    </>
  );
}
