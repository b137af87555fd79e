/**
 * Template fragment caching with Nunjucks: an Express page whose sidebar,
 * article list and footer are cached fragments (`{% cache %}`), plus
 * `cache.fragment()` for a fragment rendered without a template tag.
 * `npx tsx examples/nunjucks/server.ts`, then open http://localhost:3000/
 * (PORT to change it). Reload: "Page rendered at" changes, the fragments'
 * "built at" times do not until they expire.
 */
import { join } from 'node:path'
import express from 'express'
import nunjucks from 'nunjucks'
import { Cache, makeTemplateFragmentKey } from '../../src/index.js'
import { installCache } from '../../src/templates/nunjucks.js'

const cache = new Cache({ CACHE_TYPE: 'SimpleCache', CACHE_DEFAULT_TIMEOUT: 300 })
const app = express()
const env = nunjucks.configure(join(import.meta.dirname, 'views'), {
  autoescape: true,
  express: app,
})
installCache(env, cache) // the {% cache %} tag

app.get('/', (req, res) => {
  const id = Number(req.query.user ?? 1)
  res.render('page.njk', {
    now: new Date().toISOString(),
    user: { id, name: `user ${id}` },
    articles: ['Caching views', 'Memoizing functions', 'Fragments'],
    slow: () => {
      const started = Date.now()
      while (Date.now() - started < 200) {} // an expensive fragment
      return Date.now() - started
    },
  })
})

// Engines without tags (EJS, Eta, JSX strings): the same keys through cache.fragment().
app.get('/badge', async (_req, res) => {
  const html = await cache.fragment('badge', '1m', () => `<b>built ${new Date().toISOString()}</b>`)
  res.send(html)
})

// App code invalidates fragments by key.
app.get('/forget', async (_req, res) => {
  await cache.delete(makeTemplateFragmentKey('footer'))
  await cache.delete(makeTemplateFragmentKey('sidebar', [1]))
  res.redirect('/')
})

const port = Number(process.env.PORT ?? 3000)
app.listen(port, () => console.log(`nunjucks example on http://localhost:${port}`))
