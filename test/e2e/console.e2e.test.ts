import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSkipReason, sendUdp } from '../netns.js';
import { createE2eEnv, type E2eEnv, poll, RESOURCE_GROUP, SUBSCRIPTION, VM_ID, WATCHER_ID } from './harness.js';

/*
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against a real server and a real
 * agent in a network namespace: sign in → the VM's chart → create an action group (this server's capture function)
 * and a rule → real traffic from the VM fires it → the alert → its capture → the report → download the file, whose
 * SHA-256 matches → test fire the rule → the delivery log. Then: a capture started from the form, stopped and
 * deleted; a reader's session offers nothing it may not do; and every form shows the API's message for bad input. Any console error or page error fails the test. Screenshots at 1280×800 and 390 px wide go to
 * test/e2e/screenshots/ (git-ignored), or to TRIPCAP_SCREENSHOTS_DIR (docs/screenshots/ to refresh the docs' ones).
 * Needs root (namespaces, tcpdump) and /usr/bin/chromium (scripts/install-deps.sh --test installs it).
 */

const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SHOTS = process.env.TRIPCAP_SCREENSHOTS_DIR
  ? join(REPO, process.env.TRIPCAP_SCREENSHOTS_DIR)
  : join(REPO, 'test/e2e/screenshots');
