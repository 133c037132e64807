// @ts-check
import { defineConfig } from 'astro/config';

// Static output only: the edge serves dist/ as a release from its KV Store. Hashed assets
// land in /_astro/ (immutable caching at the edge); HTML pages are directory-style
// (/signin/ -> signin/index.html).
export default defineConfig({
  output: 'static',
  trailingSlash: 'always',
  build: {
    format: 'directory',
    assets: '_astro',
    // A Content-Security-Policy will forbid inline code: stylesheets and scripts must be
    // files, never inlined into the HTML however small they are.
    inlineStylesheets: 'never',
  },
  vite: {
    build: {
      // Astro inlines processed scripts smaller than this limit; 0 keeps every script a file.
      assetsInlineLimit: 0,
    },
  },
  devToolbar: { enabled: false },
  prefetch: false,
});
