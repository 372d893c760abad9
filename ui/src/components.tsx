import type { ComponentChildren, SelectHTMLAttributes } from 'preact';
import { useRef } from 'preact/hooks';
import { ApiError } from './api.js';
import { useAction } from './hooks.js';

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
  // The function could not capture for an alert: news at 2 AM too.
  LimitReached: 'bad',
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

/** A row of buttons of which one is chosen (a time range, a filter); the chosen one is pressed. */
export function Segmented<T extends string>({
  label,
  options,
  value,
  onChange,
}: {
  label: string;
  options: readonly T[];
  value: T;
  onChange: (value: T) => void;
}) {
  return (
    <fieldset class="segmented" aria-label={label}>
      {options.map((option) => (
        <button
          type="button"
          key={option}
          class={option === value ? 'active' : ''}
          aria-pressed={option === value}
          onClick={() => onChange(option)}
        >
          {option}
        </button>
      ))}
    </fieldset>
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
  const { run, busy, error } = useAction(onClick);
  return (
    <span class="action">
      <button
        type="button"
        class={kind ?? ''}
        data-action={action}
        disabled={busy}
        aria-busy={busy}
        title={title}
        onClick={() => {
          if (!confirm || window.confirm(confirm)) run();
        }}
      >
        {busy ? '…' : children}
      </button>
      <ErrorBox error={error} />
    </span>
  );
}

/**
 * Marks and focuses the control an API refusal names, when the form has one: `properties.windowSize` → windowSize,
 * `filters[0].localPort` → localPort0 (the form's name for the first filter's) or localPort.
 */
function markInvalid(form: HTMLFormElement, target: string) {
  const field = (target.split('.').at(-1) ?? '').replace(/\[\d+\]$/, '');
  const index = /\[(\d+)\][^[]*$/.exec(target)?.[1] ?? '';
  const control = [`${field}${index}`, field]
    .map((candidate) => form.querySelector<HTMLElement>(`[name="${CSS.escape(candidate)}"]`))
    .find(Boolean);
  control?.setAttribute('aria-invalid', 'true');
  control?.focus();
}

/**
 * A form that makes one API call: its submit button says it is busy, and the API's refusal (message, field, code)
 * shows above the buttons. Every form of the console is one.
 */
export function ApiForm({
  name,
  onSubmit,
  submit,
  busyLabel,
  action,
  errorTitle,
  disabled,
  onCancel,
  class: className = 'card form',
  children,
}: {
  /** data-form, what tests find it by */
  name: string;
  onSubmit: () => Promise<unknown>;
  submit: string;
  busyLabel: string;
  /** the submit button's data-action */
  action?: string;
  errorTitle?: string;
  disabled?: boolean;
  onCancel?: () => void;
  class?: string;
  children: ComponentChildren;
}) {
  const { run, busy, error } = useAction(async () => {
    try {
      await onSubmit();
    } catch (err) {
      if (err instanceof ApiError && err.target && formRef.current) markInvalid(formRef.current, err.target);
      throw err;
    }
  });
  const formRef = useRef<HTMLFormElement>(null);
  return (
    <form
      ref={formRef}
      class={className}
      data-form={name}
      onSubmit={(event) => {
        event.preventDefault();
        for (const control of event.currentTarget.querySelectorAll('[aria-invalid]')) {
          control.removeAttribute('aria-invalid');
        }
        if (!busy) run();
      }}
    >
      {children}
      <ErrorBox error={error} title={errorTitle} />
      <div class="form-actions">
        <button type="submit" class="primary" data-action={action} disabled={busy || disabled}>
          {busy ? busyLabel : submit}
        </button>
        {onCancel ? (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}

/** A table in a box that scrolls sideways on narrow screens; `head` are the column titles. */
export function Table({
  head,
  children,
  compact,
  ...attributes
}: {
  head: ComponentChildren[];
  children: ComponentChildren;
  compact?: boolean;
} & { [data: `data-${string}`]: string }) {
  return (
    <div class="table-wrap">
      <table class={compact ? 'table compact' : 'table'} {...attributes}>
        <thead>
          <tr>
            {head.map((title, i) => (
              <th key={i}>{title}</th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** One labelled fact in a `.facts` grid. */
export function Fact({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div>
      <span class="fact-label">{label}</span>
      {children}
    </div>
  );
}

/** A select whose options are values (shown as they are) or [value, words] pairs. */
export function Select({
  options,
  ...props
}: { options: ReadonlyArray<string | readonly [string, string]> } & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <select {...props}>
      {options.map((option) => {
        const [value, words] = typeof option === 'string' ? [option, option] : option;
        return (
          <option key={value} value={value}>
            {words}
          </option>
        );
      })}
    </select>
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
