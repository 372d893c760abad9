import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher, request } from 'undici';
import { deadline } from '../lib/time.js';
import { VERSION } from '../lib/version.js';

export interface PostJsonOptions {
  /** The whole exchange (connect, headers, body) must end within this time. */
  timeoutMs: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Connection settings, such as an extra trusted CA (see trustingCa). */
  dispatcher?: Dispatcher;
}

/** A request that got no HTTP answer (refused, reset, DNS, TLS, timeout). Its message never holds the URL's query. */
export class WebhookNetworkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookNetworkError';
  }
}

/** A dispatcher that trusts the usual CAs and `ca` too: a self-hosted server calling its own self-signed HTTPS URL. */
export function trustingCa(ca: Buffer): Dispatcher {
  return new Agent({ connect: { ca: [...rootCertificates, ca.toString('utf8')] } });
}

/** The URL without its query and fragment: query strings carry function keys and signatures. */
export function urlWithoutQuery(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * POSTs JSON and answers the HTTP status, whatever it is; throws WebhookNetworkError when no answer came.
 * `body` is sent as is when it is a string (already serialised JSON, so what is stored is what is sent), else as
 * JSON.stringify(body). Redirects are not followed.
 */
export async function postJson(url: string, body: unknown, options: PostJsonOptions): Promise<{ status: number }> {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  const limit = deadline(options.timeoutMs, options.signal);
  try {
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': `tripcap/${VERSION}`, ...options.headers },
      body: payload,
      signal: limit.signal,
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    });
    await response.body.dump();
    return { status: response.statusCode };
  } catch (err) {
    if (limit.timedOut()) throw new WebhookNetworkError(`no answer within ${options.timeoutMs} ms`);
    throw new WebhookNetworkError(describeNetworkError(err, url));
  } finally {
    limit.clear();
  }
}

function describeNetworkError(err: unknown, url: string): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = (cause as { code?: unknown })?.code;
  const text = cause instanceof Error ? cause.message : String(cause);
  const message = typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
  // Undici's messages name host and port, not the URL; strip the URL anyway in case a cause quotes it.
  return message.split(url).join(urlWithoutQuery(url));
}
