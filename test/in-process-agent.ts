import { join } from 'node:path';
import { createAgent } from '../src/agent/agent.js';
import { createLogger } from '../src/lib/logger.js';
import type { RunningServer } from '../src/server/server.js';
import { poll } from './e2e/harness.js';

/**
 * An agent in this process, capturing on loopback, registered with `server` as VM `name`; resolves once the server
 * sees it connected. Returns its stop function (ends its captures and waits for its work).
 */
export async function startInProcessAgent(options: {
  server: RunningServer;
  adminToken: string;
  ca: Buffer;
  dir: string;
  subscriptionId: string;
  name: string;
  resourceGroup: string;
  location: string;
}): Promise<() => Promise<void>> {
  const { server, name } = options;
  const controller = new AbortController();
  const agent = createAgent({
    serverUrl: server.url,
    enrollToken: options.adminToken,
    name,
    resourceGroup: options.resourceGroup,
    location: options.location,
    stateDir: join(options.dir, 'agent'),
    captureRoot: join(options.dir, 'captures'),
    captureInterface: 'lo',
    ca: options.ca,
    heartbeatSeconds: 1,
    logger: createLogger({ level: 'warn', name: 'agent' }),
  });
  const running = agent.run(controller.signal);
  await poll(
    'the agent to register its VM',
    async () => {
      const vms = await server.captures.listVms(options.subscriptionId);
      return vms.find((vm) => vm.name === name && vm.properties.agent?.status === 'Connected');
    },
    { timeoutMs: 30_000 },
  );
  return async () => {
    controller.abort();
    await running;
  };
}
