import type { ApiClient, ConnectionOptions } from './api-client.js';

export type { ApiClient, ConnectionOptions };

/** `withApi` of api-client.ts, loading the HTTP client only when a command calls the server. */
export async function withApi<T>(options: ConnectionOptions, fn: (api: ApiClient) => Promise<T>): Promise<T> {
  const { withApi: run } = await import('./api-client.js');
  return run(options, fn);
}
