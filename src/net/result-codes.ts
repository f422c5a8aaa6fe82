/**
 * Builds the number → name lookup for a protocol's result-code table (name → number). Codes the
 * table lacks are named `UNKNOWN_<n>`: gateways send codes from later RFCs, and the number is kept.
 */
export function resultCodeNamer (table: Readonly<Record<string, number>>): (code: number) => string {
  const names = new Map(Object.entries(table).map(([name, code]) => [code, name]))
  return (code) => names.get(code) ?? `UNKNOWN_${code}`
}
