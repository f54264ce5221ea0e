export function WorkflowsPage(_props: Record<string, unknown>) {
  return <h1>Workflows</h1>;
}
