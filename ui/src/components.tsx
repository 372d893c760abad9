import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError } from './api.js';

/** The API's refusal, as it said it: message, and the field it names (`target`) when it names one. */
export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e = error instanceof Error ? error : new Error(String(error));
  return (
    <div class="error" role="alert">
      {title ? <strong>{title}: </strong> : null}
      <span class="error-message">{e.message}</span>
      {e instanceof ApiError && e.target ? (
        <div class="error-target">
          field: <code>{e.target}</code>
        </div>
      ) : null}
      {e instanceof ApiError && e.code && e.status !== 0 ? <div class="error-code">{e.code}</div> : null}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

const TONES: Record<string, string> = {
  Connected: 'ok',
  Disconnected: 'bad',
  Running: 'busy',
  NotStarted: 'busy',
  Stopped: 'ok',
  Error: 'bad',
  Fired: 'bad',
  Resolved: 'ok',
  Succeeded: 'ok',
  Completed: 'ok',
  Failed: 'bad',
  Rejected: 'bad',
  Pending: 'busy',
  Sending: 'busy',
  Creating: 'busy',
  Capturing: 'busy',
  Notifying: 'busy',
  Enabled: 'ok',
  Disabled: 'muted',
};

export function Badge({ children, tone }: { children: string; tone?: string }) {
  return <span class={`badge ${tone ?? TONES[children] ?? 'muted'}`}>{children}</span>;
}

export function Section({
  title,
  actions,
  children,
  id,
}: {
  title: string;
  actions?: ComponentChildren;
  children: ComponentChildren;
  id?: string;
}) {
  return (
    <section class="section" id={id}>
      <header class="section-head">
        <h2>{title}</h2>
        {actions ? <div class="section-actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** A bar from 0 to 1, with what it measures said in words next to it. */
export function Progress({ value, label }: { value: number; label: string }) {
  const pct = Math.max(0, Math.min(1, value)) * 100;
  return (
    <div class="progress" title={label}>
      <progress max={100} value={pct} aria-label={label} />
      <span class="progress-label">{label}</span>
    </div>
  );
}

export function Json({ value, summary }: { value: unknown; summary: string }) {
  return (
    <details class="json">
      <summary>{summary}</summary>
      <pre>{JSON.stringify(value, null, 2)}</pre>
    </details>
  );
}

/** A button that runs an async action, shows it is busy, and reports a failure next to itself. */
export function ActionButton({
  onClick,
  children,
  confirm,
  kind,
  action,
  title,
}: {
  onClick: () => Promise<unknown>;
  children: ComponentChildren;
  confirm?: string;
  kind?: 'danger' | 'primary';
  /** data-action, what tests and people's scripts find it by */
  action: string;
  title?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <span class="action">
      <button
        type="button"
        class={kind ?? ''}
        data-action={action}
        disabled={busy}
        title={title}
        onClick={async () => {
          if (confirm && !window.confirm(confirm)) return;
          setBusy(true);
          setError(undefined);
          try {
            await onClick();
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        {busy ? '…' : children}
      </button>
      {error ? <ErrorBox error={error} /> : null}
    </span>
  );
}

export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: string }) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control comes in as children
    <label class="field">
      <span class="field-label">{label}</span>
      {children}
      {hint ? <span class="field-hint">{hint}</span> : null}
    </label>
  );
}
