/**
 * The picture in BENCHMARKS.md and the README: each protocol's discover + map (medians) beside
 * its floor and the reference clients, one panel per table, each on its own scale (PCP takes
 * milliseconds, UPnP tens of them). A bar longer than five floors is cut short and labelled.
 * Plain SVG, computed from the results like the rest of the report.
 */
import type { BenchResults } from './report.js'
import { ms, summarize } from './stats.js'

const WIDTH = 820
const LABEL_WIDTH = 390
const BAR_WIDTH = 330
const ROW = 20
const TITLE = 26
const GAP = 14

const escape = (text: string): string => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

function colour (client: string): string {
  if (client.startsWith('floor')) return '#9e9e9e'
  if (client.startsWith('natmapper')) return '#1f77b4'
  return '#ff7f0e'
}

export function renderChart (results: BenchResults): string {
  const parts: string[] = []
  let y = 34
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">discover + first mapping, median ms (grey: floor, blue: natmapper, orange: reference clients)</text>`)
  for (const [group, clients] of Object.entries(results.discovery)) {
    const rows = Object.entries(clients).map(([client, samples]) => ({ client, value: summarize(samples.map).median }))
      .filter((row) => Number.isFinite(row.value))
    if (rows.length === 0) continue
    const floors = rows.filter((row) => row.client.startsWith('floor')).map((row) => row.value)
    const cap = Math.max(...floors, 0) * 5 || Math.max(...rows.map((row) => row.value))
    const scale = Math.max(...rows.map((row) => Math.min(row.value, cap))) * 1.05
    parts.push(`<text x="10" y="${y + 16}" font-size="13" font-weight="bold">${escape(group)}</text>`)
    y += TITLE
    for (const row of rows) {
      const clipped = row.value > cap
      const width = Math.max(1, BAR_WIDTH * Math.min(row.value, cap) / scale)
      parts.push(`<text x="${LABEL_WIDTH - 6}" y="${y + 14}" font-size="11" text-anchor="end">${escape(row.client.length > 64 ? `${row.client.slice(0, 62)}…` : row.client)}</text>`)
      parts.push(`<rect x="${LABEL_WIDTH}" y="${y + 3}" width="${width.toFixed(1)}" height="${ROW - 6}" fill="${colour(row.client)}"${clipped ? ' fill-opacity="0.6"' : ''}/>`)
      parts.push(`<text x="${(LABEL_WIDTH + width + 5).toFixed(1)}" y="${y + 14}" font-size="11">${ms(row.value)}${clipped ? ' (bar cut)' : ''}</text>`)
      y += ROW
    }
    y += GAP
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif">`,
    `<rect width="${WIDTH}" height="${y}" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    ''
  ].join('\n')
}
