/**
 * A real S3 HTTP server for the tests: s3rver (the S3 REST API, objects on
 * disk in a temporary directory) in its own Node process on a free loopback
 * port. It runs with `--openssl-legacy-provider` because its ListObjectsV2
 * continuation tokens use DES, which OpenSSL 3 only has there. It can be
 * stopped and started again on the same port and directory, as an outage
 * would.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, HOST, managed } from './process.js'

/** The credentials s3rver accepts. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

/** A running s3rver. */
export interface S3Server {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string
  readonly port: number
  /** The directory holding the buckets' objects. */
  readonly directory: string
  /** Stops serving (connections are refused); the objects stay on disk. */
  stop(): Promise<void>
  /** Serves again on the same port and directory. */
  start(): Promise<void>
  /** Stops for good and removes the directory. */
  destroy(): Promise<void>
}

const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js')

/** Resolves true once the server answers HTTP (any status). */
async function answers(endpoint: string): Promise<boolean> {
  const res = await fetch(endpoint, { signal: AbortSignal.timeout(1000) })
  await res.arrayBuffer()
  return true
}

/** Starts s3rver with the given buckets. */
export async function startS3(buckets: readonly string[] = ['cache']): Promise<S3Server> {
  const port = await freePort()
  const directory = mkdtempSync(join(tmpdir(), 'cachette-s3-'))
  const endpoint = `http://${HOST}:${port}`
  const server = managed({
    command: process.execPath,
    args: () => [
      '--openssl-legacy-provider',
      bin,
      '-d',
      directory,
      '-a',
      HOST,
      '-p',
      String(port),
      '--silent',
      ...buckets.flatMap((b) => ['--configure-bucket', b]),
    ],
    port,
    install: 'the s3rver npm package (npm ci)',
    ready: () => answers(endpoint),
  })
  try {
    await server.start()
  } catch (error) {
    rmSync(directory, { recursive: true, force: true })
    throw error
  }
  return {
    endpoint,
    port,
    directory,
    start: server.start,
    stop: server.stop,
    destroy: async () => {
      await server.stop()
      rmSync(directory, { recursive: true, force: true })
    },
  }
}
