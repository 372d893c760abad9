import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';
import {
  FILE_HEADERS,
  type FileReport,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type JobsResponse,
  type MetricsBatchRequest,
  type MetricsBatchResponse,
  AGENT_PROTOCOL_PREFIX as P,
  type RegisterRequest,
  type RegisterResponse,
  type StatusReport,
} from '../watcher/agent-protocol.js';

/** An answer from the server that is not a success; `status` 0 means it was not reached at all. */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ServerError';
  }

  /** Worth trying again later: unreachable, overloaded, or failing on its side. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

export interface AgentClientOptions {
  serverUrl: string;
  /** PEM of the CA (or self-signed certificate) the server's certificate must chain to. */
  ca?: string | Buffer;
}

export function createAgentClient(options: AgentClientOptions) {
  const base = options.serverUrl.replace(/\/+$/, '');
  const dispatcher: Dispatcher = new Agent({
    connect: options.ca ? { ca: options.ca } : {},
    keepAliveTimeout: 60_000,
    headersTimeout: 0, // the jobs long-poll waits up to a minute
    bodyTimeout: 0,
  });

  async function call<T>(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    token: string,
    body?: unknown,
    extra: { headers?: Record<string, string>; stream?: Readable; signal?: AbortSignal } = {},
  ): Promise<T> {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(`${base}${path}`, {
        method,
        dispatcher,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...extra.headers,
        },
        body: extra.stream ?? (body !== undefined ? JSON.stringify(body) : undefined),
        signal: extra.signal,
      });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new ServerError(0, 'Unreachable', `${base} is not reachable: ${(err as Error).message}`);
    }
    const text = await response.body.text();
    if (response.statusCode >= 400) {
      let code = 'HttpError';
      let message = text.slice(0, 500);
      try {
        const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
        code = parsed.error?.code ?? code;
        message = parsed.error?.message ?? message;
      } catch {}
      throw new ServerError(response.statusCode, code, `${method} ${path}: ${response.statusCode} ${code}: ${message}`);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  return {
    register: (enrollToken: string, body: RegisterRequest) =>
      call<RegisterResponse>('POST', `${P}/register`, enrollToken, body),
    heartbeat: (token: string, body: HeartbeatRequest) =>
      call<HeartbeatResponse>('POST', `${P}/heartbeat`, token, body),
    metrics: (token: string, body: MetricsBatchRequest) =>
      call<MetricsBatchResponse>('POST', `${P}/metrics`, token, body),
    jobs: (token: string, waitSeconds: number, signal?: AbortSignal) =>
      call<JobsResponse>('GET', `${P}/jobs?wait=${waitSeconds}`, token, undefined, signal ? { signal } : {}),
    status: (token: string, jobId: string, report: StatusReport) =>
      call<{ stop: boolean }>('POST', `${P}/captures/${jobId}/status`, token, report),
    upload: (token: string, jobId: string, file: FileReport & { path: string }) => {
      const headers: Record<string, string> = {
        'content-type': 'application/octet-stream',
        'content-length': String(file.size),
        [FILE_HEADERS.sha256]: file.sha256,
        [FILE_HEADERS.packets]: String(file.packets),
        [FILE_HEADERS.kernelDrops]: String(file.kernelDrops),
      };
      if (file.firstPacketTime) headers[FILE_HEADERS.firstPacketTime] = file.firstPacketTime;
      if (file.lastPacketTime) headers[FILE_HEADERS.lastPacketTime] = file.lastPacketTime;
      if (file.localPath) headers[FILE_HEADERS.localPath] = file.localPath;
      return call<{ blobName: string }>('PUT', `${P}/captures/${jobId}/files/${file.seq}`, token, undefined, {
        headers,
        stream: createReadStream(file.path),
      });
    },
    close: () => dispatcher.close(),
  };
}

export type AgentClient = ReturnType<typeof createAgentClient>;
