/**
 * Real memcached servers for the tests, on free loopback ports: plain, with
 * SASL (`-S`) against a sasldb made by `saslpasswd2`, or with TLS (`-Z`) on
 * a self-signed certificate made by openssl, in a temporary directory. Killed when the test process exits; a missing binary is an
 * error, never a skip.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { freePort, HOST, type ManagedServer, managed } from './process.js'

const INSTALL = 'memcached sasl2-bin libsasl2-modules openssl'

/** A memcached process the test controls. */
export interface MemcachedServer extends ManagedServer {
  /** `127.0.0.1:<port>`. */
  readonly address: string
  /** With `tls`: the self-signed certificate (PEM) to trust. */
  readonly ca?: string
}

/** Resolves true once the server answers a binary-protocol Version request (with SASL, any answer counts). */
function answers(port: number, ca?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const header = Buffer.alloc(24)
    header[0] = 0x80
    header[1] = 0x0b
    const socket =
      ca === undefined
        ? new Socket().connect(port, HOST, () => socket.write(header))
        : tlsConnect({ host: HOST, port, ca }, () => socket.write(header))
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('data', (d: Buffer) => done(d[0] === 0x81))
    socket.once('error', () => done(false))
  })
}

/** A self-signed certificate for 127.0.0.1, made with openssl in `dir`. */
function selfSigned(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  return new Promise((resolve, reject) => {
    execFile(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      (error) =>
        error ? reject(new Error(`openssl failed: ${error.message}`)) : resolve({ cert, key }),
    )
  })
}

function saslpasswd(dbPath: string, username: string, password: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'saslpasswd2',
      ['-a', 'memcached', '-c', '-p', '-f', dbPath, username],
      (error) => {
        if (error)
          reject(
            new Error(
              `saslpasswd2 failed: ${error.message} (install it: apt-get install ${INSTALL})`,
            ),
          )
        else resolve()
      },
    )
    child.stdin?.end(password)
  })
}

/** Starts memcached. `sasl` turns on authentication with one user; `args` are extra flags (`-I 2m`). */
export async function startMemcached(
  options: { sasl?: { username: string; password: string }; tls?: boolean; args?: string[] } = {},
): Promise<MemcachedServer> {
  const port = await freePort()
  const args = ['-l', HOST, '-p', String(port), '-U', '0', '-m', '256', ...(options.args ?? [])]
  if (process.getuid?.() === 0) args.push('-u', 'root')
  let env: NodeJS.ProcessEnv | undefined
  let dir: string | undefined
  let ca: string | undefined
  if (options.sasl || options.tls) dir = mkdtempSync(join(tmpdir(), 'cachette-memcached-'))
  if (options.tls) {
    const { cert, key } = await selfSigned(dir as string)
    ca = readFileSync(cert, 'utf8')
    args.push('-Z', '-o', `ssl_chain_cert=${cert},ssl_key=${key}`)
  }
  if (options.sasl && dir) {
    const db = join(dir, 'sasldb2')
    await saslpasswd(db, options.sasl.username, options.sasl.password)
    writeFileSync(join(dir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${db}\n`)
    env = { ...process.env, SASL_CONF_PATH: dir }
    args.push('-S')
  }
  const server = managed({
    command: 'memcached',
    args: () => args,
    port,
    env,
    install: INSTALL,
    ready: () => answers(port, ca),
  })
  await server.start()
  const stop = server.stop
  return Object.assign(server, {
    address: `${HOST}:${port}`,
    ca,
    stop: async () => {
      await stop()
      if (dir) rmSync(dir, { recursive: true, force: true })
    },
  })
}

/**
 * Sends one text-protocol command to a plain (non-SASL) server and resolves
 * the reply, up to `END`, or the first line for single-line replies.
 */
export function textCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket()
    let data = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply from ${HOST}:${port} to ${command}`))
    }, 2000)
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1')
      const multi = /^(STAT|VALUE)/.test(data)
      if (multi ? data.endsWith('END\r\n') : data.includes('\r\n')) {
        clearTimeout(timer)
        socket.destroy()
        resolve(data)
      }
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.connect(port, HOST, () => socket.write(`${command}\r\n`))
  })
}

/** The remaining time to live of a raw key in seconds (`-1` = never expires), or `undefined` if absent. */
export async function ttlOf(port: number, wireKey: string): Promise<number | undefined> {
  const reply = await textCommand(port, `mg ${wireKey} t`)
  if (reply.startsWith('EN')) return undefined
  const m = / t(-?\d+)/.exec(reply)
  if (m === null) throw new Error(`unexpected mg reply: ${reply}`)
  return Number(m[1])
}

/** The number of items stored on a plain server. */
export async function itemCount(port: number): Promise<number> {
  const stats = await textCommand(port, 'stats')
  return Number(/STAT curr_items (\d+)/.exec(stats)?.[1])
}
