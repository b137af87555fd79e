import { defineConfig } from 'tsup'

// One entry per subpath export in package.json; tests/exports.test.ts imports each from dist/.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    express: 'src/frameworks/express/index.ts',
    fastify: 'src/frameworks/fastify/index.ts',
    koa: 'src/frameworks/koa/index.ts',
    hono: 'src/frameworks/hono/index.ts',
    redis: 'src/backends/redis/index.ts',
    memcached: 'src/backends/memcached/index.ts',
    s3: 'src/backends/s3/index.ts',
    gcs: 'src/backends/gcs/index.ts',
    nunjucks: 'src/templates/nunjucks.ts',
    http: 'src/http/index.ts',
    testing: 'src/testing/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  external: [
    'express',
    'fastify',
    'fastify-plugin',
    'koa',
    'hono',
    'ioredis',
    '@aws-sdk/client-s3',
    '@google-cloud/storage',
    'nunjucks',
  ],
  // Backends load their client with createRequire(import.meta.url); shim it in the CJS build.
  shims: true,
  // Keep 'node:' specifiers: node:test has no unprefixed form.
  removeNodeProtocol: false,
})
