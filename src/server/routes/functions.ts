import type { FastifyInstance } from 'fastify';
import type { Selectable } from 'kysely';
import type { CaptureJobsTable, Database } from '../../db/index.js';
import type { CaptureFunction, CaptureState, WatcherRef } from '../../functions/types.js';
import { badRequest } from '../../lib/errors.js';
import { describeRefusal } from '../app.js';

/** Azure Functions refuses larger bodies from action groups too; an alert is a few kB. */
export const FUNCTION_BODY_LIMIT = 256 * 1024;

/**
 * `POST /api/{function}` with a function key (`code` query or `x-functions-key` header), as an Azure Function's
 * HTTP trigger with authLevel function; and the record of what the function did with each alert.
 */
export function registerFunctionRoutes(
  app: FastifyInstance,
  { db, captureFunction }: { db: Database; captureFunction: { name: string; fn: CaptureFunction } },
) {
  const { name, fn } = captureFunction;
  app.post(`/api/${name}`, {
    config: { permission: 'function:invoke' },
    bodyLimit: FUNCTION_BODY_LIMIT,
    // Refusals before the handler (too large, not JSON) are recorded like any other delivery, then answered.
    errorHandler: async (err: Error & { statusCode?: number; code?: string }, request, reply) => {
      if (!err.statusCode || err.statusCode >= 500) throw err;
      const error = describeRefusal(err, request);
      await fn.recordRefusal(error);
      return reply.status(err.statusCode).send({ error });
    },
    handler: async (request, reply) => {
      const { status, body } = await fn.accept(request.body);
      return reply.status(status).send(body);
    },
  });

  app.get(`/tripcap/v1/functions/${name}/jobs`, { config: { permission: 'read' } }, async (request) => {
    const top = Number((request.query as Record<string, unknown>).$top ?? 50);
    if (!Number.isInteger(top) || top < 1 || top > 1000) {
      throw badRequest('InvalidTop', '$top must be a whole number from 1 to 1000.', '$top');
    }
    const rows = await db.selectFrom('capture_jobs').selectAll().orderBy('received_at', 'desc').limit(top).execute();
    return {
      value: rows.map(jobView),
    };
  });
}

/** A job as `GET …/jobs` shows it: an alert the function received and what it did (the CLI and console read it). */
export function jobView(r: Selectable<CaptureJobsTable>) {
  return {
    id: r.id,
    receivedTime: r.received_at,
    updatedTime: r.updated_at,
    source: r.source,
    // The Azure Monitor alert this job is for (common alert schema), so a console can join the two.
    alertId: /^azure:(.+):(?:fired|resolved)$/i.exec(r.dedup_key)?.[1] ?? null,
    condition: r.condition,
    ruleName: r.rule_name,
    vm: r.vm_id,
    status: r.status,
    reason: r.reason,
    message: r.message,
    deliveries: r.deliveries,
    captureName: r.capture_name,
    // The alert's life (docs/functions.md): firings that extended the capture, and why it ended.
    lastFiredTime: r.last_fired_at,
    resolvedTime: r.resolved_at,
    extensions: r.extensions,
    stopReason: r.stop_reason,
    captureJobId: r.capture_job_id,
    watcher: r.watcher ? (JSON.parse(r.watcher) as WatcherRef) : null,
    capture: r.capture ? (JSON.parse(r.capture) as CaptureState) : null,
    notifications: JSON.parse(r.notifications) as Array<{
      channel: string;
      status: string;
      time: string;
      error?: string;
    }>,
  };
}

export type CaptureJobView = ReturnType<typeof jobView>;
