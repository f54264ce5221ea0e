export function ContactsPage(_props: Record<string, unknown>) {
  return <h1>Contacts</h1>;
}
export function ContactPage(_p: { id: string }) { return <h1>Contact</h1>; }
