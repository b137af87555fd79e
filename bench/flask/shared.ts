/**
 * What the flask group and its Node cluster app share: the worker count and
 * the 1 KiB page, built by the same rule as `page()` in bench/flask/app.py
 * (the group checks both apps answer the same bytes). A module of its own,
 * with no side effects: bench/flask/cluster.ts starts its app when run.
 */

/** Workers on each side: gunicorn runs `--workers 2`, node:cluster forks 2. */
export const WORKERS = 2

/** 16 list items and a padding paragraph, exactly `size` bytes (ASCII). */
export function flaskPage(size = 1024): string {
  let items = ''
  for (let i = 0; i < 16; i++) {
    const n = String(i).padStart(2, '0')
    items += `<li><a href="/items/${n}">Item number ${n}</a></li>\n`
  }
  const start =
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    `<title>cachette bench</title></head>\n<body><h1>Catalogue</h1>\n<ul>\n${items}`
  const end = '</ul>\n</body></html>\n'
  const pad = size - start.length - end.length - '<p></p>\n'.length
  return `${start}<p>${'.'.repeat(pad)}</p>\n${end}`
}
