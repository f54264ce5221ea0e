import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, get, setCsrf, type Session } from './api.ts';
import { Link, match, navigate, usePath } from './router.tsx';
import { can, SessionContext } from './session.tsx';
import { ErrorBox, Field } from './ui.tsx';
import { MessagesPage, MessagePage } from './pages/Messages.tsx';
import { InboxPage } from './pages/Inbox.tsx';
import { ContactsPage, ContactPage } from './pages/Contacts.tsx';
import { CampaignsPage, CampaignPage } from './pages/Campaigns.tsx';
import { ReviewPage } from './pages/Review.tsx';
import { WorkflowsPage } from './pages/Workflows.tsx';
import { SettingsPage } from './pages/Settings.tsx';
import { AnalyticsPage } from './pages/Analytics.tsx';

function SignIn() {
  const qc = useQueryClient();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needTotp, setNeedTotp] = useState(false);
  const signIn = useMutation({
    mutationFn: () => api<Session>('POST', '/v1/session', { email, password, ...(totp ? { totp } : {}) }),
    onSuccess: (s) => {
      setCsrf(s.csrf_token);
      qc.setQueryData(['session'], s);
    },
    onError: (e) => {
      if (e instanceof ApiError && e.details.totp_required) setNeedTotp(true);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    signIn.mutate();
  };
  return (
    <main className="signin">
      <h1>Switchboard</h1>
      <form onSubmit={submit} aria-label="Sign in">
        <Field label="Email">
          <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </Field>
        <Field label="Password">
          <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        {needTotp ? (
          <Field label="Authenticator code">
            <input inputMode="numeric" autoComplete="one-time-code" value={totp} onChange={(e) => setTotp(e.target.value)} />
          </Field>
        ) : null}
        <ErrorBox error={signIn.error} />
        <button type="submit" disabled={signIn.isPending}>
          Sign in
        </button>
      </form>
    </main>
  );
}

const NAV: { to: string; label: string; scope?: string }[] = [
  { to: '/messages', label: 'Messages' },
  { to: '/inbox', label: 'Inbox' },
  { to: '/contacts', label: 'Contacts' },
  { to: '/campaigns', label: 'Campaigns' },
  { to: '/review', label: 'Review' },
  { to: '/workflows', label: 'Workflows' },
  { to: '/analytics', label: 'Analytics' },
  { to: '/settings', label: 'Settings' },
];

function Page({ path }: { path: string }) {
  let m: Record<string, string> | null;
  if ((m = match('/messages/:id', path))) return <MessagePage id={m.id} />;
  if (path === '/inbox' || (m = match('/inbox/:id', path))) return <InboxPage id={m?.id} />;
  if ((m = match('/contacts/:id', path))) return <ContactPage id={m.id} />;
  if (path === '/contacts') return <ContactsPage />;
  if ((m = match('/campaigns/:id', path))) return <CampaignPage id={m.id} />;
  if (path === '/campaigns') return <CampaignsPage />;
  if (path === '/review') return <ReviewPage />;
  if (path.startsWith('/workflows')) return <WorkflowsPage path={path} />;
  if (path === '/analytics') return <AnalyticsPage />;
  if (path.startsWith('/settings')) return <SettingsPage />;
  return <MessagesPage />;
}

function Shell({ session }: { session: Session }) {
  const qc = useQueryClient();
  const path = usePath();
  const [menu, setMenu] = useState(false);
  const mode = useMutation({
    mutationFn: (m: 'live' | 'test') => api<Session>('PATCH', '/v1/session', { mode: m }),
    onSuccess: (s) => {
      setCsrf(s.csrf_token);
      // Everything else was read in the other mode; the session query keeps its observer.
      qc.removeQueries({ predicate: (q) => q.queryKey[0] !== 'session' });
      qc.setQueryData(['session'], s);
    },
  });
  const signOut = useMutation({
    mutationFn: () => api('DELETE', '/v1/session'),
    onSettled: () => {
      qc.removeQueries({ predicate: (q) => q.queryKey[0] !== 'session' });
      qc.setQueryData(['session'], null);
      navigate('/');
    },
  });
  const current = (to: string) => path === to || path.startsWith(`${to}/`) || (to === '/messages' && path === '/');
  return (
    <SessionContext.Provider value={session}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <strong className="brand">Switchboard</strong>
        <button className="menu-toggle" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>
          Menu
        </button>
        <nav id="nav" aria-label="Main" className={menu ? 'open' : ''}>
          {NAV.filter((n) => !n.scope || can(session, n.scope)).map((n) => (
            <Link key={n.to} to={n.to} aria-current={current(n.to) ? 'page' : undefined} onClick={() => setMenu(false)}>
              {n.label}
            </Link>
          ))}
        </nav>
        <div className="who">
          <span data-testid="who">
            {session.user.email} ({session.user.role})
          </span>
          <label className="mode">
            <span>Data</span>
            <select value={session.mode} onChange={(e) => mode.mutate(e.target.value as 'live' | 'test')} aria-label="Data mode">
              <option value="live">live</option>
              <option value="test">test</option>
            </select>
          </label>
          <button onClick={() => signOut.mutate()}>Sign out</button>
        </div>
        <ErrorBox error={mode.error} />
      </header>
      {session.mode === 'test' ? <p className="banner">Test mode: test data and the carrier simulator only.</p> : null}
      <main id="main" tabIndex={-1}>
        <Page path={path} />
      </main>
    </SessionContext.Provider>
  );
}

export function App() {
  const qc = useQueryClient();
  useEffect(() => {
    const out = () => qc.setQueryData(['session'], null);
    window.addEventListener('sb:signed-out', out);
    return () => window.removeEventListener('sb:signed-out', out);
  }, [qc]);
  const session = useQuery({
    queryKey: ['session'],
    queryFn: async () => {
      try {
        const s = await get<Session>('/v1/session');
        setCsrf(s.csrf_token);
        return s;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return null;
        throw e;
      }
    },
    refetchInterval: 60_000,
  });
  if (session.isPending) return <p className="loading">Loading…</p>;
  if (session.error) return <ErrorBox error={session.error} />;
  if (!session.data) return <SignIn />;
  return <Shell session={session.data} />;
}
