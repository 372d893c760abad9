/**
 * The Azure Functions handlers, called as the Functions host calls them: with @azure/functions' own HttpRequest and
 * InvocationContext. The HTTP handler answers with the real CaptureFunction (in-memory database, a Network Watcher
 * stub); the limits and the timer are checked against a recording CaptureFunction.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import azureFunctions, { type HttpResponseInit, type Timer } from '@azure/functions';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createDatabase } from '../../src/db/index.js';
import { createCaptureFunction, loadFunctionSettings } from '../../src/functions/capture-function.js';
import type { CaptureFunction, NetworkWatcherPort } from '../../src/functions/types.js';
import { createLogger } from '../../src/lib/logger.js';
import { fullCommon } from '../../test/alert-samples.js';
import {
  createCaptureFollowupHandler,
  createCaptureFunctionFromEnv,
  createCaptureOnAlertHandler,
  MAX_BODY_BYTES,
} from './capture-on-alert.js';

const { HttpRequest, InvocationContext } = azureFunctions;

const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';

/** Azure's common-schema sample, Fired, about a VM (the sample itself is Resolved, with placeholder ids). */
function firedAlert(): unknown {
  const body = structuredClone(fullCommon) as { data: { essentials: Record<string, unknown> } };
  Object.assign(body.data.essentials, {
    alertId: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/00000000-0000-4000-8000-000000000001`,
    monitorCondition: 'Fired',
    alertTargetIDs: [
      `/subscriptions/${SUBSCRIPTION}/resourcegroups/web-rg/providers/microsoft.compute/virtualmachines/web-1`,
    ],
    configurationItems: ['web-1'],
  });
  return body;
}

const TRIGGER_URL = 'https://tripcap-func.azurewebsites.net/api/capture-on-alert';

function post(body: string, headers: Record<string, string> = {}) {
  return new HttpRequest({
    method: 'POST',
    url: TRIGGER_URL,
    body: { string: body },
    headers: { 'content-type': 'application/json', ...headers },
  });
}

function context(logs: string[] = []) {
  return new InvocationContext({
    invocationId: 'test-invocation',
    functionName: 'capture-on-alert',
    logHandler: (level, ...args) => logs.push(`${level}: ${args.join(' ')}`),
  });
}

/** A CaptureFunction that records what it is asked and answers 202. */
function recordingFunction() {
  const calls: string[] = [];
  const bodies: unknown[] = [];
  const fn: CaptureFunction = {
    accept: async (body) => {
      calls.push('accept');
      bodies.push(body);
      return { status: 202, body: { accepted: true } };
    },
    recordRefusal: async (error) => {
      calls.push(`recordRefusal ${error.code}`);
    },
    resume: async () => {
      calls.push('resume');
      return 2;
    },
    idle: async () => {
      calls.push('idle');
    },
    close: async () => {
      calls.push('close');
    },
  };
  return { fn, calls, bodies };
}

/** A Network Watcher with the VM but no watcher in its location: jobs end quickly, with no call outside. */
const watcherStub: NetworkWatcherPort = {
  getVm: async (id) => ({ id, name: id.split('/').pop() ?? '', location: 'westeurope' }),
  findWatcher: async () => null,
  listCaptures: async () => [],
  createCapture: async () => {},
  getCapture: async () => {
    throw new Error('not expected');
  },
  stopCapture: async () => {},
};

describe('capture-on-alert (HTTP trigger)', () => {
  it("answers a valid alert with the CaptureFunction's own answer", async () => {
    const db = await createDatabase({ file: ':memory:' });
    const real = createCaptureFunction({
      db,
      watcher: watcherStub,
      logger: createLogger({ level: 'silent' }),
      settings: loadFunctionSettings({}),
    });
    const answers: Array<{ status: number; body: unknown }> = [];
    const spy: CaptureFunction = {
      ...real,
      accept: async (body) => {
        const answer = await real.accept(body);
        answers.push(answer);
        return answer;
      },
    };
    const handler = createCaptureOnAlertHandler(async () => spy);
    const response = (await handler(post(JSON.stringify(firedAlert())), context())) as HttpResponseInit;
    // A body refused before parsing is on record too.
    expect(((await handler(post('{oops'), context())) as HttpResponseInit).status).toBe(400);
    await real.idle();
    const refusals = await db
      .selectFrom('capture_jobs')
      .select(['status', 'reason'])
      .where('status', '=', 'Rejected')
      .execute();
    await db.destroy();
    expect(refusals).toEqual([{ status: 'Rejected', reason: 'InvalidRequestContent' }]);

    expect(answers).toHaveLength(1);
    expect(response.status).toBe(202);
    expect(response).toEqual({ status: answers[0]?.status, jsonBody: answers[0]?.body });
    expect(response.jsonBody).toMatchObject({ source: 'azure-common' });
  });

  it('refuses a body over 256 KB with 413, whether or not Content-Length says so', async () => {
    const { fn, calls } = recordingFunction();
    const handler = createCaptureOnAlertHandler(async () => fn);
    const big = JSON.stringify({ padding: 'x'.repeat(MAX_BODY_BYTES) });
    for (const request of [post(big), post(big, { 'content-length': String(Buffer.byteLength(big)) })]) {
      const response = (await handler(request, context())) as HttpResponseInit;
      expect(response).toEqual({
        status: 413,
        jsonBody: { error: { code: 'RequestBodyTooLarge', message: expect.stringContaining('262144 bytes') } },
      });
    }
    // Exactly at the limit is accepted.
    const fits = JSON.stringify({ padding: 'x'.repeat(MAX_BODY_BYTES - 20) });
    expect(Buffer.byteLength(fits)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    expect(((await handler(post(fits), context())) as HttpResponseInit).status).toBe(202);
    expect(calls).toEqual(['recordRefusal RequestBodyTooLarge', 'recordRefusal RequestBodyTooLarge', 'accept']);
  });

  it('refuses a body that is not JSON with 400 InvalidRequestContent', async () => {
    const { fn, calls } = recordingFunction();
    const handler = createCaptureOnAlertHandler(async () => fn);
    for (const text of ['{"schemaId": "azureMonitorCommonAlertSchema",', '', 'not json']) {
      const response = (await handler(post(text), context())) as HttpResponseInit;
      expect(response.status).toBe(400);
      expect(response.jsonBody).toMatchObject({
        error: { code: 'InvalidRequestContent', message: expect.stringMatching(/^The body is not JSON: /) },
      });
    }
    expect(calls).toEqual(Array(3).fill('recordRefusal InvalidRequestContent'));
  });

  it('passes the parsed body to accept()', async () => {
    const { fn, bodies } = recordingFunction();
    const handler = createCaptureOnAlertHandler(async () => fn);
    await handler(post('{"status":"firing","alerts":[]}'), context());
    expect(bodies).toEqual([{ status: 'firing', alerts: [] }]);
  });

  it('answers 500 InternalError (so that the action group retries) when accept() fails', async () => {
    const { fn } = recordingFunction();
    const logs: string[] = [];
    const failing: CaptureFunction = {
      ...fn,
      accept: async () => {
        throw new Error('SQLITE_IOERR: disk I/O error');
      },
    };
    const response = (await createCaptureOnAlertHandler(async () => failing)(
      post('{}'),
      context(logs),
    )) as HttpResponseInit;
    expect(response).toEqual({
      status: 500,
      jsonBody: { error: { code: 'InternalError', message: 'The alert could not be recorded; try again.' } },
    });
    expect(logs).toEqual(['error: capture-on-alert could not record the alert: SQLITE_IOERR: disk I/O error']);
  });

  it('still refuses a bad body when the function cannot start, and says the refusal was not recorded', async () => {
    const logs: string[] = [];
    const handler = createCaptureOnAlertHandler(() => createCaptureFunctionFromEnv({}));
    const response = (await handler(post('not json'), context(logs))) as HttpResponseInit;
    expect(response.status).toBe(400);
    expect(logs).toEqual([
      expect.stringMatching(
        /^warning: capture-on-alert could not record a refusal \(InvalidRequestContent\): AZURE_SUBSCRIPTION_ID/,
      ),
    ]);
  });

  it('answers 500 FunctionNotConfigured, naming the missing App setting, when the function cannot start', async () => {
    const logs: string[] = [];
    const handler = createCaptureOnAlertHandler(() => createCaptureFunctionFromEnv({}));
    const response = (await handler(post('{}'), context(logs))) as HttpResponseInit;
    expect(response).toEqual({
      status: 500,
      jsonBody: { error: { code: 'FunctionNotConfigured', message: expect.stringMatching(/^AZURE_SUBSCRIPTION_ID /) } },
    });
    expect(logs.join('\n')).toMatch(/^error: capture-on-alert is not configured: AZURE_SUBSCRIPTION_ID/);
  });
});

describe('capture-followup (timer trigger)', () => {
  const timer: Timer = {
    isPastDue: false,
    schedule: { adjustForDST: false },
    scheduleStatus: { last: '2026-11-29T10:00:00Z', next: '2026-11-29T10:01:00Z', lastUpdated: '2026-11-29T10:00:00Z' },
  };

  it("resumes the jobs left, after this process's own, and stays until they are done", async () => {
    const { fn, calls } = recordingFunction();
    const logs: string[] = [];
    await createCaptureFollowupHandler(async () => fn)(timer, context(logs));
    expect(calls).toEqual(['idle', 'resume', 'idle']);
    expect(logs).toEqual(['information: capture-followup: carrying on with 2 unfinished job(s)']);
  });
});

describe('the app', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('builds its CaptureFunction from App settings (SQLite file created, no Azure call)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tripcap-azure-app-'));
    const file = join(dir, 'data', 'jobs.db');
    const fn = await createCaptureFunctionFromEnv({
      AZURE_SUBSCRIPTION_ID: SUBSCRIPTION,
      TRIPCAP_FUNCTION_DB: file,
      TRIPCAP_LOG_LEVEL: 'silent',
    });
    expect(await fn.resume()).toBe(0);
    expect(existsSync(file)).toBe(true);
    await fn.close();
  });

  it('refuses a bad App setting with a one-line message', async () => {
    await expect(
      createCaptureFunctionFromEnv({ AZURE_SUBSCRIPTION_ID: 'x', TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: 'soon' }),
    ).rejects.toThrow(/^TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS must be/);
    await expect(
      createCaptureFunctionFromEnv({ AZURE_SUBSCRIPTION_ID: 'x', TRIPCAP_SMTP_HOST: 'smtp', TRIPCAP_SMTP_PORT: 'x' }),
    ).rejects.toThrow(/^TRIPCAP_SMTP_PORT must be a port number/);
  });

  it('registers capture-on-alert (POST, function key) and the one-minute capture-followup timer', async () => {
    const http = vi.fn();
    const timerRegistration = vi.fn();
    const appTerminate = vi.fn();
    vi.doMock('@azure/functions', () => ({
      default: { app: { http, timer: timerRegistration, hook: { appTerminate } } },
    }));
    await import('./index.js');
    vi.doUnmock('@azure/functions');
    expect(http).toHaveBeenCalledWith('capture-on-alert', {
      methods: ['POST'],
      authLevel: 'function',
      handler: expect.any(Function),
    });
    expect(timerRegistration).toHaveBeenCalledWith('capture-followup', {
      schedule: '0 */1 * * * *',
      handler: expect.any(Function),
    });
    expect(appTerminate).toHaveBeenCalledWith(expect.any(Function));
  });

  it("azure/package.json pins the same versions as tripcap's package.json", () => {
    const read = (path: string) =>
      JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
        dependencies: Record<string, string>;
        devDependencies: Record<string, string>;
      };
    const app = read('../package.json').dependencies;
    // @azure/functions is a devDependency of tripcap (only the app's tests need it there).
    const { dependencies, devDependencies } = read('../../package.json');
    const root = { ...devDependencies, ...dependencies };
    for (const [name, version] of Object.entries(app)) expect(`${name}@${version}`).toBe(`${name}@${root[name]}`);
  });
});
