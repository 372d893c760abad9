import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/** Paths that may carry secrets; pino replaces them before anything is written. */
const REDACT = [
  'req.headers.authorization',
  'req.headers["x-functions-key"]',
  'req.headers["x-ms-authorization-auxiliary"]',
  '*.token',
  '*.agentToken',
  '*.password',
  '*.smtpPassword',
  '*.connectionString',
  '*.accountKey',
];

export function createLogger(
  options: {
    level?: string;
    name?: string;
    /** Where lines go; stdout by default. */
    destination?: DestinationStream;
  } = {},
): Logger {
  const settings = {
    name: options.name ?? 'tripcap',
    level: options.level ?? process.env.TRIPCAP_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** Strips the `code` query (function keys) and any token-looking query from a logged URL. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:code|token|sig|key)=)[^&]*/gi, '$1[redacted]');
}
