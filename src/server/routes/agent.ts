import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isValidName } from '../../lib/arm-id.js';
import { ApiError, badRequest } from '../../lib/errors.js';
import { hostMetric } from '../../monitor/host-metrics.js';
import type { MetricsStore } from '../../monitor/metrics-store.js';
import {
  FILE_HEADERS,
  type FileReport,
  type HeartbeatResponse,
  MAX_METRICS_BATCH,
  type MetricsBatchResponse,
  AGENT_PROTOCOL_PREFIX as P,
} from '../../watcher/agent-protocol.js';
import { hasControlCharacters } from '../../watcher/filters.js';
import type { AppOptions } from '../app.js';
import { createToken, revokeToken } from '../tokens.js';

const name = z.string().refine(isValidName, 'must be 1-90 letters, digits, _ - . ( )');
const ip = z
  .string()
  .max(64)
  .regex(/^[0-9a-fA-F.:]+$/);
const nics = z
  .array(
    z.object({
      name: z
        .string()
        .max(64)
        .regex(/^[A-Za-z0-9@._-]+$/),
      mac: z.string().max(32),
      ipAddresses: z.array(ip).max(64),
    }),
  )
  .max(64);
const isoTime = z
  .string()
  .max(40)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO-8601 time');
const preTrigger = z.object({
  requestedSeconds: z.number().int().min(0).max(86_400),
  from: isoTime,
  coveredFrom: isoTime.nullable(),
  coveredSeconds: z.number().min(0).max(86_400),
  packets: z.number().int().min(0),
  seam: z.enum(['matched', 'time', 'none']),
  message: z.string().max(500).optional(),
});
const progress = z.object({
  bytes: z.number().int().min(0),
  packets: z.number().int().min(0),
  preTrigger: preTrigger.optional(),
});
const errorCode = z.enum(['InternalError', 'AgentStopped', 'CaptureFailed', 'LocalFileFailed', 'StorageFailed']);
const fileReport = z.object({
  seq: z.number().int().min(1).max(100_000),
  size: z.number().int().min(0),
  packets: z.number().int().min(0),
  kernelDrops: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  firstPacketTime: isoTime.optional(),
  lastPacketTime: isoTime.optional(),
  localPath: z.string().max(1024).optional(),
});

/** How far ahead of the server's clock a sample's time may be. */
const MAX_CLOCK_AHEAD_MS = 10 * 60_000;

const metricsBatch = z.object({
  samples: z
    .array(
      z.object({
        time: isoTime,
        values: z
          .record(
            z.string().refine((n) => hostMetric(n) !== undefined, 'is not a host metric'),
            z.number().finite(),
          )
          .refine((v) => Object.keys(v).length <= 32, 'has too many metrics'),
      }),
    )
    .max(MAX_METRICS_BATCH),
});

const schemas = {
  register: z
    .object({
      name,
      resourceGroup: name,
      location: z.string().regex(/^[A-Za-z0-9]{1,40}$/),
      subscriptionId: z
        .string()
        .regex(/^[A-Za-z0-9-]{1,64}$/)
        .optional(),
      osType: z.enum(['Linux', 'Windows']),
      hostname: z.string().max(255),
      nics,
      captureRoot: z.string().max(1024),
      version: z.string().max(64),
    })
    .refine((body) => isCaptureRoot(body.osType, body.captureRoot), {
      path: ['captureRoot'],
      message: "must be an absolute folder ('/var/captures' on Linux, 'D:\\captures' on Windows) without '..'",
    }),
  heartbeat: z.object({
    running: z.array(z.string().uuid()).max(10_000),
    progress: z.record(z.string().uuid(), progress),
    nics: nics.optional(),
    flightRecorder: z
      .object({
        state: z.enum(['Running', 'Stopped']),
        stopReason: z.string().max(64).nullable(),
        message: z.string().max(500).nullable(),
        bytesOnDisk: z.number().int().min(0),
        files: z.number().int().min(0).max(100_000),
        oldestPacketTime: isoTime.nullable(),
        newestPacketTime: isoTime.nullable(),
      })
      .optional(),
  }),
  status: z.object({
    status: z.enum(['Running', 'Stopped', 'Error']),
    time: isoTime,
    stopReason: z
      .string()
      .max(64)
      .regex(/^[A-Za-z]+$/)
      .optional(),
    errors: z.array(errorCode).max(5).optional(),
    message: z.string().max(2000).optional(),
    progress: progress.optional(),
    localFiles: z.array(fileReport).max(10_000).optional(),
  }),
};

