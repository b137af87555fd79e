/**
 * Declared context for README fragments (see scripts/readme-blocks.ts): what a
 * block names but leaves to the reader's app (`app`, `cache`, a `db`, route
 * handlers). A block lists the preludes it needs in its marker; only the
 * names it uses and does not define itself are declared.
 */
export interface Prelude {
  /** Always emitted first (type aliases the declarations share; names start with `__`). */
  imports?: string
  /** name → the statement that declares it (a `declare`, or an import). */
  declare: Record<string, string>
}

const data: Prelude = {
  imports: 'type __User = { id: number; name: string }',
  declare: {
    Cache: "import { Cache } from 'cachette'",
    cache: "declare const cache: import('cachette').Cache",
    User: 'type User = __User',
    db: 'declare const db: { users: { find(id: number): Promise<__User | undefined>; update(id: number, data: Partial<__User>): Promise<void> }; orders: { total(month: string): Promise<number> } }',
    id: 'declare const id: number',
    user: 'declare const user: __User',
    value: 'declare const value: unknown',
    html: 'declare const html: string',
    bigBuffer: 'declare const bigBuffer: Buffer',
    bigReport: 'declare const bigReport: Record<string, unknown>',
    render: 'declare function render(): string',
    loadUser: 'declare function loadUser(id: string): __User',
    loadFeed: 'declare function loadFeed(): Promise<{ live: boolean; items: string[] }>',
    loadPage: 'declare function loadPage(path: string): string',
    currentUser: 'declare function currentUser(req: import("express").Request): __User | undefined',
    log: 'declare const log: { debug(...args: unknown[]): void; warn(...args: unknown[]): void }',
    record: 'declare function record(event: unknown): void',
    ejs: 'declare const ejs: { render(template: string, data: object): string }',
    navTemplate: 'declare const navTemplate: string',
    versionOf:
      'declare function versionOf(what: unknown): Promise<{ etag?: string; lastModified?: number }>',
    etagOf: 'declare function etagOf(id: string): Promise<string>',
    MyCache:
      "declare const MyCache: new (options: { defaultTimeout: number }) => import('cachette').BaseCache",
  },
}

/** Route handlers of an Express app. */
const expressHandlers = [
  'home',
  'dashboard',
  'handler',
  'feed',
  'account',
  'listArticles',
  'search',
  'about',
  'renderReport',
]

const express: Prelude = {
  declare: {
    express: "import express from 'express'",
    Request: "import type { Request } from 'express'",
    app: "declare const app: import('express').Express",
    createProxyMiddleware: "import { createProxyMiddleware } from 'http-proxy-middleware'",
    ...Object.fromEntries(
      expressHandlers.map((h) => [h, `declare const ${h}: import('express').RequestHandler`]),
    ),
  },
}

const fastify: Prelude = {
  imports: "type __Handler = import('fastify').RouteHandlerMethod",
  declare: {
    app: "declare const app: import('fastify').FastifyInstance",
    cachette: "import cachette from 'cachette/fastify'",
    schema: "declare const schema: import('fastify').FastifySchema",
    auth: "declare const auth: import('fastify').onRequestHookHandler",
    ...Object.fromEntries(
      ['home', 'search', 'live', 'about', 'feed', 'listArticles', 'account', 'saveDoc'].map((h) => [
        h,
        `declare const ${h}: __Handler`,
      ]),
    ),
  },
}

const koa: Prelude = {
  declare: {
    Koa: "import Koa from 'koa'",
    app: "declare const app: import('koa')",
    router:
      "declare const router: { get(path: string, ...middleware: import('koa').Middleware[]): void }",
    cached: "import { cached } from 'cachette/koa'",
    compress: "declare function compress(): import('koa').Middleware",
    ...Object.fromEntries(
      ['listArticles', 'feed', 'account', 'saveDoc'].map((h) => [
        h,
        `declare const ${h}: import('koa').Middleware`,
      ]),
    ),
  },
}

const hono: Prelude = {
  declare: {
    Hono: "import { Hono } from 'hono'",
    app: "declare const app: import('hono').Hono",
    cached: "import { cached } from 'cachette/hono'",
    ...Object.fromEntries(
      ['me', 'feed', 'account', 'save'].map((h) => [
        h,
        `declare const ${h}: import('hono').Handler`,
      ]),
    ),
    listArticles: 'declare function listArticles(): { title: string }[]',
    renderReport: 'declare function renderReport(): string',
  },
}

const nest: Prelude = {
  declare: {
    ...Object.fromEntries(
      ['Controller', 'Get', 'Injectable', 'Module', 'Param', 'UseInterceptors'].map((n) => [
        n,
        `import { ${n} } from '@nestjs/common'`,
      ]),
    ),
    ...Object.fromEntries(
      ['Cached', 'CachetteModule', 'Memoize', 'cacheFor', 'httpCache', 'validation', 'vary'].map(
        (n) => [n, `import { ${n} } from 'cachette/nestjs'`],
      ),
    ),
    NestFactory: "import { NestFactory } from '@nestjs/core'",
    NestExpressApplication:
      "import type { NestExpressApplication } from '@nestjs/platform-express'",
    AppModule: 'declare class AppModule {}',
    UsersController: 'declare class UsersController { find(id: number): Promise<unknown> }',
    ArticlesService: 'declare class ArticlesService { find(id: string): Promise<unknown> }',
  },
}

export const preludes: Record<string, Prelude> = { data, express, fastify, koa, hono, nest }

/**
 * Module declarations added to the program: the parts of @koa/router's API
 * the README uses (the version installed here predates the types it ships
 * since 13, and no @types package is installed).
 */
export const ambient = `declare module '@koa/router' {
  import type { Middleware } from 'koa'
  export default class Router {
    get(path: string, ...middleware: Middleware[]): this
    put(path: string, ...middleware: Middleware[]): this
    routes(): Middleware
  }
}
`
