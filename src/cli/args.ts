/**
 * The `cachette` command line: the commands, their options and the help
 * text, and turning `argv` into a checked {@link Invocation}.
 */
import { parseArgs } from 'node:util'

/** A mistake on the command line (unknown command or option, missing argument). Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
  /** Always `'ERR_CACHETTE_USAGE'`. */
  readonly code = 'ERR_CACHETTE_USAGE' as const
}

/** The commands. */
export type CommandName = 'clear' | 'get' | 'delete' | 'keys' | 'stats'

/** What one command accepts beyond the global options. */
interface CommandSpec {
  /** Command-specific options it takes. */
  readonly options: readonly string[]
  /** How many positional arguments: none, exactly one, or one or more. */
  readonly args: 'none' | 'one' | 'many'
  /** The positional arguments' name in messages. */
  readonly argName?: string
}

const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  clear: { options: ['prefix', 'yes', 'batch-size'], args: 'none' },
  get: { options: ['json'], args: 'one', argName: '<key>' },
  delete: { options: ['yes'], args: 'many', argName: '<key...>' },
  keys: { options: ['prefix', 'json'], args: 'none' },
  stats: { options: ['json'], args: 'none' },
}

/** Options every command takes. */
const GLOBAL_OPTIONS = new Set(['config', 'debug', 'help', 'version'])

/** The default number of keys per `deleteMany` call of `clear --prefix`. */
export const DEFAULT_BATCH_SIZE = 1000

/** A checked command line. */
export interface Invocation {
  /** The command, or `undefined` for `--help`/`--version`. */
  readonly command: CommandName | undefined
  /** The positional arguments after the command (keys for `get` and `delete`). */
  readonly args: readonly string[]
  /** `--config <file>`. */
  readonly config: string | undefined
  /** `--prefix <p>`; `undefined` when not given (an empty prefix is allowed and means every key). */
  readonly prefix: string | undefined
  /** `--yes`/`-y`. */
  readonly yes: boolean
  /** `--json`. */
  readonly json: boolean
  /** `--debug`. */
  readonly debug: boolean
  /** `--help`/`-h`. */
  readonly help: boolean
  /** `--version`/`-v`. */
  readonly version: boolean
  /** `--batch-size <n>`. */
  readonly batchSize: number
}

/** The help text (`cachette --help`). */
export const USAGE = `Usage: cachette [options] <command> [arguments]

Inspect and clear a cachette cache from the shell. The cache is configured
by the CACHE_* environment variables your app reads (Cache.fromEnv()), or
by --config <file>.

Commands:
  get <key>             print the value stored at <key>; a miss prints nothing
                        on stdout and exits with 1
  delete <key...>       delete keys (asks first); exits with 1 if one was missing
  keys [--prefix <p>]   list the keys, or those starting with <p>
  clear                 remove every entry of the cache (asks first)
  clear --prefix <p>    remove only the entries whose keys start with <p>
                        (asks first)
  stats                 what the backend can tell: key count, memory, hits,
                        misses

Options:
  -c, --config <file>   read the configuration from a .json file, or from the
                        default export of a .js, .mjs, .cjs (or, with a
                        TypeScript loader, .ts) module, instead of the CACHE_*
                        environment variables
  -p, --prefix <p>      keys, clear: only keys starting with <p>
  -y, --yes             clear, delete: do not ask for confirmation (needed when
                        stdin is not a terminal)
      --json            get, keys, stats: print JSON
      --batch-size <n>  clear --prefix: keys per deleteMany call (default ${DEFAULT_BATCH_SIZE})
      --debug           print stack traces and the backend's log lines
  -h, --help            print this help
  -v, --version         print cachette's version

Keys are given and listed without CACHE_KEY_PREFIX, as your code uses them.

Exit codes:
  0  done
  1  miss or key not found, or the confirmation was declined
  2  usage or configuration error (nothing was changed)
  3  the backend failed (unreachable, timed out, refused)
`

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name)
}

/**
 * Parses and checks `argv` (without `node` and the script). Options may come
 * before or after the command; `--` ends the options, for keys starting
 * with `-`.
 * @throws {UsageError} for anything the command does not take.
 */
export function parseInvocation(argv: readonly string[]): Invocation {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const { values, positionals } = parsed
  const help = values.help === true
  const version = values.version === true
  const [name, ...args] = positionals
  const base = {
    config: values.config,
    prefix: values.prefix,
    yes: values.yes === true,
    json: values.json === true,
    debug: values.debug === true,
    help,
    version,
  }
  if (help || version) {
    return { ...base, command: undefined, args: [], batchSize: DEFAULT_BATCH_SIZE }
  }
  if (name === undefined) throw new UsageError('no command given')
  if (!isCommand(name)) throw new UsageError(`unknown command ${JSON.stringify(name)}`)
  const spec = COMMANDS[name]
  for (const option of Object.keys(values)) {
    if (!GLOBAL_OPTIONS.has(option) && !spec.options.includes(option)) {
      throw new UsageError(`${name} does not take --${option}`)
    }
  }
  if (spec.args === 'none' && args.length > 0) {
    throw new UsageError(
      `${name} takes no arguments, got ${args.map((a) => JSON.stringify(a)).join(' ')}` +
        (name === 'keys' || name === 'clear' ? ` (did you mean --prefix ${args[0]}?)` : ''),
    )
  }
  if (spec.args !== 'none' && args.length === 0) {
    throw new UsageError(`${name} needs ${spec.argName}`)
  }
  if (spec.args === 'one' && args.length > 1) {
    throw new UsageError(`${name} takes one key, got ${args.length}`)
  }
  if (args.includes('')) throw new UsageError('a key cannot be the empty string')
  let batchSize = DEFAULT_BATCH_SIZE
  if (values['batch-size'] !== undefined) {
    batchSize = Number(values['batch-size'])
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new UsageError(
        `--batch-size must be a positive integer, got ${JSON.stringify(values['batch-size'])}`,
      )
    }
  }
  return { ...base, command: name, args, batchSize }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      prefix: { type: 'string', short: 'p' },
      yes: { type: 'boolean', short: 'y' },
      json: { type: 'boolean' },
      debug: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      'batch-size': { type: 'string' },
    },
  })
}

/** Whether the command deletes entries, and so asks for confirmation unless `--yes`. */
export function isDestructive(command: CommandName): boolean {
  return command === 'clear' || command === 'delete'
}
