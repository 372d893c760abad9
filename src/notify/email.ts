import nodemailer from 'nodemailer';

export interface EmailMessage {
  subject: string;
  text: string;
  html: string;
}

export interface EmailSender {
  send(to: string, message: EmailMessage): Promise<void>;
  close(): void;
}

export interface SmtpSenderOptions {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); false still upgrades with STARTTLS when the server offers it. */
  secure: boolean;
  user?: string;
  password?: string;
  /** The From address, e.g. `"tripcap" <alerts@example.com>`. */
  from: string;
  rejectUnauthorized?: boolean;
  /** Connect, greeting and socket timeouts; 10 s by default. */
  timeoutMs?: number;
}

export function createSmtpSender(options: SmtpSenderOptions): EmailSender {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const transport = nodemailer.createTransport({
    host: options.host,
    port: options.port,
    secure: options.secure,
    auth: options.user ? { user: options.user, pass: options.password ?? '' } : undefined,
    tls: { rejectUnauthorized: options.rejectUnauthorized ?? true },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  return {
    async send(to, message) {
      await transport.sendMail({ from: options.from, to, ...message });
    },
    close() {
      transport.close();
    },
  };
}

/** nodemailer's codes for a connection that failed or broke before the server answered. */
const CONNECTION_ERRORS = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET']);

/** Worth another try: the server could not be reached, or answered with a 4xx (transient) SMTP reply. */
export function isTransientSmtpError(err: unknown): boolean {
  const { code, responseCode } = (err ?? {}) as { code?: unknown; responseCode?: unknown };
  if (typeof responseCode === 'number') return responseCode >= 400 && responseCode < 500;
  return typeof code === 'string' && CONNECTION_ERRORS.has(code);
}
