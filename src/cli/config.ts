/**
 * Where the `cachette` command gets its configuration: the `CACHE_*`
 * environment variables (as `Cache.fromEnv()` reads them), or a file given
 * with `--config`.
 */
import { access, readFile } from 'node:fs/promises'
import { extname, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { type ConfigRecord, configFromEnv, normalizeConfig } from '../core/config.js'
import { ConfigError } from '../core/errors.js'

/** The name configuration errors about the file itself are reported under. */
const FILE_OPTION = '--config'

const MODULE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'])

/**
 * The configuration, validated, with camelCase keys: from the file when
 * `file` is given (the environment is then not read at all, so the file
 * says everything), else from the `CACHE_*` variables of `env`.
 * @throws {ConfigError} naming the key at fault, or `--config` when the file
 * cannot be read or has the wrong shape.
 */
export async function loadConfig(
  file: string | undefined,
  env: Record<string, string | undefined>,
  cwd: string,
): Promise<ConfigRecord> {
  if (file === undefined) return normalizeConfig(configFromEnv(env), 'environment')
  const path = resolve(cwd, file)
  return normalizeConfig(await readConfigFile(path), path)
}

/**
 * The raw configuration object of a file: the parsed `.json`, or the default
 * export of a module (a function as default export is called and its result,
 * awaited, taken).
 */
async function readConfigFile(path: string): Promise<unknown> {
  const ext = extname(path).toLowerCase()
  if (ext === '.json') {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      throw new ConfigError(FILE_OPTION, `cannot read ${path}: ${(error as Error).message}`, {
        cause: error,
      })
    }
    try {
      return checkedObject(JSON.parse(text), path)
    } catch (error) {
      if (error instanceof ConfigError) throw error
      throw new ConfigError(FILE_OPTION, `${path} is not valid JSON: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }
  if (!MODULE_EXTENSIONS.has(ext)) {
    throw new ConfigError(
      FILE_OPTION,
      `expected a .json, .js, .mjs, .cjs or .ts file, got ${JSON.stringify(path)}`,
    )
  }
  try {
    await access(path)
  } catch (error) {
    throw new ConfigError(FILE_OPTION, `cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  let mod: { default?: unknown }
  try {
    mod = (await import(pathToFileURL(path).href)) as { default?: unknown }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new ConfigError(
        FILE_OPTION,
        `Node cannot load ${path} by itself: run cachette with a TypeScript loader (node --import tsx ...), or write the configuration as .mjs or .json`,
        { cause: error },
      )
    }
    throw new ConfigError(FILE_OPTION, `cannot load ${path}: ${(error as Error).message}`, {
      cause: error,
    })
  }
  let config = mod.default
  if (typeof config === 'function') config = await (config as () => unknown)()
  return checkedObject(config, path)
}

function checkedObject(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      FILE_OPTION,
      `${path} must hold (as its default export, for a module) an object of CACHE_* or camelCase keys`,
    )
  }
  return value as Record<string, unknown>
}
