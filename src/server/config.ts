import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/** A boolean that may come as text from the environment: 'true'/'1'/'yes' or 'false'/'0'/'no'. */
const flag = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  if (/^(true|1|yes)$/i.test(v)) return true;
  if (/^(false|0|no)$/i.test(v)) return false;
  return v;
}, z.boolean());

/** Server settings: flags override environment (TRIPCAP_*), which overrides the config file, which overrides defaults. */
export const serverConfigSchema = z
  .object({
    dataDir: z.string().min(1).default('./data'),
    host: z.string().min(1).default('0.0.0.0'),
    port: z.coerce.number().int().min(0).max(65535).default(8443),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    /** Plain HTTP, for a TLS-terminating proxy in front. Tokens then cross the wire in clear: never on an open network. */
    insecureHttp: flag.default(false),
    publicUrl: z.string().url().optional(),
    subscriptionId: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,64}$/)
      .default('00000000-0000-0000-0000-000000000000')
      .transform((s) => s.toLowerCase()),
    sessionsPerLocation: z.coerce.number().int().min(1).default(10_000),
    agentTimeoutSeconds: z.coerce.number().int().min(5).max(3600).default(30),
    storage: z.enum(['local', 'azure-blob']).default('local'),
    azureStorageConnectionString: z.string().optional(),
    azureStorageContainer: z.string().optional(),
    /** How long raw host metric samples (one a second) are kept, in minutes. */
    metricsRawRetentionMinutes: z.coerce.number().int().min(1).max(10_080).default(60),
    /** How long per-minute host metric rollups are kept, in days. */
    metricsRollupRetentionDays: z.coerce.number().int().min(1).max(3_650).default(30),
    /** Seconds after a window ends before it is evaluated: agents send samples every 5 s. */
    alertEvaluationDelaySeconds: z.coerce.number().int().min(0).max(300).default(7),
    /** Create the starter rule for this host's outbound traffic on first start. */
    starterRule: flag.default(true),
    /** SMTP for e-mail receivers; without smtpHost e-mail deliveries fail with a clear error. */
    smtpHost: z.string().optional(),
    smtpPort: z.coerce.number().int().min(1).max(65535).default(587),
    /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
    smtpSecure: flag.default(false),
    smtpUser: z.string().optional(),
    smtpPassword: z.string().optional(),
    smtpFrom: z.string().default('tripcap <tripcap@localhost>'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .strict();

export type ServerConfig = z.infer<typeof serverConfigSchema>;
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

const ENV: Record<string, keyof ServerConfigInput> = {
  TRIPCAP_DATA_DIR: 'dataDir',
  TRIPCAP_HOST: 'host',
  TRIPCAP_PORT: 'port',
  TRIPCAP_TLS_CERT: 'tlsCert',
  TRIPCAP_TLS_KEY: 'tlsKey',
  TRIPCAP_INSECURE_HTTP: 'insecureHttp',
  TRIPCAP_PUBLIC_URL: 'publicUrl',
  TRIPCAP_SUBSCRIPTION_ID: 'subscriptionId',
  TRIPCAP_SESSIONS_PER_LOCATION: 'sessionsPerLocation',
  TRIPCAP_AGENT_TIMEOUT_SECONDS: 'agentTimeoutSeconds',
  TRIPCAP_STORAGE: 'storage',
  TRIPCAP_AZURE_STORAGE_CONNECTION_STRING: 'azureStorageConnectionString',
  TRIPCAP_AZURE_STORAGE_CONTAINER: 'azureStorageContainer',
  TRIPCAP_METRICS_RAW_RETENTION_MINUTES: 'metricsRawRetentionMinutes',
  TRIPCAP_METRICS_ROLLUP_RETENTION_DAYS: 'metricsRollupRetentionDays',
  TRIPCAP_ALERT_EVALUATION_DELAY_SECONDS: 'alertEvaluationDelaySeconds',
  TRIPCAP_STARTER_RULE: 'starterRule',
  TRIPCAP_SMTP_HOST: 'smtpHost',
  TRIPCAP_SMTP_PORT: 'smtpPort',
  TRIPCAP_SMTP_SECURE: 'smtpSecure',
  TRIPCAP_SMTP_USER: 'smtpUser',
  TRIPCAP_SMTP_PASSWORD: 'smtpPassword',
  TRIPCAP_SMTP_FROM: 'smtpFrom',
  TRIPCAP_LOG_LEVEL: 'logLevel',
};

export function loadServerConfig(
  flags: Partial<ServerConfigInput>,
  options: { configFile?: string; env?: NodeJS.ProcessEnv } = {},
): ServerConfig {
  const env = options.env ?? process.env;
  const file = options.configFile ? (JSON.parse(readFileSync(options.configFile, 'utf8')) as object) : {};
  const fromEnv: Record<string, string> = {};
  for (const [name, key] of Object.entries(ENV)) {
    const value = env[name];
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const result = serverConfigSchema.safeParse({ ...file, ...fromEnv, ...defined });
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`Invalid setting ${issue?.path.join('.') || ''}: ${issue?.message ?? 'invalid'}`);
  }
  const config = result.data;
  if (config.storage === 'azure-blob' && !config.azureStorageConnectionString) {
    throw new Error('Invalid setting storage: azure-blob needs TRIPCAP_AZURE_STORAGE_CONNECTION_STRING.');
  }
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    throw new Error('Invalid setting tlsCert/tlsKey: give both the certificate and its key, or neither.');
  }
  return { ...config, dataDir: resolve(config.dataDir) };
}
