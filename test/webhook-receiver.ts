/** A webhook receiver for tests: records every POST (path, time, JSON body) and answers 200. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedPost {
  path: string;
  at: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read payloads key by key
  body: any;
}

export async function startWebhookReceiver(): Promise<{ url: string; posts: ReceivedPost[]; close(): void }> {
  const posts: ReceivedPost[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', at: Date.now(), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posts,
    close: () => server.close(),
  };
}
