import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const SERVER_SOURCE = fileURLToPath(new URL('../src/', import.meta.url));

// The console is built into dist/ui, which the server serves at `/` (src/server/routes/console.ts).
export default defineConfig({
  plugins: [
    {
      // The console shares the server's types (`import type`, erased) but none of its code: it would not run in a
      // browser, and it is not the page's to carry.
      name: 'no-server-code',
      load(id) {
        if (id.startsWith(SERVER_SOURCE)) {
          this.error(`${id} is server code: the console may only \`import type\` from src/.`);
        }
      },
    },
  ],
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    // Everything as files: the server's Content-Security-Policy allows no inline script or style.
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
