/**
 * fragments: a Nunjucks page with 20 `{% cache %}` fragments rendered on a
 * hit, against the same page rendered without the tag (every fragment body
 * rendered each time: what caching saves) and against the page with every
 * fragment precomputed and passed in the context (what a perfect cache could
 * do: no lookup at all). A plain-JS page built with `cache.fragment()` over
 * the same entries is a reference without Nunjucks.
 */
import nunjucks from 'nunjucks'
import { Cache, type Timeout } from '../../src/index.js'
import { installCache, renderAsync } from '../../src/templates/nunjucks.js'
import type { Group, GroupContext } from '../lib/group.js'
import { type Comparison, compare, opLoop, ratioOf, US_PER_OP } from '../lib/measure.js'
import type { GroupResult, Headline } from '../lib/report.js'

/** Fragments per page. */
const FRAGMENTS = 20
/** Items per fragment (the loop in each fragment body). */
const ITEMS = 5
const TTL_S = 300
const FRAGMENT_NAME = 'frag'

const CACHED = 'cachette {% cache %} page, every fragment a hit'
const NO_TAG = 'same page without {% cache %} (every fragment rendered)'
const PRECOMPUTED = 'same page, fragments precomputed (passed in the context, output safe)'
const PLAIN_JS = 'plain JS page over cache.fragment() hits (no Nunjucks)'

/** Template names in the in-memory loader. */
const PAGE_CACHED = 'page-cached.njk'
const PAGE_NO_TAG = 'page-no-tag.njk'
const PAGE_PRECOMPUTED = 'page-precomputed.njk'
const fragmentTemplate = (i: number): string => `fragment-${i}.njk`

interface Item {
  readonly id: number
  readonly name: string
  readonly price: string
}

interface Section {
  readonly title: string
  readonly items: readonly Item[]
}

interface PageContext {
  readonly title: string
  readonly sections: readonly Section[]
  readonly frags?: readonly string[]
}

// ---- the templates -------------------------------------------------------------

/**
 * The body of fragment `i`: a section over its 5 items, every field
 * autoescaped. 300–350 bytes of HTML with the data below.
 */
function fragmentBody(i: number): string {
  return (
    `<section class="card" id="s${i}"><h2>{{ sections[${i}].title }}</h2><ul>` +
    `{% for item in sections[${i}].items %}\n` +
    '<li><a href="/p/{{ item.id }}">{{ item.name }}</a> {{ item.price }}</li>' +
    '{% endfor %}</ul></section>'
  )
}

/** The page around the 20 fragments, each given by `fragment(i)`. */
function page(fragment: (i: number) => string): string {
  const parts = Array.from({ length: FRAGMENTS }, (_, i) => fragment(i))
  return (
    '<!doctype html>\n<html><head><title>{{ title }}</title></head>\n' +
    `<body><h1>{{ title }}</h1>\n<main>\n${parts.join('\n')}\n</main></body></html>\n`
  )
}

function templates(): Map<string, string> {
  const t = new Map<string, string>()
  t.set(
    PAGE_CACHED,
    page((i) => `{% cache ${TTL_S}, "${FRAGMENT_NAME}", ${i} %}${fragmentBody(i)}{% endcache %}`),
  )
  t.set(PAGE_NO_TAG, page(fragmentBody))
  t.set(
    PAGE_PRECOMPUTED,
    page((i) => `{{ frags[${i}] | safe }}`),
  )
  for (let i = 0; i < FRAGMENTS; i++) t.set(fragmentTemplate(i), fragmentBody(i))
  return t
}

/** Serves the templates above from memory; `noCache: false` lets Nunjucks keep each compiled template. */
class MemoryLoader implements nunjucks.ILoader {
  readonly #sources: ReadonlyMap<string, string>

  constructor(sources: ReadonlyMap<string, string>) {
    this.#sources = sources
  }

  getSource(name: string): nunjucks.LoaderSource {
    const src = this.#sources.get(name)
    if (src === undefined) throw new Error(`fragments: no template ${name}`)
    return { src, path: name, noCache: false }
  }
}

// ---- the data ------------------------------------------------------------------

/** Some names need escaping (&, quotes, <, >), most do not, as in real listings. */
const NAMES = [
  'Espresso beans 1 kg',
  'Tom\'s "Best" tea & biscuits',
  'Milk frother',
  'Ceramic mug <large>',
  'Oat milk, 6 pack',
  'Grinder & scale set',
  'Filter papers x100',
]

