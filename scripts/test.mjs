#!/usr/bin/env node
// Runs every test file (unit tests and lab tests) in one node:test run, so the summary at the end
// counts them all. Lab suites need root; without it they report themselves as skipped, saying why,
// unless NATMAPPER_REQUIRE_LAB=1 (set by .ci/run), under which a lab that cannot run is a failure.
//
// Usage: node scripts/test.mjs [--node PATH] [--exclude FILE]... [FILE...]
//   --node PATH (or NATMAPPER_TEST_NODE=PATH) runs the tests on another Node.js binary, e.g. one
//     from scripts/node-binaries.sh. Files that need a newer Node than that one (js-libp2p 3 needs
//     22) are left out of the default list and named in the output; naming one explicitly fails.
//   --exclude FILE leaves a file out of the default list (CI runs the scale test on one Node only).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

/** Test files that need at least this Node.js major version. */
const MINIMUM_NODE = { 'test/lab/libp2p.test.ts': 22 }

const args = process.argv.slice(2)
let node = process.env.NATMAPPER_TEST_NODE || process.execPath
const excluded = new Set()
const named = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--node' || args[i] === '--exclude') {
    const value = args[++i]
    if (value === undefined) fail(`${args[i - 1]} needs a value`)
    if (args[i - 1] === '--node') node = value
    else excluded.add(value)
  } else {
    named.push(args[i])
  }
}

const version = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' })
if (version.status !== 0) fail(`cannot run ${node}: ${version.stderr || version.error}`)
const major = Number(version.stdout.trim().split('.')[0])
const tooNew = (file) => (MINIMUM_NODE[file] ?? 0) > major

let files
if (named.length > 0) {
  const refused = named.filter(tooNew)
  if (refused.length > 0) fail(`${refused.join(', ')} need(s) Node.js ${refused.map((file) => MINIMUM_NODE[file]).join('/')}+; this is ${version.stdout.trim()} (use --node)`)
  files = named
} else {
  files = ['test/unit', 'test/lab'].flatMap((dir) =>
    readdirSync(dir).filter((name) => name.endsWith('.test.ts')).sort().map((name) => join(dir, name)))
    .filter((file) => !excluded.has(file))
  const left = files.filter(tooNew)
  if (left.length > 0) console.log(`# Node.js ${version.stdout.trim()}: not running ${left.join(', ')} (needs Node.js ${left.map((file) => MINIMUM_NODE[file]).join('/')}+)`)
  files = files.filter((file) => !tooNew(file))
}
console.log(`# ${node} (Node.js ${version.stdout.trim()}), ${files.length} test files`)

const result = spawnSync(node, [
  '--import', 'tsx',
  '--import', './test/helpers/network-guard.ts',
  '--test',
  '--test-reporter=spec',
  ...files
], { stdio: 'inherit' })
process.exit(result.status ?? 1)

function fail (message) {
  console.error(`scripts/test.mjs: ${message}`)
  process.exit(2)
}
