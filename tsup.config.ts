import { defineConfig, type Options } from 'tsup'

const external = [
  'express',
  'fastify',
  'fastify-plugin',
  'koa',
  'hono',
  '@nestjs/common',
  'rxjs',
  'ioredis',
  'redis',
  '@aws-sdk/client-s3',
  '@google-cloud/storage',
  'nunjucks',
  'prom-client',
  '@opentelemetry/api',
]

// The library: one entry per subpath export in package.json; tests/exports.test.ts imports each from dist/.
const library: Options = {
  entry: {
    index: 'src/index.ts',
    express: 'src/frameworks/express/index.ts',
    fastify: 'src/frameworks/fastify/index.ts',
    koa: 'src/frameworks/koa/index.ts',
    hono: 'src/frameworks/hono/index.ts',
    nestjs: 'src/frameworks/nestjs/index.ts',
    redis: 'src/backends/redis/index.ts',
    memcached: 'src/backends/memcached/index.ts',
    s3: 'src/backends/s3/index.ts',
    cloudflare: 'src/backends/cloudflare-kv/index.ts',
    gcs: 'src/backends/gcs/index.ts',
    keyv: 'src/backends/keyv/index.ts',
    nunjucks: 'src/templates/nunjucks.ts',
    http: 'src/http/index.ts',
    testing: 'src/testing/index.ts',
    prometheus: 'src/observability/prometheus.ts',
    otel: 'src/observability/otel.ts',
  },
  format: ['cjs'],
  dts: true,
  // No source maps in the package: they would point at src/, which is not shipped.
  sourcemap: false,
  // `npm run build` empties dist/ first: the two builds below run at the same time.
  clean: false,
  target: 'node20',
  splitting: true,
  // The CLI prints backend class names (`constructor.name`), which esbuild would otherwise rename.
  keepNames: true,
  external,
  // Backends load their client with createRequire(import.meta.url); shim it in the CJS build.
  shims: true,
  // Keep 'node:' specifiers: node:test has no unprefixed form.
  removeNodeProtocol: false,
}

// The ESM build of the library, with the `cachette` command (package.json "bin")
// as one more entry: the command's file is a few lines over the library's own
// chunks, not a second copy of it. The entry's `#!/usr/bin/env node` line is
// kept and tsup makes the file executable.
const esm: Options = {
  ...library,
  entry: { ...(library.entry as Record<string, string>), cli: 'src/cli/bin.ts' },
  format: ['esm'],
  dts: { entry: library.entry as Record<string, string> },
}

export default defineConfig([library, esm])
