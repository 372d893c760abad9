import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Database } from '../db/index.js';
import { ApiError } from '../lib/errors.js';
import { type Logger, redactUrl } from '../lib/logger.js';
import type { PacketCaptureService } from '../watcher/service.js';
import { registerAgentRoutes } from './routes/agent.js';
import { registerArmRoutes } from './routes/arm.js';
import { type Permission, type Principal, roleCan, verifyToken } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** What a caller must be allowed to do; a route without it is refused to everyone (fail closed). */
    permission?: Permission | 'public';
  }
}

export interface AppOptions {
  db: Database;
  captures: PacketCaptureService;
  logger: Logger;
  subscriptionId: string;
  https?: { key: Buffer; cert: Buffer };
  /** Largest JSON body accepted, in bytes. */
  bodyLimit?: number;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // ARM path segments compare case-insensitively (Microsoft.Network == microsoft.network).
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, maxParamLength: 500 },
    bodyLimit: options.bodyLimit ?? 1_048_576,
    // Our own onResponse hook logs one line per request (agent polling at debug level).
    logController: new LogController({ disableRequestLogging: true }),
    ...(options.https ? { https: options.https } : {}),
  });

  app.decorateRequest('principal', null);

  app.addHook('onRequest', async (request) => {
    const permission = request.routeOptions.config.permission;
    if (permission === 'public') return;
    const header = request.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    const principal = token ? await verifyToken(options.db, token) : null;
    if (!principal) {
      throw new ApiError(
        401,
        'AuthenticationFailed',
        "Authentication failed: send 'Authorization: Bearer <token>' with a valid tripcap token.",
      );
    }
    request.principal = principal;
    if (!permission && request.is404) return; // authenticated callers learn that a route does not exist
    if (!permission || !roleCan(principal.role, permission)) {
      throw new ApiError(
        403,
        'AuthorizationFailed',
        `The token '${principal.name}' (role ${principal.role}) may not ${request.method} ${request.routeOptions.url ?? 'this route'}.`,
      );
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    // Agents poll and heartbeat all day: their routine calls are debug noise, their failures are not.
    const routine = request.url.startsWith('/agent/') && reply.statusCode < 400;
    request.log[routine ? 'debug' : 'info'](
      {
        method: request.method,
        url: redactUrl(request.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, request, reply) => {
    if (err instanceof ApiError) return reply.status(err.status).send(err.toBody());
    if (err.statusCode && err.statusCode < 500) {
      // Fastify's own refusals: malformed JSON, body too large, unsupported media type.
      const code = err.statusCode === 413 ? 'RequestBodyTooLarge' : 'InvalidRequestFormat';
      return reply.status(err.statusCode).send({ error: { code, message: err.message } });
    }
    request.log.error({ err }, 'request failed');
    return reply
      .status(500)
      .send({ error: { code: 'InternalServerError', message: 'The server failed: see its log.' } });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({
      error: { code: 'NotFound', message: `No route for ${request.method} ${redactUrl(request.url).split('?')[0]}.` },
    });
  });

  app.get('/healthz', { config: { permission: 'public' } }, async () => ({ status: 'ok' }));

  registerArmRoutes(app, options);
  registerAgentRoutes(app, options);
  return app;
}

/** The base URL clients reach this request at, for Location headers. */
export function requestBaseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

export type Reply = FastifyReply;
