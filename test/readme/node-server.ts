/**
 * What a README block gets for `@hono/node-server` when test/readme.test.ts
 * runs it: the real `serve`, on a free loopback port instead of the one the
 * block names, and the servers it started, for the test to call and close.
 */
import type { AddressInfo } from 'node:net'
import { serve as realServe, type ServerType } from '@hono/node-server'

/** The servers `serve()` started, in order. */
export const servers: ServerType[] = []

/** `@hono/node-server`'s `serve`, listening on 127.0.0.1 and a free port. */
export function serve(
  options: Parameters<typeof realServe>[0],
  listening?: (info: AddressInfo) => void,
): ServerType {
  const server = realServe({ ...options, port: 0, hostname: '127.0.0.1' }, listening)
  servers.push(server)
  return server
}
