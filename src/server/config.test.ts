import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServerConfig } from './config.js';

describe('server configuration', () => {
  it('takes flags over environment over file over defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tripcap-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({ port: 1001, agentTimeoutSeconds: 7, sessionsPerLocation: 3, host: '127.0.0.1' }),
    );
    const env = { TRIPCAP_PORT: '1002', TRIPCAP_AGENT_TIMEOUT_SECONDS: '8' };
    const config = loadServerConfig({ port: 1003 }, { configFile: file, env });
    expect(config.port).toBe(1003);
    expect(config.agentTimeoutSeconds).toBe(8);
    expect(config.sessionsPerLocation).toBe(3);
    expect(config.host).toBe('127.0.0.1');
    expect(config.storage).toBe('local');
    expect(config.dataDir).toBe(join(process.cwd(), 'data'));
  });

  it('names the setting that is wrong', () => {
    expect(() => loadServerConfig({}, { env: { TRIPCAP_PORT: 'eighty' } })).toThrow(/Invalid setting port/);
    expect(() => loadServerConfig({}, { env: { TRIPCAP_STORAGE: 'azure-blob' } })).toThrow(/CONNECTION_STRING/);
    expect(() => loadServerConfig({ tlsCert: '/x.pem' }, { env: {} })).toThrow(/tlsCert\/tlsKey/);
    const dir = mkdtempSync(join(tmpdir(), 'tripcap-config-'));
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ prot: 1 }));
    expect(() => loadServerConfig({}, { configFile: join(dir, 'c.json'), env: {} })).toThrow(/Invalid setting/);
  });

  it('accepts false for booleans given as text', () => {
    expect(loadServerConfig({}, { env: { TRIPCAP_INSECURE_HTTP: 'false' } }).insecureHttp).toBe(false);
    expect(loadServerConfig({}, { env: { TRIPCAP_INSECURE_HTTP: 'true' } }).insecureHttp).toBe(true);
  });

  it('reads the host metric retentions, with defaults of an hour and 30 days', () => {
    const defaults = loadServerConfig({}, { env: {} });
    expect([defaults.metricsRawRetentionMinutes, defaults.metricsRollupRetentionDays]).toEqual([60, 30]);
    const env = { TRIPCAP_METRICS_RAW_RETENTION_MINUTES: '15', TRIPCAP_METRICS_ROLLUP_RETENTION_DAYS: '90' };
    const config = loadServerConfig({}, { env });
    expect([config.metricsRawRetentionMinutes, config.metricsRollupRetentionDays]).toEqual([15, 90]);
    expect(() => loadServerConfig({}, { env: { TRIPCAP_METRICS_RAW_RETENTION_MINUTES: '0' } })).toThrow(
      /Invalid setting metricsRawRetentionMinutes/,
    );
  });
});
