/**
 * Real Redis servers for the tests: a standalone redis-server (optionally with
 * a password), a Sentinel set-up (master, replica, three sentinels) and a
 * 3-master Cluster, each on free loopback ports in a temporary directory,
 * with no persistence. Every process is killed when the test process exits.
 * A missing `redis-server` binary is an error, never a skip.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort, HOST, type ManagedServer, managed as managedProcess, sleep } from './process.js'

export { freePort }

const run = promisify(execFile)

/** Sends one inline command and returns the raw reply (enough for PING and INFO-style checks). */
export function rawCommand(port: number, command: string, password?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket()
    let data = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply from ${HOST}:${port}`))
    }, 2000)
    socket.on('data', (chunk) => {
      data += chunk.toString()
      const expected = password ? 2 : 1
      if (isComplete(data, expected)) {
        clearTimeout(timer)
        socket.destroy()
        resolve(password ? data.slice(data.indexOf('\r\n') + 2) : data)
      }
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.connect(port, HOST, () => {
      socket.write(`${password ? `AUTH ${JSON.stringify(password)}\r\n` : ''}${command}\r\n`)
    })
  })
}

/** Whether `data` holds `replies` complete RESP replies (nested arrays included). */
function isComplete(data: string, replies: number): boolean {
  let at = 0
  const skip = (): boolean => {
    const end = data.indexOf('\r\n', at)
    if (end < 0) return false
    const line = data.slice(at, end)
    at = end + 2
    if (line.startsWith('$')) {
      const len = Number(line.slice(1))
      if (len < 0) return true
      if (Buffer.byteLength(data.slice(at)) < len + 2) return false
      at += Buffer.from(data.slice(at)).subarray(0, len).toString().length + 2
      return true
    }
    if (line.startsWith('*')) {
      const n = Number(line.slice(1))
      for (let i = 0; i < n; i++) if (!skip()) return false
    }
    return true
  }
  for (let i = 0; i < replies; i++) if (!skip()) return false
  return true
}

/** A Redis process the test controls. */
export interface RedisServer extends ManagedServer {
  readonly password?: string
}

interface RedisSpec {
  readonly command: string
  readonly args: () => string[]
  readonly port: number
  readonly password?: string
}

function managed(spec: RedisSpec): RedisServer {
  const server = managedProcess({
    ...spec,
    install: 'redis-server redis-sentinel redis-tools',
    ready: async () => (await rawCommand(spec.port, 'PING', spec.password)).startsWith('+PONG'),
  })
  return Object.assign(server, { password: spec.password })
}

function baseArgs(port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no']
}

/** A standalone redis-server, started. */
export async function startRedis(
  options: { password?: string; extraArgs?: string[] } = {},
): Promise<RedisServer & { readonly dir: string }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'cachette-redis-'))
  const server = managed({
    command: 'redis-server',
    port,
    password: options.password,
    args: () => [
      ...baseArgs(port, dir),
      ...(options.password ? ['--requirepass', options.password] : []),
      ...(options.extraArgs ?? []),
    ],
  })
  try {
    await server.start()
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const stop = server.stop
  const start = server.start
  return Object.assign(server, {
    dir,
    stop: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
    // After stop() removed the directory, start() makes it again: stop() then
    // start() is a clean restart on the same port (as after kill()).
    start: async () => {
      mkdirSync(dir, { recursive: true })
      await start()
    },
  })
}

/** One master, one replica and three sentinels watching them as `mymaster`. */
export interface SentinelSetup {
  readonly masterName: 'mymaster'
  readonly master: RedisServer
  readonly replica: RedisServer
  readonly sentinels: RedisServer[]
  /** `[host, port]` of each sentinel, as `CACHE_REDIS_SENTINELS` takes them. */
  readonly sentinelAddresses: [string, number][]
  /** The port the sentinels currently report as master. */
  currentMasterPort(): Promise<number>
  /** Forces a failover and resolves once the sentinels report the other server as master. */
  failover(): Promise<void>
  stop(): Promise<void>
}

/** Resolves once the replica on `replicaPort` is linked to the master on `masterPort` and has all its writes. */
async function replicaCaughtUp(masterPort: number, replicaPort: number): Promise<void> {
  const field = (info: string, name: string) => new RegExp(`${name}:(\\S+)`).exec(info)?.[1]
  for (let i = 0; i < 200; i++) {
    const offset = Number(
      field(await rawCommand(masterPort, 'INFO replication'), 'master_repl_offset'),
    )
    const replica = await rawCommand(replicaPort, 'INFO replication')
    if (
      field(replica, 'master_link_status') === 'up' &&
      Number(field(replica, 'slave_repl_offset')) >= offset
    ) {
      return
    }
    await sleep(100)
  }
  throw new Error(`the replica on ${replicaPort} did not catch up with ${masterPort} within 20 s`)
}

export async function startSentinelSetup(): Promise<SentinelSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'cachette-sentinel-'))
  const masterPort = await freePort()
  const replicaPort = await freePort()
  const master = managed({
    command: 'redis-server',
    port: masterPort,
    args: () => baseArgs(masterPort, dir),
  })
  const replica = managed({
    command: 'redis-server',
    port: replicaPort,
    args: () => [...baseArgs(replicaPort, dir), '--replicaof', HOST, String(masterPort)],
  })
  await master.start()
  await replica.start()
  // Wait until the replica has synced, so a failover has somewhere to go.
  for (let i = 0; i < 100; i++) {
    if ((await rawCommand(replicaPort, 'INFO replication')).includes('master_link_status:up')) break
    await sleep(100)
  }
  const sentinels: RedisServer[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const conf = join(dir, `sentinel-${port}.conf`)
    writeFileSync(
      conf,
      [
        `port ${port}`,
        `bind ${HOST}`,
        `dir ${dir}`,
        `sentinel monitor mymaster ${HOST} ${masterPort} 2`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 5000',
        'sentinel parallel-syncs mymaster 1',
        '',
      ].join('\n'),
    )
    const sentinel = managed({ command: 'redis-sentinel', port, args: () => [conf] })
    await sentinel.start()
    sentinels.push(sentinel)
  }
  const first = sentinels[0] as RedisServer
  const currentMasterPort = async (): Promise<number> => {
    const reply = await rawCommand(first.port, 'SENTINEL get-master-addr-by-name mymaster')
    const match = /\$\d+\r\n[^\r]+\r\n\$\d+\r\n(\d+)/.exec(reply)
    if (!match) throw new Error(`unexpected sentinel reply: ${reply}`)
    return Number(match[1])
  }
  // Sentinels must have discovered each other and the replica before a failover can work.
  for (let i = 0; i < 100; i++) {
    const info = await rawCommand(first.port, 'SENTINEL master mymaster')
    if (/num-other-sentinels\r\n[^\r]*\r\n2\r\n/.test(info)) {
      const replicas = await rawCommand(first.port, 'SENTINEL replicas mymaster')
      if (replicas.includes(String(replicaPort))) break
    }
    await sleep(100)
  }
  return {
    masterName: 'mymaster',
    master,
    replica,
    sentinels,
    sentinelAddresses: sentinels.map((s) => [HOST, s.port]),
    currentMasterPort,
    async failover() {
      const before = await currentMasterPort()
      // The writes made so far must have reached the replica, or the failover loses them
      // (replication is asynchronous; a master demoted by an earlier failover resyncs first).
      await replicaCaughtUp(before, before === masterPort ? replicaPort : masterPort)
      for (let attempt = 0; attempt < 20; attempt++) {
        const reply = await rawCommand(first.port, 'SENTINEL failover mymaster')
        if (reply.startsWith('+OK')) break
        await sleep(500)
      }
      for (let i = 0; i < 200; i++) {
        if ((await currentMasterPort()) !== before) return
        await sleep(100)
      }
      throw new Error('the sentinels did not fail over within 20 s')
    },
    async stop() {
      for (const s of sentinels) await s.stop()
      await replica.stop()
      await master.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A Redis Cluster of three masters (no replicas), created with `redis-cli --cluster create`. */
export interface ClusterSetup {
  readonly nodes: RedisServer[]
  /** `'127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3'`, as `CACHE_REDIS_CLUSTER` takes it. */
  readonly clusterString: string
  stop(): Promise<void>
}

export async function startCluster(): Promise<ClusterSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'cachette-cluster-'))
  const nodes: RedisServer[] = []
  for (let i = 0; i < 3; i++) {
    const port = await freePort()
    const node = managed({
      command: 'redis-server',
      port,
      args: () => [
        ...baseArgs(port, dir),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
      ],
    })
    await node.start()
    nodes.push(node)
  }
  const addresses = nodes.map((n) => `${HOST}:${n.port}`)
  await run('redis-cli', [
    '--cluster',
    'create',
    ...addresses,
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  ])
  for (let i = 0; i < 100; i++) {
    const states = await Promise.all(nodes.map((n) => rawCommand(n.port, 'CLUSTER INFO')))
    if (states.every((s) => s.includes('cluster_state:ok'))) break
    await sleep(100)
  }
  return {
    nodes,
    clusterString: addresses.join(','),
    async stop() {
      for (const n of nodes) await n.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