function sections(): Section[] {
  return Array.from({ length: FRAGMENTS }, (_, s) => ({
    title: s % 4 === 1 ? `Deals & offers #${s}` : `Shelf ${s}: coffee corner`,
    items: Array.from({ length: ITEMS }, (_, j) => {
      const id = 1000 + s * ITEMS + j
      return {
        id,
        name: NAMES[(s + j) % NAMES.length] as string,
        price: `${(3 + ((id * 37) % 40)).toFixed(0)}.${String((id * 13) % 100).padStart(2, '0')}`,
      }
    }),
  }))
}

// ---- the plain-JS reference ---------------------------------------------------------

/** Nunjucks's autoescape (`lib.escape`): the same six characters, the same entities. */
const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '"': '&quot;',
  "'": '&#39;',
  '<': '&lt;',
  '>': '&gt;',
  '\\': '&#92;',
}
const ESCAPE_RE = /[&"'<>\\]/g
const escapeHtml = (s: string): string => s.replace(ESCAPE_RE, (c) => ESCAPES[c] as string)

function renderSectionJs(i: number, section: Section): string {
  let html = `<section class="card" id="s${i}"><h2>${escapeHtml(section.title)}</h2><ul>`
  for (const item of section.items) {
    html += `\n<li><a href="/p/${item.id}">${escapeHtml(item.name)}</a> ${escapeHtml(item.price)}</li>`
  }
  return `${html}</ul></section>`
}

/** The page of {@link page} built in JS, each section through `cache.fragment()` with the tag's key. */
async function renderPageJs(cache: Cache, ctx: PageContext): Promise<string> {
  const title = escapeHtml(ctx.title)
  let html = `<!doctype html>\n<html><head><title>${title}</title></head>\n<body><h1>${title}</h1>\n<main>\n`
  for (let i = 0; i < FRAGMENTS; i++) {
    const section = ctx.sections[i] as Section
    if (i > 0) html += '\n'
    html += await cache.fragment(FRAGMENT_NAME, TTL_S, () => renderSectionJs(i, section), [i])
  }
  return `${html}\n</main></body></html>\n`
}

// ---- the group ---------------------------------------------------------------------

/** A Cache that counts stores: after the prefill, a store means a fragment missed. */
class CountingCache extends Cache {
  stores = 0

  override set(key: string, value: unknown, timeout?: Timeout): Promise<boolean> {
    this.stores++
    return super.set(key, value, timeout)
  }
}

export const fragmentsGroup: Group = {
  name: 'fragments',
  async run(ctx: GroupContext): Promise<GroupResult> {
    const rounds = ctx.quick ? 3 : 11
    const sliceMs = ctx.quick ? 50 : 400
    const cache = new CountingCache({ CACHE_TYPE: 'SimpleCache', CACHE_THRESHOLD: 10_000 })
    const env = new nunjucks.Environment(new MemoryLoader(templates()), { autoescape: true })
    installCache(env, cache)

    const data: PageContext = { title: 'Coffee & tea <shop>', sections: sections() }
    const frags: string[] = []
    for (let i = 0; i < FRAGMENTS; i++)
      frags.push(await renderAsync(env, fragmentTemplate(i), data))
    const precomputedCtx: PageContext = { ...data, frags }

    // Prefill (the first render of the cached page misses every fragment and stores it),
    // then check that all four produce the same bytes.
    const first = await renderAsync(env, PAGE_CACHED, data)
    if (cache.stores !== FRAGMENTS) {
      throw new Error(`fragments: prefill stored ${cache.stores} fragments, expected ${FRAGMENTS}`)
    }
    const outputs = new Map<string, string>([
      [`${CACHED} (miss)`, first],
      [CACHED, await renderAsync(env, PAGE_CACHED, data)],
      [NO_TAG, await renderAsync(env, PAGE_NO_TAG, data)],
      [PRECOMPUTED, await renderAsync(env, PAGE_PRECOMPUTED, precomputedCtx)],
      [PLAIN_JS, await renderPageJs(cache, data)],
    ])
    const expected = outputs.get(NO_TAG) as string
    for (const [name, html] of outputs) {
      if (html !== expected) {
        throw new Error(
          `fragments: "${name}" rendered ${html.length} bytes that differ from the page without ` +
            `the tag (${expected.length} bytes):\n${html}\n---\n${expected}`,
        )
      }
    }
    if (cache.stores !== FRAGMENTS) {
      throw new Error(`fragments: ${cache.stores - FRAGMENTS} fragments missed after the prefill`)
    }
    const fragmentBytes = frags.map((f) => Buffer.byteLength(f))
    ctx.log(
      `fragments: page ${Buffer.byteLength(expected)} bytes, fragments ` +
        `${Math.min(...fragmentBytes)}–${Math.max(...fragmentBytes)} bytes`,
    )

    const opts = { sliceMs, batch: 20, unit: US_PER_OP }
    const comparison: Comparison = await compare({
      id: 'fragments.page',
      title: `fragments: page with ${FRAGMENTS} fragments of ${ITEMS} items, rendered asynchronously`,
      unit: US_PER_OP,
      rounds,
      contenders: [
        {
          name: NO_TAG,
          role: 'limit',
          sample: opLoop(() => renderAsync(env, PAGE_NO_TAG, data), opts),
        },
        {
          name: PRECOMPUTED,
          role: 'limit',
          sample: opLoop(() => renderAsync(env, PAGE_PRECOMPUTED, precomputedCtx), opts),
        },
        {
          name: CACHED,
          role: 'subject',
          sample: opLoop(() => renderAsync(env, PAGE_CACHED, data), opts),
        },
        {
          name: PLAIN_JS,
          role: 'reference',
          sample: opLoop(() => renderPageJs(cache, data), opts),
        },
      ],
      log: ctx.log,
    })
    if (cache.stores !== FRAGMENTS) {
      throw new Error(
        `fragments: ${cache.stores - FRAGMENTS} fragments missed the cache during the run`,
      )
    }

    const headlines: Headline[] = [
      { label: 'cached hit ÷ no tag (time)', ratio: ratioOf(comparison, CACHED, NO_TAG) },
      { label: 'cached hit ÷ precomputed (time)', ratio: ratioOf(comparison, CACHED, PRECOMPUTED) },
    ]
    return {
      group: 'fragments',
      description:
        `µs per page: a Nunjucks page (autoescape on) with ${FRAGMENTS} fragments, each a section ` +
        `looping over ${ITEMS} items with autoescaped fields (${Math.min(...fragmentBytes)}–` +
        `${Math.max(...fragmentBytes)} bytes of HTML; the page is ${Buffer.byteLength(expected)} ` +
        'bytes). Every contender renders the same bytes (checked before timing) through ' +
        '`renderAsync`, awaited one page at a time.',
      measuredAt: new Date().toISOString(),
      mode: ctx.quick ? 'quick' : 'full',
      settings: {
        rounds,
        sliceMs,
        fragments: FRAGMENTS,
        itemsPerFragment: ITEMS,
        pageBytes: Buffer.byteLength(expected),
        timeoutSeconds: TTL_S,
      },
      comparisons: [comparison],
      headlines,
      notes: [
        `The cached page wraps each fragment in {% cache ${TTL_S}, "${FRAGMENT_NAME}", i %} (${FRAGMENTS} ` +
          'distinct keys) with the tag of cachette/nunjucks (installCache) on a Cache over SimpleCache. ' +
          'It is rendered once before timing, and every timed fragment is a hit (checked by counting ' +
          'stores: none after the prefill).',
        'No tag: the same page and fragment bodies without {% cache %}, so every fragment body is ' +
          'rendered on every page; cached ÷ no tag below 1 is what the cache saves on these small bodies.',
        'Precomputed: the page outputs each fragment from a string already in the context ' +
          '({{ frags[i] | safe }}): what a cache with no lookup cost could do, so cached ÷ precomputed is ' +
          'the whole cost of the 20 lookups inside Nunjucks.',
        'Plain JS: the same page built by string concatenation, each section through ' +
          'cache.fragment("frag", 300, render, [i]) (the same keys and entries as the tag): the cost ' +
          'of 20 fragment hits without Nunjucks.',
        'The bench runs src/ through tsx, which compiles with esbuild keepNames: a named closure ' +
          'created per call costs an Object.defineProperty. The tag creates none on the hit path.',
      ],
    }
  },
}