/** Local capture files are checked against this folder, so it must be an absolute path in the VM's own syntax. */
function isCaptureRoot(osType: 'Linux' | 'Windows', root: string): boolean {
  if (hasControlCharacters(root)) return false;
  const absolute = osType === 'Windows' ? /^[A-Za-z]:[\\/]/.test(root) : root.startsWith('/');
  return absolute && !root.split(osType === 'Windows' ? /[\\/]/ : '/').includes('..');
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw badRequest('InvalidRequestFormat', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

function jobIdOf(request: FastifyRequest): string {
  const jobId = (request.params as { jobId?: string }).jobId ?? '';
  if (!z.string().uuid().safeParse(jobId).success) throw badRequest('InvalidJobId', 'Job ids are UUIDs.');
  return jobId;
}

export function registerAgentRoutes(
  app: FastifyInstance,
  { captures, db, subscriptionId, metrics }: AppOptions & { metrics: MetricsStore },
) {
  const agentOnly = { config: { permission: 'agent' as const } };

  /** The agent behind the request's credential; every job route is scoped to it. */
  async function agentOf(request: FastifyRequest): Promise<string> {
    const agent = await captures.agentByToken(request.principal?.tokenId ?? '');
    if (!agent) throw new ApiError(403, 'AuthorizationFailed', 'This credential belongs to no agent: register again.');
    return agent.id;
  }

  // Uploads arrive as raw bytes and are streamed through to the blob store, never buffered whole.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.post(`${P}/register`, { config: { permission: 'agent:enroll' } }, async (request) => {
    const body = parse(schemas.register, request.body);
    return captures.registerAgent(
      body,
      subscriptionId,
      (agentId) => createToken(db, { name: `agent-${agentId}`, role: 'agent' }),
      (tokenId) => revokeToken(db, tokenId),
    );
  });

  app.post(`${P}/heartbeat`, agentOnly, async (request): Promise<HeartbeatResponse> => {
    const flightRecorder = await captures.heartbeat(await agentOf(request), parse(schemas.heartbeat, request.body));
    return { time: new Date().toISOString(), flightRecorder };
  });

  // An agent writes only its own VM's metrics: the VM comes from its credential, never from the body.
  app.post(`${P}/metrics`, agentOnly, async (request): Promise<MetricsBatchResponse> => {
    const agentId = await agentOf(request);
    const body = parse(metricsBatch, request.body);
    // A sample from the future would sit in the rollups past their retention: an agent clock that far off is refused.
    const latest = Date.now() + MAX_CLOCK_AHEAD_MS;
    const ahead = body.samples.findIndex((sample) => Date.parse(sample.time) > latest);
    if (ahead >= 0) {
      throw badRequest(
        'InvalidRequestFormat',
        `samples.${ahead}.time: ${body.samples[ahead]?.time} is more than 10 minutes ahead of the server's clock (${new Date().toISOString()}): set the host's clock (NTP).`,
      );
    }
    const agent = await db.selectFrom('agents').select('vm_key').where('id', '=', agentId).executeTakeFirstOrThrow();
    const samples = body.samples.map((s) => ({
      time: s.time,
      values: Object.fromEntries(Object.entries(s.values).map(([n, v]) => [hostMetric(n)?.name ?? n, v])),
    }));
    return { stored: await metrics.ingest(agent.vm_key, samples) };
  });

  app.get(`${P}/jobs`, agentOnly, async (request) => {
    const agentId = await agentOf(request);
    const wait = Math.min(Math.max(Number((request.query as { wait?: string }).wait ?? 25), 0), 55);
    const closed = new AbortController();
    request.raw.once('close', () => closed.abort());
    return { jobs: await captures.waitForJobs(agentId, wait * 1000, closed.signal) };
  });

  app.post(`${P}/captures/:jobId/status`, agentOnly, async (request) => {
    return captures.reportStatus(await agentOf(request), jobIdOf(request), parse(schemas.status, request.body));
  });

  app.put(
    `${P}/captures/:jobId/files/:seq`,
    { ...agentOnly, bodyLimit: Number.MAX_SAFE_INTEGER },
    async (request, reply) => {
      const agentId = await agentOf(request);
      const jobId = jobIdOf(request);
      if (request.headers['content-type'] !== 'application/octet-stream' || !request.headers['content-length']) {
        throw badRequest(
          'InvalidRequestFormat',
          'Upload capture files as application/octet-stream with a Content-Length.',
        );
      }
      const h = request.headers;
      const header = (key: string) => (typeof h[key] === 'string' ? (h[key] as string) : undefined);
      const report: FileReport = parse(fileReport, {
        seq: Number((request.params as { seq: string }).seq),
        size: Number(h['content-length'] ?? 0),
        packets: Number(header(FILE_HEADERS.packets) ?? 0),
        kernelDrops: Number(header(FILE_HEADERS.kernelDrops) ?? 0),
        sha256: header(FILE_HEADERS.sha256),
        firstPacketTime: header(FILE_HEADERS.firstPacketTime),
        lastPacketTime: header(FILE_HEADERS.lastPacketTime),
        localPath: header(FILE_HEADERS.localPath),
      });
      const result = await captures.uploadFile(
        agentId,
        jobId,
        report,
        request.body as NodeJS.ReadableStream & import('node:stream').Readable,
      );
      return reply.status(result.duplicate ? 200 : 201).send(result);
    },
  );
}
