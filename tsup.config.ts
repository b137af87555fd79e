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
    gcs: 'src/backends/gcs/index.ts',
    nunjucks: 'src/templates/nunjucks.ts',
    http: 'src/http/index.ts',
    testing: 'src/testing/index.ts',
    prometheus: 'src/observability/prometheus.ts',
    otel: 'src/observability/otel.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  // Everything but the CLI's files, which the second build (running at the same time) writes.
  clean: ['!cli.js', '!cli.js.map'],
  target: 'node20',
  splitting: true,
  external,
  // Backends load their client with createRequire(import.meta.url); shim it in the CJS build.
  shims: true,
  // Keep 'node:' specifiers: node:test has no unprefixed form.
  removeNodeProtocol: false,
}

// The `cachette` command (package.json "bin"): one self-contained ESM file. The
// entry's `#!/usr/bin/env node` line is kept and tsup makes the file executable.
const cli: Options = {
  entry: { cli: 'src/cli/bin.ts' },
  format: ['esm'],
  dts: false,
  sourcemap: true,
  clean: false,
  target: 'node20',
  splitting: false,
  // The command prints backend class names (`constructor.name`), which esbuild would otherwise rename.
  keepNames: true,
  external,
  removeNodeProtocol: false,
}

export default defineConfig([library, cli])