const INSIGHTS = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Insights`;

function skipReason(): string | undefined {
  const netns = netnsSkipReason();
  if (netns) return netns;
  if (!existsSync(CHROMIUM)) {
    const reason = `needs ${CHROMIUM} (bash scripts/install-deps.sh --test)`;
    if (process.env.CI === 'true') throw new Error(`CI=true but this test ${reason}`);
    return reason;
  }
  return undefined;
}
const skip = skipReason();

/** A browser page that records every console error and page error. */
interface WatchedPage {
  page: Page;
  context: BrowserContext;
  errors: string[];
}

describe.skipIf(skip !== undefined)(`web console in chromium${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let env: E2eEnv;
  let browser: Browser;
  let captureName = '';

  beforeAll(async () => {
    // The capture-on-alert function's settings, read by the server (a child process) from its environment.
    // Quiet time 15 s: long enough for the test to fire the rule again while the capture runs, counted from the first
    // firing, even when the capture is slow to start on a busy machine (8 s was not, once in a full run).
    process.env.TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS = '15';
    process.env.TRIPCAP_CAPTURE_POLL_SECONDS = '1';
    await mkdir(SHOTS, { recursive: true });
    env = await createE2eEnv();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await env?.destroy();
  });

  async function open(options: { width?: number; height?: number } = {}): Promise<WatchedPage> {
    const context = await browser.newContext({
      viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
      // The server's certificate is the test's own self-signed one, for an IP address.
      ignoreHTTPSErrors: true,
      acceptDownloads: true,
      colorScheme: 'dark',
    });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
    // Confirmations ("Delete …?") are accepted, as the person clicking would.
    page.on('dialog', (dialog) => dialog.accept());
    return { page, context, errors };
  }

  async function signIn(page: Page, token: string) {
    const response = await page.goto(`${env.serverUrl}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.fill('input[name=token]', token);
    await page.click('form[data-form=signin] button[type=submit]');
    await page.waitForSelector('.topbar .user');
  }

  /** What the capture-on-alert function did with each alert, from the API. */
  const jobs = async () =>
    (
      await env.api.call<{
        value: Array<{
          id: string;
          ruleName: string;
          status: string;
          captureName: string | null;
          extensions: number;
          stopReason: string | null;
        }>;
      }>('GET', '/tripcap/v1/functions/capture-on-alert/jobs')
    ).body.value;

  const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });

  it('sign in → chart → rule → traffic fires it → alert → capture → report → download with matching SHA-256', async ({
    onTestFailed,
  }) => {
    onTestFailed(() => console.error(env.logs()));
    const { page, context, errors } = await open();
    try {
      // Sign in; the token is kept in sessionStorage, never in the URL.
      await signIn(page, env.adminToken);
      expect(page.url()).not.toContain(env.adminToken);
      expect(await page.evaluate("sessionStorage.getItem('tripcap.token')")).toBe(env.adminToken);
      expect(await page.textContent('.topbar .user')).toContain('admin');

      // Overview: the VM, connected, with its network chart (uPlot draws on a canvas).
      const card = page.locator('[data-vm="vm1"]');
      await card.locator('.badge', { hasText: 'Connected' }).waitFor();
      await card.locator('[data-chart="vm1 network in/out"] canvas').first().waitFor();

      // An action group whose receiver is this server's capture-on-alert function (the page makes the function key).
      await page.click('nav >> text=Action groups');
      await page.click('[data-action=new-action-group]');
      const groupForm = page.locator('form[data-form=action-group]');
      await groupForm.locator('input[name=name]').fill('capture');
      await groupForm.locator('select[name=receiverKind0]').selectOption('thisServer');
      await groupForm.locator('[data-action=save-action-group]').click();
      await page.locator('[data-action-group="capture"]').waitFor();

      // A rule: more than 1 MB out of vm1 in 10 s, checked every 10 s, telling that group.
      await page.click('nav >> text=Alert rules');
      await page.click('[data-action=new-rule]');
      const ruleForm = page.locator('form[data-form=rule]');
      await ruleForm.locator('input[name=name]').fill('outbound');
      await ruleForm.locator('input[name=threshold]').fill('1000000');
      await ruleForm.locator('select[name=windowSize]').selectOption('PT10S');
      await ruleForm.locator('select[name=evaluationFrequency]').selectOption('PT10S');
      await ruleForm.locator('input[name=actionGroup][value=capture]').check();
      expect(await ruleForm.locator('input[name=scope][value=vm1]').isChecked()).toBe(true);
      await ruleForm.locator('[data-action=save-rule]').click();
      const row = page.locator('[data-rule="outbound"]');
      await row.waitFor();
      // Disable and enable it again from the list.
      await row.locator('[data-action=disable-rule]').click();
      await row.locator('.badge', { hasText: 'Disabled' }).waitFor();
      await row.locator('[data-action=enable-rule]').click();
      await row.locator('.badge', { hasText: 'Enabled' }).waitFor();
      const rule = await env.api.call<{ properties: { enabled: boolean; windowSize: string; actions: unknown[] } }>(
        'GET',
        `${INSIGHTS}/metricAlerts/outbound?api-version=2018-03-01`,
      );
      expect(rule.body.properties).toMatchObject({ enabled: true, windowSize: 'PT10S' });
      expect(rule.body.properties.actions).toHaveLength(1);
      await shot(page, 'rules-1280');

      // Real traffic: about 1 MB/s of UDP from the VM to its peer for up to 40 s.
      const stop = new AbortController();
      const stream = sendUdp(env.vm, {
        to: env.peer.ip,
        port: 9,
        count: 40_000,
        size: 1000,
        intervalMs: 1,
        signal: stop.signal,
      }).catch(() => undefined);
      try {
        // The chart shows the traffic with the rule's threshold drawn (legend names the rule).
        await page.click('nav >> text=Overview');
        await card.locator('.u-legend', { hasText: 'outbound: Total Network Out' }).waitFor();
        await card.locator('[data-rate=out]', { hasText: 'Mbit/s' }).waitFor({ timeout: 30_000 });
        // One more 5-second sample, so that the picture shows the rise as a line, not a lone point.
        await page.waitForTimeout(5_500);
        await shot(page, 'overview-1280');

        // The alert fires; the function captures the VM; the alert links to its capture.
        await page.click('nav >> text=Alerts');
        const alert = page.locator('[data-alert-rule="outbound"][data-condition="Fired"]').first();
        await alert.waitFor({ timeout: 90_000 });
        // While it captures, a second firing (a test fire of the rule) extends the capture: the function records
        // it as Extended and the capturing job counts it.
        const capturing = await poll(
          'the function capturing vm1',
          async () => (await jobs()).find((j) => j.ruleName === 'outbound' && j.status === 'Capturing'),
          { timeoutMs: 30_000 },
        );
        const refire = await env.api.call('POST', `${INSIGHTS}/metricAlerts/outbound/testFire?api-version=2018-03-01`);
        expect(refire.status).toBe(202);
        const link = alert.locator('a.capture-link');
        await link.waitFor({ timeout: 30_000 });
        captureName = (await link.getAttribute('data-capture')) ?? '';
        expect(captureName).toMatch(/^alert-outbound-/);
        await alert.locator('[data-job-status=Completed]').waitFor({ timeout: 60_000 });
        // The alert's life as the function tells it: the firing that kept the capture going, and why it ended.
        const done = (await jobs()).find((j) => j.id === capturing.id);
        expect(done).toMatchObject({ captureName, extensions: 1 });
        expect(done?.stopReason).toMatch(/^(AlertQuiet|Resolved|MaxDuration|TotalBytesExceeded|StoppedElsewhere)$/);
        const life = alert.locator('[data-alert-life]');
        expect(await life.textContent()).toContain('Kept going by 1 more firing');
        expect(await life.locator('[data-stop-reason]').getAttribute('data-stop-reason')).toBe(done?.stopReason);
        // The re-fire is told with a link to the capture it joined.
        const extended = page.locator('[data-job] [data-job-status=Extended]');
        await extended.waitFor();
        expect(await extended.locator('a.capture-link').getAttribute('data-capture')).toBe(captureName);
        await shot(page, 'alerts-1280');
        await link.click();
      } finally {
        stop.abort();
        await stream;
      }

      // The capture and its report, with the alert's window and moment marked on the I/O chart.
      await page.locator(`[data-capture-page="${captureName}"]`).waitFor();
      await page.locator('[data-report-status=Succeeded]').waitFor({ timeout: 60_000 });
      await page.locator('[data-chart="capture I/O"] canvas').first().waitFor();
      expect(await page.getAttribute('[data-marks]', 'data-marks')).toBe('alert');
      expect(await page.textContent('[data-explanation]')).toContain(env.peer.ip);
      expect(await page.textContent('[data-talkers=out]')).toContain(env.peer.ip);
      expect(await page.locator('[data-conversations] tbody tr').count()).toBeGreaterThan(0);
      expect(await page.textContent('[data-protocols]')).toMatch(/udp/i);
      await shot(page, 'report-1280');
      await page.screenshot({ path: join(SHOTS, 'report-full-1280.png'), fullPage: true });

      // Download: the page checks the SHA-256 before saving; the saved file is the stored one.
      const status = await env.api.queryStatus(captureName);
      const file = status.files[0];
      expect(file?.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(await page.getAttribute('[data-file="1"] [data-sha256]', 'data-sha256')).toBe(file?.sha256);
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click(`[data-file="1"] [data-action=download]`),
      ]);
      const saved = await readFile((await download.path()) as string);
      expect(createHash('sha256').update(saved).digest('hex')).toBe(file?.sha256);
      expect(saved.length).toBe(file?.size);
      expect(download.suggestedFilename()).toMatch(/^packetcapture_.*\.cap$/);
      expect(await page.textContent('[data-download-result=ok]')).toContain('SHA-256 verified');

      // Test fire: the rule's action group calls the function again for vm1 (which it has just captured, so it
      // records the alert and, as it is cooling down, captures nothing); the job shows among the other jobs.
      await page.click('nav >> text=Alert rules');
      await page.locator('[data-rule="outbound"] [data-action=test-fire]').click();
      await page.locator('[data-notice=rules]', { hasText: 'queued for vm1' }).waitFor();
      await page.click('nav >> text=Alerts');
      const testJob = page.locator('[data-job]', { has: page.locator('[data-job-status=CoolingDown]') });
      await testJob.waitFor({ timeout: 30_000 });
      expect(await testJob.textContent()).toContain('outbound (Fired)');
      expect(await testJob.textContent()).toContain('azure-common');

      // The action group's delivery log: the alert's notification and the test fire's, each with its attempts.
      await page.click('nav >> text=Action groups');
      await page.locator('[data-action-group="capture"] button', { hasText: 'Delivery log' }).click();
      const log = page.locator('[data-deliveries="capture"] tbody tr');
      await log.nth(1).waitFor();
      expect(await log.count()).toBeGreaterThanOrEqual(2);
      expect(await page.textContent('[data-deliveries="capture"]')).toContain('Succeeded');
      // The function key in the receiver's URL is redacted in the log.
      expect(await page.textContent('[data-deliveries="capture"]')).not.toMatch(/code=tct_/);
      await shot(page, 'action-groups-1280');
      await page.click('nav >> text=Captures');
      await page.locator(`[data-capture="${captureName}"][data-status=Stopped]`).waitFor();
      await shot(page, 'captures-1280');

      // The same pages at phone width: nothing is wider than the screen but the tables, which scroll in their box.
      await page.setViewportSize({ width: 390, height: 844 });
      // Polled for a few seconds: the lists re-render as their polls answer. On failure, the message names the elements
      // that reach past the screen's edge.
      const fitsPhone = async (where: string) => {
        const overflow = async () => {
          const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
          if (width <= 390) return 'fits';
          const wide = await page.evaluate(`[...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > 391 && !e.closest('.table-wrap, .nav'))
            .slice(-3).map((e) => e.tagName + '.' + e.className + ': ' + (e.textContent || '').slice(0, 80)).join(' | ')`);
          return `${where} is ${width} px wide: ${wide}`;
        };
        await expect.poll(overflow, { timeout: 3000, interval: 300 }).toBe('fits');
      };
      await fitsPhone('captures');
      await shot(page, 'captures-390');
      await page.click(`[data-capture="${captureName}"] a >> nth=0`);
      await page.locator('[data-report-status=Succeeded]').waitFor();
      // The report's top (its explanation) just under the sticky menu.
      await page.evaluate(
        "scrollTo(0, document.querySelector('[data-report-status]').getBoundingClientRect().top + scrollY - 150)",
      );
      await fitsPhone('report');
      await shot(page, 'report-390');
      await page.click('nav >> text=Alerts');
      await page.locator('[data-alert-rule="outbound"]').first().waitFor();
      await fitsPhone('alerts');
      await shot(page, 'alerts-390');
      await page.click('nav >> text=Overview');
      await card.locator('canvas').first().waitFor();
      await fitsPhone('overview');
      await shot(page, 'overview-390');

      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 170_000);

  it('starts a capture from the form with filters, shows its progress, stops it and deletes it', async () => {
    const { page, context, errors } = await open();
    try {
      await signIn(page, env.adminToken);
      await page.locator('[data-vm="vm1"] [data-action=capture-vm]').click();
      const form = page.locator('form[data-form=capture]');
      await form.locator('input[name=name]').fill('console-manual');
      await form.locator('input[name=timeLimitInSeconds]').fill('120');
      await form.locator('[data-action=add-filter]').click();
      await form.locator('select[name=protocol0]').selectOption('UDP');
      await form.locator('input[name=remoteIPAddress0]').fill(env.peer.ip);
      await form.locator('input[name=remotePort0]').fill('9');
      await form.locator('[data-action=start-capture]').click();
      // The page moves to the capture, which runs, with its progress towards the time limit.
      await page.locator('[data-capture-page="console-manual"]').waitFor();
      await page.locator('[data-progress="console-manual"]').waitFor({ timeout: 20_000 });
      const created = await env.api.call<{ properties: { filters: unknown[]; timeLimitInSeconds: number } }>(
        'GET',
        `${env.api.capturePath('console-manual')}?api-version=2024-05-01`,
      );
      expect(created.body.properties).toMatchObject({
        timeLimitInSeconds: 120,
        filters: [{ protocol: 'UDP', remoteIPAddress: env.peer.ip, remotePort: '9' }],
      });
      await sendUdp(env.vm, { to: env.peer.ip, port: 9, count: 50, size: 200 });
      await page.locator('[data-action=stop-capture]').click();
      await page.locator('.facts .badge', { hasText: 'Stopped' }).waitFor();
      const stopped = await env.api.waitUntilEnded('console-manual');
      expect(stopped.stopReason).toBe('ManuallyStopped');
      expect(stopped.packetsCaptured).toBeGreaterThanOrEqual(50);
      await page.locator('[data-file="1"]').waitFor({ timeout: 20_000 });
      await page.locator('[data-action=delete-capture]').click();
      await page.locator('[data-capture="console-manual"]').waitFor({ state: 'detached' });
      expect(page.url()).toMatch(/#\/captures$/);
      expect(
        (await env.api.call('GET', `${env.api.capturePath('console-manual')}?api-version=2024-05-01`)).status,
      ).toBe(404);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it("a reader's session offers no action it cannot take; an operator's none of a contributor's", async () => {
    const reader = await env.api.call<{ token: string }>('POST', '/tripcap/v1/tokens', {
      name: 'night-reader',
      role: 'reader',
    });
    const operator = await env.api.call<{ token: string }>('POST', '/tripcap/v1/tokens', {
      name: 'night-operator',
      role: 'operator',
    });
    expect(reader.status).toBe(201);
    // A capture to look at, whatever the first test did.
    if (!captureName) {
      captureName = 'console-reader-check';
      await env.api.createCapture(captureName, { timeLimitInSeconds: 2 });
      await env.api.waitUntilEnded(captureName);
    }

    const { page, context, errors } = await open();
    try {
      await signIn(page, reader.body.token);
      expect(await page.textContent('.topbar .user')).toContain('reader');
      const noActions = async (where: string) =>
        expect(await page.locator('[data-action]').count(), `${where}: action controls for a reader`).toBe(0);
      await page.locator('[data-vm="vm1"]').waitFor();
      await noActions('overview');
      await page.click('nav >> text=Alert rules');
      await page.locator('[data-rule]').first().waitFor();
      await noActions('rules');
      await page.click('nav >> text=Action groups');
      await page.locator('[data-action-group]').first().waitFor();
      await noActions('action groups');
      // Readers see receivers' URLs with their keys redacted.
      expect(await page.textContent('[data-action-group]')).not.toMatch(/code=tct_/);
      await page.click('nav >> text=Captures');
      await page.locator(`[data-capture="${captureName}"]`).first().waitFor();
      await noActions('captures');
      await shot(page, 'reader-captures-1280');
      await page.goto(`${env.serverUrl}/#/captures/NetworkWatcherRG/${WATCHER_ID.split('/').at(-1)}/${captureName}`);
      await page.locator('[data-file="1"]').waitFor();
      await noActions('capture');
      expect(await page.textContent('[data-file="1"]')).toContain('needs a contributor or admin token');
      await page.click('nav >> text=Alerts');
      await page.locator('.timeline[data-loaded=yes]').waitFor();
      await noActions('alerts');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }

    // An operator captures, stops and deletes, but neither downloads files nor changes rules.
    const op = await open();
    try {
      await signIn(op.page, operator.body.token);
      await op.page.click('nav >> text=Captures');
      await op.page.locator('[data-action=new-capture]').waitFor();
      await op.page.locator(`[data-capture="${captureName}"] [data-action=delete-capture]`).waitFor();
      expect(await op.page.locator('[data-action=download]').count()).toBe(0);
      await op.page.click('nav >> text=Alert rules');
      await op.page.locator('[data-rule]').first().waitFor();
      expect(await op.page.locator('[data-action]').count()).toBe(0);
      expect(op.errors).toEqual([]);
    } finally {
      await op.context.close();
    }
  }, 60_000);

  it("every form shows the API's error message for bad input", async () => {
    const { page, context, errors } = await open();
    try {
      // A wrong token: the sign-in form says what the API said.
      await page.goto(`${env.serverUrl}/`);
      await page.fill('input[name=token]', 'tct_0000000000000000_wrongwrongwrongwrongwrongwrongwrongwrongwro');
      await page.click('form[data-form=signin] button[type=submit]');
      await page.locator('form[data-form=signin] .error-message').waitFor();
      expect(await page.textContent('form[data-form=signin] .error-message')).toContain('Authentication failed');
      await signIn(page, env.adminToken);

      /** What the API answers to a body, to compare with what the page shows. */
      const apiMessage = async (method: string, path: string, body: unknown) => {
        const answer = await env.api.call<{ error: { message: string; target?: string } }>(method, path, body);
        expect(answer.status, JSON.stringify(answer.body)).toBe(400);
        return answer.body.error;
      };
      const ruleBody = (properties: Record<string, unknown>) => ({
        location: 'global',
        properties: {
          severity: 3,
          enabled: true,
          scopes: [VM_ID],
          evaluationFrequency: 'PT1M',
          windowSize: 'PT5M',
          criteria: {
            'odata.type': 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria',
            allOf: [
              {
                criterionType: 'StaticThresholdCriterion',
                name: 'criterion1',
                metricName: 'Network Out Total',
                metricNamespace: 'Microsoft.Compute/virtualMachines',
                timeAggregation: 'Total',
                operator: 'GreaterThan',
                threshold: '1000',
                dimensions: [],
              },
            ],
          },
          ...properties,
        },
      });
      const showsError = async (form: string, expected: { message: string; target?: string }) => {
        const box = page.locator(`form[data-form=${form}] .error`);
        await box.locator('.error-message', { hasText: expected.message }).waitFor();
        expect(await box.locator('.error-message').textContent()).toBe(expected.message);
        if (expected.target) expect(await box.locator('.error-target code').textContent()).toBe(expected.target);
      };
      /** The control the refusal's field names: marked invalid, and focused for the keyboard. */
      const marked = async (form: string) => ({
        invalid: await page.getAttribute(`form[data-form=${form}] [aria-invalid=true]`, 'name'),
        focused: await page.evaluate('document.activeElement?.getAttribute("name")'),
      });

      // Rule form: a threshold that is not a number, then a window shorter than the frequency.
      await page.click('nav >> text=Alert rules');
      await page.click('[data-action=new-rule]');
      const ruleForm = page.locator('form[data-form=rule]');
      await ruleForm.locator('input[name=name]').fill('bad-rule');
      await ruleForm.locator('input[name=threshold]').fill('lots');
      await ruleForm.locator('[data-action=save-rule]').click();
      const badThreshold = await apiMessage('PUT', `${INSIGHTS}/metricAlerts/bad-rule?api-version=2018-03-01`, {
        ...ruleBody({}),
        properties: {
          ...ruleBody({}).properties,
          criteria: {
            ...ruleBody({}).properties.criteria,
            allOf: [{ ...ruleBody({}).properties.criteria.allOf[0], threshold: 'lots' }],
          },
        },
      });
      await showsError('rule', badThreshold);
      await ruleForm.locator('input[name=threshold]').fill('1000');
      await ruleForm.locator('select[name=windowSize]').selectOption('PT10S');
      await ruleForm.locator('select[name=evaluationFrequency]').selectOption('PT1M');
      await ruleForm.locator('[data-action=save-rule]').click();
      const shortWindow = await apiMessage(
        'PUT',
        `${INSIGHTS}/metricAlerts/bad-rule?api-version=2018-03-01`,
        ruleBody({ windowSize: 'PT10S', evaluationFrequency: 'PT1M' }),
      );
      await showsError('rule', shortWindow);
      expect(await marked('rule')).toEqual({ invalid: 'windowSize', focused: 'windowSize' });
      await shot(page, 'rule-error-1280');
      // The edit form of an existing rule: the same check, the same words; nothing changes.
      await ruleForm.locator('button', { hasText: 'Cancel' }).click();
      await page.locator('[data-rule="outbound"] [data-action=edit-rule]').click();
      expect(await ruleForm.locator('input[name=name]').inputValue()).toBe('outbound');
      await ruleForm.locator('input[name=threshold]').fill('lots');
      await ruleForm.locator('[data-action=save-rule]').click();
      await showsError('rule', badThreshold);
      const kept = await env.api.call<{ properties: { criteria: { allOf: Array<{ threshold: number }> } } }>(
        'GET',
        `${INSIGHTS}/metricAlerts/outbound?api-version=2018-03-01`,
      );
      expect(kept.body.properties.criteria.allOf[0]?.threshold).toBe(1_000_000);

      // Capture form: a filter with an address that is not one, then a time limit past Azure's maximum.
      await page.click('nav >> text=Captures');
      await page.click('[data-action=new-capture]');
      const captureForm = page.locator('form[data-form=capture]');
      await captureForm.locator('input[name=name]').fill('bad-capture');
      await captureForm.locator('[data-action=add-filter]').click();
      await captureForm.locator('select[name=protocol0]').selectOption('TCP');
      await captureForm.locator('input[name=localIPAddress0]').fill('10.0.0.300');
      await captureForm.locator('[data-action=start-capture]').click();
      const capturePath = `${WATCHER_ID}/packetCaptures/bad-capture?api-version=2024-05-01`;
      const storageId = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/tripcap`;
      const badFilter = await apiMessage('PUT', capturePath, {
        properties: {
          target: VM_ID,
          timeLimitInSeconds: 60,
          bytesToCapturePerPacket: 0,
          storageLocation: { storageId },
          filters: [{ protocol: 'TCP', localIPAddress: '10.0.0.300' }],
          preTriggerSeconds: 0,
        },
      });
      await showsError('capture', badFilter);
      expect(await marked('capture')).toEqual({ invalid: 'localIPAddress0', focused: 'localIPAddress0' });
      await captureForm.locator('input[name=localIPAddress0]').fill('');
      await captureForm.locator('input[name=timeLimitInSeconds]').fill('99999');
      await captureForm.locator('[data-action=start-capture]').click();
      const badLimit = await apiMessage('PUT', capturePath, {
        properties: {
          target: VM_ID,
          timeLimitInSeconds: 99999,
          bytesToCapturePerPacket: 0,
          storageLocation: { storageId },
          filters: [{ protocol: 'TCP' }],
          preTriggerSeconds: 0,
        },
      });
      await showsError('capture', badLimit);
      // Only the field of the latest refusal is marked.
      expect(await marked('capture')).toEqual({ invalid: 'timeLimitInSeconds', focused: 'timeLimitInSeconds' });
      await shot(page, 'capture-error-1280');

      // Action group form: a webhook URL that is not http(s).
      await page.click('nav >> text=Action groups');
      await page.click('[data-action=new-action-group]');
      const groupForm = page.locator('form[data-form=action-group]');
      await groupForm.locator('input[name=name]').fill('bad-group');
      await groupForm.locator('select[name=receiverKind0]').selectOption('webhook');
      await groupForm.locator('input[name=receiverName0]').fill('hook');
      await groupForm.locator('input[name=receiverTarget0]').fill('ftp://example.org/alert');
      await groupForm.locator('[data-action=save-action-group]').click();
      const badUrl = await apiMessage('PUT', `${INSIGHTS}/actionGroups/bad-group?api-version=2023-01-01`, {
        location: 'Global',
        properties: {
          groupShortName: 'bad-group',
          webhookReceivers: [{ name: 'hook', serviceUri: 'ftp://example.org/alert', useCommonAlertSchema: true }],
        },
      });
      await showsError('action-group', badUrl);

      // Chrome reports each refused request as a console error; those 400s (and the wrong token's 401) are this
      // test's point. Anything else fails it.
      const unexpected = errors.filter(
        (e) => !/Failed to load resource: the server responded with a status of (400|401)/.test(e),
      );
      expect(unexpected).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
