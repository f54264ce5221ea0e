export function SettingsPage(_props: Record<string, unknown>) {
  return <h1>Settings</h1>;
}
