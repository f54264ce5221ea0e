export function InboxPage(_props: Record<string, unknown>) {
  return <h1>Inbox</h1>;
}
