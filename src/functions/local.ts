import type { Database } from '../db/index.js';
import type { Logger } from '../lib/logger.js';
import type { EmailSender } from '../notify/email.js';
import type { PacketCaptureService } from '../watcher/service.js';
import { type CaptureFunctionSettings, createCaptureFunction, loadFunctionSettings } from './capture-function.js';
import { createLocalNetworkWatcher, listLocalVms } from './local-network-watcher.js';
import type { CaptureFunction } from './types.js';

/** capture-on-alert over tripcap's own capture service and VMs (the self-hosted deployment). */
export function createLocalCaptureFunction(options: {
  db: Database;
  captures: PacketCaptureService;
  logger: Logger;
  settings?: CaptureFunctionSettings;
  email?: EmailSender | null;
}): CaptureFunction {
  const watcher = createLocalNetworkWatcher(options.captures);
  return createCaptureFunction({
    db: options.db,
    watcher,
    logger: options.logger,
    settings: options.settings ?? loadFunctionSettings({}),
    email: options.email ?? null,
    listVms: () => listLocalVms(options.db),
    findings: watcher.findings,
  });
}
