export function AnalyticsPage(_props: Record<string, unknown>) {
  return <h1>Analytics</h1>;
}
