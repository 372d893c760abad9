import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The console is built into dist/ui, which the server serves at `/` (src/server/routes/console.ts).
export default defineConfig({
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
