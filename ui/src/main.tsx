import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, type Me, request, setUnauthorizedHandler, storedToken, storeToken } from './api.js';
import { ApiForm, ErrorBox, Field } from './components.js';
import { useNow, useRoute } from './hooks.js';
import { ActionGroupsPage } from './pages/action-groups.js';
import { AlertsPage } from './pages/alerts.js';
import { CapturePage } from './pages/capture.js';
import { CapturesPage } from './pages/captures.js';
import { OverviewPage } from './pages/overview.js';
import { RulesPage } from './pages/rules.js';
import { type Session, SessionContext } from './session.js';
import './style.css';

async function whoAmI(token: string): Promise<Me> {
  const response = await request('GET', '/tripcap/v1/me', { token });
  return (await response.json()) as Me;
}

function SignIn({ onSignedIn, notice }: { onSignedIn: (me: Me, token: string) => void; notice?: string }) {
  const [token, setToken] = useState('');
  return (
    <main class="signin">
      <ApiForm
        class="card signin-card"
        name="signin"
        submit="Sign in"
        busyLabel="Signing in…"
        disabled={!token.trim()}
        onSubmit={async () => {
          const value = token.trim();
          onSignedIn(await whoAmI(value), value);
        }}
      >
        <h1 class="brand">
          <span class="brand-mark">⌁</span> tripcap
        </h1>
        <p class="muted">Alert-triggered packet capture. Sign in with a tripcap token.</p>
        {notice ? <div class="notice">{notice}</div> : null}
        <Field
          label="Token"
          hint="The token stays in this tab (session storage) and is sent only in the Authorization header."
        >
          <input
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            placeholder="tct_…"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </Field>
        <p class="field-hint">
          <code>tripcap start</code> printed the admin token; it is also in <code>data/admin.token</code>. Give people
          their own: <code>tripcap token create --name NAME --role reader</code>.
        </p>
      </ApiForm>
    </main>
  );
}

const NAV: Array<[string, string]> = [
  ['', 'Overview'],
  ['alerts', 'Alerts'],
  ['captures', 'Captures'],
  ['rules', 'Alert rules'],
  ['action-groups', 'Action groups'],
];

function Clock() {
  const now = useNow(1000);
  return (
    <span class="clock" title="All times on this console are UTC">
      {new Date(now).toISOString().slice(11, 19)} UTC
    </span>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const route = useRoute();
  const [page = '', ...rest] = route;
  let content = null;
  if (page === '') content = <OverviewPage />;
  else if (page === 'alerts') content = <AlertsPage />;
  else if (page === 'captures' && rest.length >= 3) {
    content = <CapturePage resourceGroup={rest[0] ?? ''} watcher={rest[1] ?? ''} name={rest[2] ?? ''} />;
  } else if (page === 'captures') {
    // "Capture now…" on a VM opens the form for that VM, also when the list is already shown.
    content = <CapturesPage key={rest[0] ?? ''} vm={rest[0]} />;
  } else if (page === 'rules') content = <RulesPage />;
  else if (page === 'action-groups') content = <ActionGroupsPage />;
  else content = <ErrorBox error={new Error(`No page '${page}'.`)} />;
  const current = page === 'captures' ? 'captures' : page;
  return (
    <SessionContext.Provider value={session}>
      <header class="topbar">
        <a class="brand" href="#/">
          <span class="brand-mark">⌁</span> tripcap
        </a>
        <nav class="nav">
          {NAV.map(([path, label]) => (
            <a href={`#/${path}`} class={current === path ? 'active' : ''} key={path}>
              {label}
            </a>
          ))}
        </nav>
        <div class="who">
          <Clock />
          <span class="user" title={session.me.permissions.join(', ')} data-role={session.me.role}>
            {session.me.name} · {session.me.role}
          </span>
          <button type="button" class="link" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main class="page">{content}</main>
    </SessionContext.Provider>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(Boolean(storedToken()));
  const [notice, setNotice] = useState<string>();

  useEffect(() => {
    setUnauthorizedHandler((message) => {
      storeToken(null);
      setMe(null);
      setNotice(`Signed out: ${message}`);
    });
    const token = storedToken();
    if (!token) return;
    whoAmI(token)
      .then(setMe)
      .catch((err: unknown) => {
        storeToken(null);
        if (err instanceof ApiError && err.status !== 0) setNotice(`Signed out: ${err.message}`);
      })
      .finally(() => setChecking(false));
  }, []);

  const session = useMemo<Session | null>(
    () =>
      me
        ? {
            me,
            sub: me.subscriptionId,
            can: (permission) => me.permissions.includes(permission),
          }
        : null,
    [me],
  );

  if (checking) return <main class="signin muted">Checking your session…</main>;
  if (!session) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(who, token) => {
          storeToken(token);
          setNotice(undefined);
          setMe(who);
        }}
      />
    );
  }
  return (
    <Shell
      session={session}
      onSignOut={() => {
        storeToken(null);
        setMe(null);
      }}
    />
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
