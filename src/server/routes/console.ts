import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Permission, Principal } from '../tokens.js';
import { roleCan } from '../tokens.js';

/**
 * The web console: the static files Vite built from ui/ (index.html and hashed assets), and `GET /tripcap/v1/me`,
 * which tells the page who its token is. The static files hold no data, so they need no credentials; every API call
 * the page makes carries the token. Only files that were in the build folder when the server started are served:
 * a request names a key of that table, never a path on disk.
 */

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Scripts, styles and connections from this server only; nothing inline, no frames. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PERMISSIONS: Permission[] = ['read', 'capture:write', 'resource:write', 'pcap:download', 'token:admin'];

interface StaticFile {
  body: Buffer;
  type: string;
}

/** Where the build is: beside the compiled server (dist/ui) or, when running from src/, in dist/ui. */
export function defaultConsoleDir(): string {
  const candidates = [new URL('../../ui/', import.meta.url), new URL('../../../dist/ui/', import.meta.url)];
  const found = candidates.map((u) => fileURLToPath(u)).find((dir) => existsSync(join(dir, 'index.html')));
  return found ?? fileURLToPath(candidates[0] as URL);
}

/** Every file under `dir`, keyed by its path relative to it with '/' separators; empty when there is no build. */
function loadBuild(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(join(dir, 'index.html'))) return files;
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const type = CONTENT_TYPES[extname(name).toLowerCase()];
        if (type) files.set(relative(dir, path).split(sep).join('/'), { body: readFileSync(path), type });
      }
    }
  };
  walk(dir);
  return files;
}

function sendFile(reply: FastifyReply, file: StaticFile, cache: string) {
  return reply
    .header('Content-Type', file.type)
    .header('Cache-Control', cache)
    .header('Content-Security-Policy', CONSOLE_CSP)
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Frame-Options', 'DENY')
    .send(file.body);
}

export function registerConsoleRoutes(app: FastifyInstance, options: { dir?: string; subscriptionId: string }): void {
  const files = loadBuild(options.dir ?? defaultConsoleDir());
  const open = { config: { permission: 'public' as const } };

  app.get('/', open, async (_request, reply) => {
    const index = files.get('index.html');
    if (!index) {
      return reply
        .status(404)
        .header('Content-Type', 'text/plain; charset=utf-8')
        .send('The web console is not built: run `npm run build`, then restart the server.\n');
    }
    // index.html names the hashed assets of this build: always revalidate it.
    return sendFile(reply, index, 'no-cache');
  });

  app.get('/assets/*', open, async (request, reply) => {
    const name = (request.params as Record<string, string>)['*'] ?? '';
    const file = files.get(`assets/${name}`);
    if (!file) {
      return reply
        .status(404)
        .send({ error: { code: 'NotFound', message: `No console asset '${name.slice(0, 100)}'.` } });
    }
    // Vite puts a content hash in every asset's name: a name never changes meaning.
    return sendFile(reply, file, 'public, max-age=31536000, immutable');
  });

  // Who the caller's token is, so that the page offers only what it may do.
  app.get('/tripcap/v1/me', { config: { permission: 'read' } }, async (request) => {
    const principal = request.principal as Principal;
    return {
      name: principal.name,
      role: principal.role,
      permissions: PERMISSIONS.filter((p) => roleCan(principal.role, p)),
      subscriptionId: options.subscriptionId,
    };
  });
}
