/**
 * capture-on-alert as an Azure Function: the same CaptureFunction as tripcap's server route, driving Azure's real
 * Network Watcher. index.ts registers these handlers; they are apart from it so that tests can call them.
 */

import type { HttpHandler, HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';
import { DefaultAzureCredential } from '@azure/identity';
import { createDatabase } from '../../src/db/index.js';
import { createAzureNetworkWatcher } from '../../src/functions/azure-network-watcher.js';
import { createCaptureFunction, loadFunctionSettings } from '../../src/functions/capture-function.js';
import type { CaptureFunction } from '../../src/functions/types.js';
import { errorMessage } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import { createSmtpSender, type EmailSender } from '../../src/notify/email.js';

/** Alert bodies are a few KB; Alertmanager groups are bounded too. Anything this large is not an alert. */
export const MAX_BODY_BYTES = 256 * 1024;

/** /home is persistent (and kept across restarts) on App Service plans; the jobs must survive a recycled worker. */
export const DEFAULT_DB_FILE = '/home/data/tripcap-capture-on-alert.db';

const armError = (status: number, code: string, message: string): HttpResponseInit => ({
  status,
  jsonBody: { error: { code, message } },
});

function smtpFromEnv(env: NodeJS.ProcessEnv): EmailSender | null {
  const host = env.TRIPCAP_SMTP_HOST;
  if (!host) return null;
  const port = Number(env.TRIPCAP_SMTP_PORT || 587);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`TRIPCAP_SMTP_PORT must be a port number, not '${String(env.TRIPCAP_SMTP_PORT).slice(0, 20)}'.`);
  }
  return createSmtpSender({
    host,
    port,
    secure: /^(1|true|yes)$/i.test(env.TRIPCAP_SMTP_SECURE ?? ''),
    user: env.TRIPCAP_SMTP_USER || undefined,
    password: env.TRIPCAP_SMTP_PASSWORD || undefined,
    from: env.TRIPCAP_SMTP_FROM || 'tripcap <tripcap@localhost>',
  });
}

/**
 * The CaptureFunction of the app, from its App settings: DefaultAzureCredential (the app's managed identity in
 * Azure), Azure's Network Watcher, the SQLite job file, the capture settings, SMTP. Throws a one-line Error naming
 * the setting that is missing or wrong.
 */
export async function createCaptureFunctionFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<CaptureFunction> {
  const subscriptionId = env.AZURE_SUBSCRIPTION_ID;
  if (!subscriptionId) throw new Error('AZURE_SUBSCRIPTION_ID is not set: the subscription of the VMs to capture.');
  const settings = loadFunctionSettings(env);
  const email = smtpFromEnv(env);
  const watcher = createAzureNetworkWatcher({
    credential: new DefaultAzureCredential(),
    subscriptionId,
    ...(env.TRIPCAP_ARM_ENDPOINT ? { endpoint: env.TRIPCAP_ARM_ENDPOINT } : {}),
  });
  const db = await createDatabase({ file: env.TRIPCAP_FUNCTION_DB || DEFAULT_DB_FILE });
  // pino writes to stdout, which the Functions host collects into the app's logs.
  const logger = createLogger({ name: 'capture-on-alert', level: env.TRIPCAP_LOG_LEVEL || 'info' });
  const captureFunction = createCaptureFunction({ db, watcher, logger, settings, email });
  return {
    ...captureFunction,
    // The database and SMTP connections are this app's: let them go after the function has stopped.
    close: async () => {
      await captureFunction.close();
      email?.close();
      await db.destroy();
    },
  };
}

/** Reads the body up to the limit: refuses a larger one without holding all of it. */
async function readBody(request: HttpRequest): Promise<Buffer | null> {
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES || !request.body) return declared > MAX_BODY_BYTES ? null : Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** POST /api/capture-on-alert: an alert payload of any source → the CaptureFunction's answer (202 or an ARM error). */
export function createCaptureOnAlertHandler(getFunction: () => Promise<CaptureFunction>): HttpHandler {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    /** A delivery refused before parsing is still recorded, so that every refusal is on record; best effort. */
    const refuse = async (status: number, code: string, message: string) => {
      try {
        await (await getFunction()).recordRefusal({ code, message });
      } catch (err) {
        context.warn(`capture-on-alert could not record a refusal (${code}): ${errorMessage(err)}`);
      }
      return armError(status, code, message);
    };

    const bytes = await readBody(request);
    if (!bytes) return refuse(413, 'RequestBodyTooLarge', `The body is larger than ${MAX_BODY_BYTES} bytes.`);
    let body: unknown;
    try {
      body = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      return refuse(400, 'InvalidRequestContent', `The body is not JSON: ${errorMessage(err)}`);
    }
    let captureFunction: CaptureFunction;
    try {
      captureFunction = await getFunction();
    } catch (err) {
      context.error(`capture-on-alert is not configured: ${errorMessage(err)}`);
      return armError(500, 'FunctionNotConfigured', errorMessage(err));
    }
    try {
      const answer = await captureFunction.accept(body);
      return { status: answer.status, jsonBody: answer.body };
    } catch (err) {
      // The delivery was not recorded (e.g. the database failed): a 5xx makes the action group retry it.
      context.error(`capture-on-alert could not record the alert: ${errorMessage(err)}`);
      return armError(500, 'InternalError', 'The alert could not be recorded; try again.');
    }
  };
}

/**
 * The timer that finishes what HTTP invocations started: Azure may freeze the process once an invocation has
 * answered, so the jobs an alert started are carried on here, inside an invocation, until none is left.
 */
export function createCaptureFollowupHandler(getFunction: () => Promise<CaptureFunction>) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const captureFunction = await getFunction();
    // Jobs still running in this process first, so that resume() does not start a second run of the same job.
    await captureFunction.idle();
    const resumed = await captureFunction.resume();
    if (resumed > 0) context.log(`capture-followup: carrying on with ${resumed} unfinished job(s)`);
    await captureFunction.idle();
  };
}
