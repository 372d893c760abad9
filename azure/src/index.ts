/**
 * The Azure Functions app (Node.js v4 programming model): `capture-on-alert` for action groups, and the
 * `capture-followup` timer that finishes the capture jobs an invocation left.
 */
import azureFunctions from '@azure/functions';
import type { CaptureFunction } from '../../src/functions/types.js';
import {
  createCaptureFollowupHandler,
  createCaptureFunctionFromEnv,
  createCaptureOnAlertHandler,
} from './capture-on-alert.js';

let captureFunction: Promise<CaptureFunction> | undefined;

/** Built once per worker process; a failed start (a bad App setting) is tried again on the next invocation. */
function getCaptureFunction(): Promise<CaptureFunction> {
  captureFunction ??= createCaptureFunctionFromEnv(process.env).catch((err: unknown) => {
    captureFunction = undefined;
    throw err;
  });
  return captureFunction;
}

// @azure/functions is CommonJS: its named exports are reached through the default export from ESM.
const { app } = azureFunctions;

app.http('capture-on-alert', {
  methods: ['POST'],
  authLevel: 'function',
  handler: createCaptureOnAlertHandler(getCaptureFunction),
});

app.timer('capture-followup', {
  schedule: '0 */1 * * * *',
  handler: createCaptureFollowupHandler(getCaptureFunction),
});

// When the host shuts the worker down, unfinished jobs stay on record for the next process's capture-followup.
app.hook.appTerminate(async () => {
  const running = captureFunction;
  captureFunction = undefined;
  if (running) await (await running).close();
});
