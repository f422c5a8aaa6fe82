/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for the tests of
 * `natmapper serve --metrics`: every line is checked against the format, and the samples are
 * returned. Throws, naming the line, at the first thing a Prometheus server would reject or
 * that the format's rules forbid (a TYPE after its samples, a family split in two, a sample
 * repeated).
 */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*'
/** A label value: any character but a backslash, double quote or line feed, or one of their escapes. */
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"'
const VALUE = '(?:[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|NaN|[-+]Inf)'
const HELP = new RegExp(`^# HELP (${METRIC_NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`)
const TYPE = new RegExp(`^# TYPE (${METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$`)
const SAMPLE = new RegExp(`^(${METRIC_NAME})(?:\\{((?:${LABEL_NAME}=${LABEL_VALUE}(?:,${LABEL_NAME}=${LABEL_VALUE})*)?,?)\\})? (${VALUE})(?: -?\\d+)?$`)
const LABEL = new RegExp(`(${LABEL_NAME})=(${LABEL_VALUE})`, 'g')

function unescape (quoted: string): string {
  return quoted.slice(1, -1).replace(/\\(.)/g, (_, char: string) => char === 'n' ? '\n' : char)
}

export function readExposition (text: string): { samples: Sample[], types: Map<string, string>, help: Map<string, string> } {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a line feed')
  const types = new Map<string, string>()
  const help = new Map<string, string>()
  const samples: Sample[] = []
  const seen = new Set<string>()
  /** Families whose lines have ended (another family's line came after them). */
  const closed = new Set<string>()
  let current: string | undefined
  const enter = (family: string, number: number): void => {
    if (current === family) return
    if (closed.has(family)) throw new Error(`line ${number}: the lines of ${family} are not together`)
    if (current !== undefined) closed.add(current)
    current = family
  }
  const lines = text.slice(0, -1).split('\n')
  lines.forEach((line, index) => {
    const number = index + 1
    if (line === '') return
    const helpMatch = HELP.exec(line)
    if (helpMatch !== null) {
      const [, name = '', docstring = ''] = helpMatch
      if (help.has(name)) throw new Error(`line ${number}: a second HELP for ${name}`)
      enter(name, number)
      help.set(name, docstring)
      return
    }
    const typeMatch = TYPE.exec(line)
    if (typeMatch !== null) {
      const [, name = '', type = ''] = typeMatch
      if (types.has(name)) throw new Error(`line ${number}: a second TYPE for ${name}`)
      if (samples.some((sample) => sample.name === name)) throw new Error(`line ${number}: TYPE of ${name} after its samples`)
      enter(name, number)
      types.set(name, type)
      return
    }
    if (line.startsWith('#')) throw new Error(`line ${number}: not a HELP or TYPE line: ${JSON.stringify(line)}`)
    const sample = SAMPLE.exec(line)
    if (sample === null) throw new Error(`line ${number}: not a sample: ${JSON.stringify(line)}`)
    const [, name = '', labelText = '', valueText = ''] = sample
    const labels: Record<string, string> = {}
    for (const [, label = '', quoted = ''] of labelText.matchAll(LABEL)) {
      if (label.startsWith('__')) throw new Error(`line ${number}: label ${label} is reserved`)
      if (label in labels) throw new Error(`line ${number}: label ${label} twice`)
      labels[label] = unescape(quoted)
    }
    enter(name, number)
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
    if (seen.has(key)) throw new Error(`line ${number}: the same sample twice: ${line}`)
    seen.add(key)
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText)
    samples.push({ name, labels, value })
  })
  return { samples, types, help }
}
