import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransientSmtpError } from './email.js';
import { postJson, urlWithoutQuery, WebhookNetworkError } from './webhook.js';

const received: Array<{ body: string; headers: IncomingHttpHeaders }> = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    received.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers });
    if (req.url?.startsWith('/hang')) return;
    res.writeHead(req.url?.startsWith('/missing') ? 404 : 202).end('{"ok":true}');
  });
});
let base = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('postJson', () => {
  it('sends a string as is and an object as JSON, and answers any status without throwing', async () => {
    expect(await postJson(`${base}/hook`, '{"a":1,  "b":2}', { timeoutMs: 2000 })).toEqual({ status: 202 });
    expect(received.at(-1)?.body).toBe('{"a":1,  "b":2}');
    expect(received.at(-1)?.headers['content-type']).toBe('application/json');
    expect(await postJson(`${base}/missing`, { a: 1 }, { timeoutMs: 2000 })).toEqual({ status: 404 });
    expect(received.at(-1)?.body).toBe('{"a":1}');
  });

  it('throws WebhookNetworkError on timeout, without the query', async () => {
    const err = await postJson(`${base}/hang?code=topsecret`, {}, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WebhookNetworkError);
    expect((err as Error).message).toBe('no answer within 100 ms');
  });

  it('throws WebhookNetworkError when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const err = await postJson(`http://127.0.0.1:${port}/x?sig=topsecret`, {}, { timeoutMs: 2000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WebhookNetworkError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect((err as Error).message).not.toContain('topsecret');
  });

  it('urlWithoutQuery keeps origin and path only', () => {
    expect(urlWithoutQuery('https://h.example:8443/api/f?code=abc#x')).toBe('https://h.example:8443/api/f?…');
    expect(urlWithoutQuery('nonsense')).toBe('(invalid URL)');
  });
});

describe('isTransientSmtpError', () => {
  it.each([
    [{ code: 'ECONNECTION' }, true],
    [{ code: 'ETIMEDOUT' }, true],
    [{ code: 'EENVELOPE', responseCode: 451 }, true],
    [{ code: 'EENVELOPE', responseCode: 550 }, false],
    [{ code: 'EAUTH', responseCode: 535 }, false],
    [{ code: 'EMESSAGE' }, false],
    [new Error('plain'), false],
  ])('%o → %s', (err, transient) => {
    expect(isTransientSmtpError(err)).toBe(transient);
  });
});
