import type { Command } from 'commander';
import type { CaptureJobView } from '../server/routes/functions.js';
import { type ConnectionOptions, withApi } from './lazy-api.js';
import { print } from './output.js';

type Options = ConnectionOptions & Record<string, string | boolean | undefined>;

const FUNCTION = 'capture-on-alert';

/** `tripcap function …`: the capture-on-alert function's keys and what it did with each alert. */
export function registerFunctionCommands(program: Command, connectionOptions: (cmd: Command) => Command) {
  const fn = program.command('function').description(`The ${FUNCTION} function: its keys and its jobs.`);
  const key = fn.command('key').description('Function keys (admin only): what action groups and Alertmanager send.');

  connectionOptions(
    key
      .command('create')
      .description('Create a function key; it is printed once, with the URL to give an action group.')
      .requiredOption('--name <name>', 'who will use it (e.g. the action group or Alertmanager receiver)'),
  ).action(async (o: Options) =>
    withApi(o, async (api) => {
      const { body } = await api.json<{ id: string; token: string }>('POST', '/tripcap/v1/tokens', {
        name: o.name,
        role: 'function',
      });
      process.stderr.write(
        `Created function key ${body.id}; it is shown only now. Webhook URL:\n  ${api.server}/api/${FUNCTION}?code=${body.token}\n`,
      );
      process.stdout.write(`${body.token}\n`);
    }),
  );
  connectionOptions(
    key
      .command('list')
      .description('List function keys (never their secrets).')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (o: Options) =>
    withApi(o, async (api) => {
      const { body } = await api.json<{
        value: Array<{ id: string; name: string; role: string; createdTime: string; revokedTime: string | null }>;
      }>('GET', '/tripcap/v1/tokens');
      const keys = body.value.filter((t) => t.role === 'function');
      print(
        String(o.output),
        keys,
        keys.map((k) => ({ Id: k.id, Name: k.name, Created: k.createdTime, Revoked: k.revokedTime ?? '' })),
      );
    }),
  );
  connectionOptions(
    key.command('revoke').description('Revoke a function key at once.').argument('<id>', 'key id'),
  ).action(async (id: string, o: Options) =>
    withApi(o, async (api) => {
      const { status } = await api.json('DELETE', `/tripcap/v1/tokens/${encodeURIComponent(id)}`);
      process.stderr.write(status === 204 ? `No active key ${id}.\n` : `Revoked ${id}.\n`);
    }),
  );

  connectionOptions(
    fn
      .command('jobs')
      .description('Alerts the function received and what came of each, newest first.')
      .option('--top <n>', 'how many', '50')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (o: Options) =>
    withApi(o, async (api) => {
      const { body } = await api.json<{ value: CaptureJobView[] }>(
        'GET',
        `/tripcap/v1/functions/${FUNCTION}/jobs?$top=${encodeURIComponent(String(o.top))}`,
      );
      print(
        String(o.output),
        body.value,
        body.value.map((j) => ({
          Received: j.receivedTime,
          Source: j.source,
          Alert: `${j.ruleName} (${j.condition})`,
          VM: j.vm?.split('/').pop() ?? '',
          Status: j.status,
          Capture: j.captureName ?? '',
          // Firings that kept the capture going, and why it ended (AlertQuiet, Resolved, MaxDuration, …).
          Extended: j.extensions || '',
          Ended: j.stopReason ?? '',
          Notified: j.notifications.map((n) => `${n.channel.split(':')[0]}:${n.status}`).join(', '),
          Note: j.message ?? j.reason ?? '',
          Times: j.deliveries,
        })),
      );
    }),
  );
}
