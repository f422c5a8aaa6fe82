/** Summaries of benchmark samples: median with min and max, and how they are printed. */

export interface Summary {
  median: number
  min: number
  max: number
  runs: number
}

export function summarize (values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length / 2
  const median = sorted.length % 2 === 1
    ? (sorted[Math.floor(middle)] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2
  return { median, min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN, runs: values.length }
}

/** Milliseconds with a precision that suits their size: 0.42, 12.3, 2104. */
export function ms (value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (value < 10) return value.toFixed(2)
  if (value < 100) return value.toFixed(1)
  return value.toFixed(0)
}

/** "12.3 (11.9–14.0)": median, then min–max. */
export function spread (summary: Summary | undefined): string {
  if (summary === undefined || summary.runs === 0) return 'n/a'
  return `${ms(summary.median)} (${ms(summary.min)}–${ms(summary.max)})`
}

/** Bytes in decimal megabytes (the unit of the targets): "41.2 MB". */
export function mb (bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`
}
