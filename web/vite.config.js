import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

// Two pages: the agent workspace and the customers' chat widget. The
// output is committed (web/dist) and embedded in the kefu binary, so
// `go run ./cmd/kefu` serves it with no Node installed.
export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: process.env.KEFU_WEB_OUT || 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      input: {
        workspace: resolve(import.meta.dirname, 'workspace/index.html'),
        chat: resolve(import.meta.dirname, 'chat/index.html'),
      },
      // Vue is what the two pages share; name its chunk after it.
      output: { manualChunks: { vue: ['vue'] } },
    },
  },
  server: { proxy: { '/v1': { target: 'http://127.0.0.1:8080', ws: true } } },
});
