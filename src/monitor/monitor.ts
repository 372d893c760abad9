import type { Database } from '../db/index.js';
import type { Logger } from '../lib/logger.js';
import type { EmailSender } from '../notify/email.js';
import { createActionGroups } from './action-groups.js';
import { createAlertRules } from './alert-rules.js';
import { createAlertsView } from './alerts.js';
import { createEvaluator, type Evaluator } from './evaluator.js';
import type { MetricsStore } from './metrics-store.js';
import { createRuleTestFire } from './test-fire.js';

export interface MonitorOptions {
  db: Database;
  metrics: MetricsStore;
  logger: Logger;
  email?: EmailSender | null;
  /** See EvaluatorOptions.delayMs. */
  evaluationDelayMs?: number;
  retryDelaysMs?: number[];
  requestTimeoutMs?: number;
  trustedCa?: Buffer;
}

/** The alerting half of Azure Monitor: rules, their evaluator, alerts, and action groups that deliver. */
export function createMonitor(options: MonitorOptions) {
  const { db, logger } = options;
  const actionGroups = createActionGroups({
    db,
    logger,
    email: options.email ?? null,
    ...(options.retryDelaysMs ? { retryDelaysMs: options.retryDelaysMs } : {}),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    ...(options.trustedCa ? { trustedCa: options.trustedCa } : {}),
  });
  // The evaluator reloads its rules whenever one changes.
  let evaluator: Evaluator | undefined;
  const rules = createAlertRules({ db, onChange: () => evaluator?.invalidate() });
  evaluator = createEvaluator({
    db,
    metrics: options.metrics,
    rules,
    outbox: actionGroups,
    logger,
    ...(options.evaluationDelayMs !== undefined ? { delayMs: options.evaluationDelayMs } : {}),
  });
  const running = evaluator;
  return {
    rules,
    actionGroups,
    alerts: createAlertsView(db),
    testFire: createRuleTestFire({ db, rules, actionGroups }).testFire,
    evaluator: running,
    async start() {
      await actionGroups.start();
      running.start();
    },
    async stop() {
      await running.stop();
      await actionGroups.stop();
    },
  };
}

export type Monitor = ReturnType<typeof createMonitor>;
