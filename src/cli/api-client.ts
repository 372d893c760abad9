import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';

export interface ConnectionOptions {
  server?: string;
  token?: string;
  tokenFile?: string;
  ca?: string;
  dataDir?: string;
  subscription?: string;
}

/** A refusal from the API, carrying ARM's error code and message. */
export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Where the CLI finds the server: flags, then TRIPCAP_* variables, then the local data folder of `tripcap start`
 * (its admin token and self-signed certificate), so that commands on the server's own host need no settings.
 */
export function resolveConnection(options: ConnectionOptions) {
  const dataDir = options.dataDir ?? process.env.TRIPCAP_DATA_DIR ?? './data';
  const server = options.server ?? process.env.TRIPCAP_SERVER ?? 'https://localhost:8443';
  const tokenFile = options.tokenFile ?? process.env.TRIPCAP_TOKEN_FILE ?? join(dataDir, 'admin.token');
  const token =
    options.token ?? process.env.TRIPCAP_TOKEN ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '');
  if (!token) throw new Error(`No token: pass --token, set TRIPCAP_TOKEN, or run where ${tokenFile} exists.`);
  const caFile = options.ca ?? process.env.TRIPCAP_CA ?? join(dataDir, 'tls', 'cert.pem');
  const ca = existsSync(caFile) ? readFileSync(caFile) : undefined;
  const subscription = (
    options.subscription ??
    process.env.TRIPCAP_SUBSCRIPTION_ID ??
    '00000000-0000-0000-0000-000000000000'
  ).toLowerCase();
  return { server: server.replace(/\/+$/, ''), token, ca, subscription };
}

export function createApiClient(connection: ReturnType<typeof resolveConnection>) {
  const dispatcher = new Agent({ connect: connection.ca ? { ca: connection.ca } : {} });

  async function send(method: string, path: string, body?: unknown) {
    const url = path.startsWith('http') ? path : `${connection.server}${path}`;
    try {
      return await request(url, {
        method: method as 'GET',
        dispatcher,
        headers: {
          authorization: `Bearer ${connection.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new Error(`Cannot reach ${connection.server}: ${(err as Error).message}`);
    }
  }

  async function json<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T; headers: Record<string, unknown> }> {
    const response = await send(method, path, body);
    const text = await response.body.text();
    const parsed = text ? (JSON.parse(text) as T) : (undefined as T);
    if (response.statusCode >= 400) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiCallError(
        response.statusCode,
        error?.code ?? 'HttpError',
        error?.message ?? `HTTP ${response.statusCode}`,
      );
    }
    return { status: response.statusCode, body: parsed, headers: response.headers };
  }

  async function stream(path: string): Promise<{ body: Readable; headers: Record<string, unknown> }> {
    const response = await send('GET', path);
    if (response.statusCode >= 400) {
      const text = await response.body.text();
      let message = `HTTP ${response.statusCode}`;
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch {}
      throw new ApiCallError(response.statusCode, 'DownloadFailed', message);
    }
    return { body: response.body, headers: response.headers };
  }

  return {
    json,
    stream,
    server: connection.server,
    subscription: connection.subscription,
    close: () => dispatcher.close(),
  };
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** Runs a command's calls with a client for its connection options, and closes the client after. */
export async function withApi<T>(options: ConnectionOptions, fn: (api: ApiClient) => Promise<T>): Promise<T> {
  const api = createApiClient(resolveConnection(options));
  try {
    return await fn(api);
  } finally {
    await api.close();
  }
}
