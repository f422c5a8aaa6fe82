#!/usr/bin/env node
// Runs every test file (unit tests and lab tests) in one node:test run, so the summary at the end
// counts them all. Lab suites need root; without it they report themselves as skipped, saying why,
// unless NATMAPPER_REQUIRE_LAB=1 (set by .ci/run), under which a lab that cannot run is a failure.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const only = process.argv.slice(2)
const files = only.length > 0
  ? only
  : ['test/unit', 'test/lab'].flatMap((dir) =>
      readdirSync(dir).filter((name) => name.endsWith('.test.ts')).sort().map((name) => join(dir, name)))

const result = spawnSync(process.execPath, [
  '--import', 'tsx',
  '--import', './test/helpers/network-guard.ts',
  '--test',
  '--test-reporter=spec',
  ...files
], { stdio: 'inherit' })
process.exit(result.status ?? 1)
