import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { get, qs } from '../api.ts';
import { ErrorBox, Field, Section } from '../ui.tsx';

interface Analytics {
  buckets: { start: string; outbound: number; inbound: number; delivered: number; failed: number; delivery_rate: number | null }[];
  totals: { outbound: number; inbound: number; delivered: number; failed: number; opt_outs: number };
  failures_by_class: { error_class: string; count: number }[];
  failures_by_connector: { connector_id: string | null; count: number }[];
  delivery_rate: number | null;
  reply_rate: number | null;
  opt_out_rate: number | null;
}

const pct = (r: number | null) => (r === null ? '—' : `${(r * 100).toFixed(1)} %`);

export function AnalyticsPage() {
  const [range, setRange] = useState('7d');
  const days = range === '24h' ? 1 : range === '30d' ? 30 : 7;
  const bucket = days === 1 ? 'hour' : 'day';
  const params = { from: new Date(Date.now() - days * 86_400_000).toISOString(), bucket };
  const q = useQuery({ queryKey: ['analytics', range], queryFn: () => get<Analytics>(`/v1/analytics/messages${qs(params)}`), refetchInterval: 10_000 });
  const a = q.data;
  const label = (iso: string) => (bucket === 'hour' ? new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : new Date(iso).toLocaleDateString());
  const rows = a?.buckets.map((b) => ({ ...b, label: label(b.start), rate: b.delivery_rate === null ? null : Math.round(b.delivery_rate * 1000) / 10 })) ?? [];
  return (
    <>
      <h1>Analytics</h1>
      <Field label="Range">
        <select value={range} onChange={(e) => setRange(e.target.value)}>
          <option value="24h">Last 24 hours</option>
          <option value="7d">Last 7 days</option>
          <option value="30d">Last 30 days</option>
        </select>
      </Field>
      <ErrorBox error={q.error} />
      {a ? (
        <>
          <div className="stats" style={{ margin: '1rem 0' }}>
            <div className="stat">
              <b>{a.totals.outbound}</b>sent
            </div>
            <div className="stat">
              <b>{pct(a.delivery_rate)}</b>delivery rate
            </div>
            <div className="stat">
              <b>{pct(a.reply_rate)}</b>reply rate
            </div>
            <div className="stat">
              <b>{pct(a.opt_out_rate)}</b>opt-out rate
            </div>
          </div>
          <div className="grid2">
            <Section title="Volume">
              <div className="chart" role="img" aria-label="Messages sent, delivered, failed and received per period">
                <ResponsiveContainer>
                  <BarChart data={rows}>
                    <CartesianGrid strokeDasharray="3 3" />
                    <XAxis dataKey="label" />
                    <YAxis allowDecimals={false} />
                    <Tooltip />
                    <Legend />
                    <Bar dataKey="delivered" stackId="o" fill="#1a7f37" name="delivered" />
                    <Bar dataKey="failed" stackId="o" fill="#cf222e" name="failed" />
                    <Bar dataKey="inbound" fill="#0969da" name="received" />
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </Section>
            <Section title="Delivery rate">
              <div className="chart" role="img" aria-label="Delivery rate per period, in percent">
                <ResponsiveContainer>
                  <LineChart data={rows}>
                    <CartesianGrid strokeDasharray="3 3" />
                    <XAxis dataKey="label" />
                    <YAxis domain={[0, 100]} unit="%" />
                    <Tooltip />
                    <Line type="monotone" dataKey="rate" stroke="#1a7f37" name="delivery rate %" connectNulls />
                  </LineChart>
                </ResponsiveContainer>
              </div>
            </Section>
            <Section title="Failures by error class">
              <div className="chart" role="img" aria-label="Failed messages by error class">
                <ResponsiveContainer>
                  <BarChart data={a.failures_by_class} layout="vertical">
                    <XAxis type="number" allowDecimals={false} />
                    <YAxis type="category" dataKey="error_class" width={120} />
                    <Tooltip />
                    <Bar dataKey="count" fill="#cf222e" name="failed" />
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </Section>
            <Section title="Failures by connector">
              <div className="chart" role="img" aria-label="Failed messages by connector">
                <ResponsiveContainer>
                  <BarChart data={a.failures_by_connector.map((c) => ({ ...c, connector: c.connector_id ?? 'none' }))} layout="vertical">
                    <XAxis type="number" allowDecimals={false} />
                    <YAxis type="category" dataKey="connector" width={140} />
                    <Tooltip />
                    <Bar dataKey="count" fill="#bc4c00" name="failed" />
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </Section>
          </div>
        </>
      ) : null}
    </>
  );
}
