import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Database } from '../db/index.js';
import { createLocalCaptureFunction } from '../functions/local.js';
import type { CaptureFunction } from '../functions/types.js';
import { ApiError } from '../lib/errors.js';
import { type Logger, redactUrl } from '../lib/logger.js';
import { createMetricsStore, type MetricsStore } from '../monitor/metrics-store.js';
import { createMonitor, type Monitor } from '../monitor/monitor.js';
import type { PacketCaptureService } from '../watcher/service.js';
import { registerAgentRoutes } from './routes/agent.js';
import { registerArmRoutes } from './routes/arm.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerFunctionRoutes } from './routes/functions.js';
import { registerMonitorRoutes } from './routes/monitor.js';
import { registerTokenRoutes } from './routes/tokens.js';
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
  /** Host metrics; by default a store over `db` with the default retentions. */
  metrics?: MetricsStore;
  /** Alert rules, action groups and alerts; by default over `db` and `metrics`, not started. */
  monitor?: Monitor;
  /** The capture-on-alert function and the name it is served under (`POST /api/{name}`); by default over `captures`. */
  captureFunction?: { name: string; fn: CaptureFunction };
  https?: { key: Buffer; cert: Buffer };
  /** Largest JSON body accepted, in bytes. */
  bodyLimit?: number;
  /** The web console's build folder (Vite's output); by default dist/ui. */
  consoleDir?: string;
}

/** A route as registered, with the permission its config demands. */
export interface RegisteredRoute {
  method: string;
  url: string;
  permission: Permission | 'public' | undefined;
}

const routeTables = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/** Every route (and method) an app built by buildApp registered, for audits such as the route-walking auth test. */
export function registeredRoutes(app: FastifyInstance): readonly RegisteredRoute[] {
  return routeTables.get(app) ?? [];
}

export async function buildApp(appOptions: AppOptions): Promise<FastifyInstance> {
  const metrics = appOptions.metrics ?? createMetricsStore({ db: appOptions.db });
  const options: AppOptions & { metrics: MetricsStore; monitor: Monitor } = {
    ...appOptions,
    metrics,
    monitor: appOptions.monitor ?? createMonitor({ db: appOptions.db, metrics, logger: appOptions.logger }),
  };
  const captureFunction = appOptions.captureFunction ?? {
    name: 'capture-on-alert',
    fn: createLocalCaptureFunction({ db: appOptions.db, captures: appOptions.captures, logger: appOptions.logger }),
  };
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

  const routes: RegisteredRoute[] = [];
  routeTables.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      routes.push({ method, url: route.url, permission: route.config?.permission });
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    const permission = request.routeOptions.config.permission;
    if (permission === 'public') return;
    // The scheme name is case-insensitive (RFC 9110 §11.1): 'bearer' is as good as 'Bearer'.
    const token =
      permission === 'function:invoke'
        ? functionKey(request)
        : (/^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.authorization ?? '')?.[1] ?? '');
    const principal = token ? await verifyToken(options.db, token) : null;
    if (!principal) {
      // A 401 names the scheme it wants (RFC 9110 §11.6.1, RFC 6750 §3).
      reply.header(
        'WWW-Authenticate',
        token ? 'Bearer realm="tripcap", error="invalid_token"' : 'Bearer realm="tripcap"',
      );
      throw new ApiError(
        401,
        'AuthenticationFailed',
        permission === 'function:invoke'
          ? "Authentication failed: send a valid function key as the 'code' query parameter or the 'x-functions-key' header (tripcap function key create)."
          : "Authentication failed: send 'Authorization: Bearer <token>' with a valid tripcap token.",
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
      return reply.status(err.statusCode).send({ error: describeRefusal(err, request) });
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

  // JSON only, but where a route says otherwise (the agent's raw uploads, in their own scope).
  app.removeContentTypeParser('text/plain');
  registerArmRoutes(app, options);
  registerMonitorRoutes(app, options);
  registerFunctionRoutes(app, { db: options.db, captureFunction });
  registerTokenRoutes(app, options);
  registerConsoleRoutes(app, {
    subscriptionId: options.subscriptionId,
    ...(options.consoleDir ? { dir: options.consoleDir } : {}),
  });
  await app.register(async (agentScope) => registerAgentRoutes(agentScope, options));
  return app;
}

/** A function key as Azure Functions takes it: the `x-functions-key` header or the `code` query parameter. */
function functionKey(request: FastifyRequest): string {
  const header = request.headers['x-functions-key'];
  if (typeof header === 'string' && header) return header.trim();
  const code = (request.query as Record<string, unknown>).code;
  return typeof code === 'string' ? code : '';
}

/** Fastify's refusals of a request body, told in ARM's terms and with what to do about them. */
export function describeRefusal(
  err: Error & { code?: string },
  request: FastifyRequest,
): { code: string; message: string } {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        code: 'RequestBodyTooLarge',
        message: `The request body is larger than ${request.routeOptions.bodyLimit} bytes, the most this route accepts.`,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = String(request.headers['content-type'] ?? '')
        .replace(/[^\x20-\x7e]/g, '?')
        .slice(0, 100);
      return {
        code: 'UnsupportedMediaType',
        message: `Content-Type '${type}' is not accepted here: send the body as JSON with 'Content-Type: application/json'.`,
      };
    }
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'InvalidRequestFormat', message: `${err.message}: send a JSON object.` };
    default:
      return { code: 'InvalidRequestFormat', message: err.message };
  }
}

/** The base URL clients reach this request at, for Location headers. */
export function requestBaseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

export type Reply = FastifyReply;
