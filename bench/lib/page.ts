/**
 * The ~2 KB HTML page every HTTP benchmark serves. A module of its own, with
 * no side effects: the server scripts start their app when run as a child,
 * so importing one from another would start both.
 */

/** The benchmark page: a list of 32 links and a footer, about 2 KB. */
export function page(): string {
  const items = Array.from(
    { length: 32 },
    (_, i) => `<li><a href="/items/${i}">Item number ${String(i).padStart(2, '0')}</a></li>`,
  ).join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cachette bench</title></head>
<body><h1>Catalogue</h1>
<ul>
${items}
</ul>
<footer>${'Rendered by the benchmark. '.repeat(12)}</footer>
</body></html>
`
}
