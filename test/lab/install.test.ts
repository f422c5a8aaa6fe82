/**
 * The front door: lab/install.sh (README's first command and .ci/run both use it) and `npm run demo`
 * where the lab cannot be built. Needs root like the lab suites, but builds no lab.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { labToolsSuite, ROOT } from '../helpers/lab.js'

const NOBODY = 65534
const temporary: string[] = []
after(() => { for (const dir of temporary) rmSync(dir, { recursive: true, force: true }) })

function temporaryDirectory (owner?: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'natmapper-install-'))
  temporary.push(dir)
  if (owner !== undefined) chownSync(dir, owner, owner)
  return dir
}

/** Runs a command as root in a network namespace of its own with no interface up: no network. */
function offline (command: string[], env: Record<string, string> = {}): { status: number | null, stdout: string, stderr: string } {
  const result = spawnSync('unshare', ['--net', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...command],
    { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** The same, as the unprivileged user nobody. */
function offlineAsNobody (command: string[], home: string): { status: number | null, stdout: string, stderr: string } {
  return offline(['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'env', `HOME=${home}`, ...command])
}

labToolsSuite('lab/install.sh and the demo on a new machine', () => {
  it('with empty package lists (a brand-new machine) runs apt-get update and every package resolves', () => {
    const lists = temporaryDirectory()
    const result = spawnSync('bash', ['lab/install.sh', '--simulate'], {
      cwd: ROOT, encoding: 'utf8', timeout: 300_000, env: { ...process.env, NATMAPPER_APT_LISTS: lists }
    })
    assert.equal(result.status, 0, result.stderr + result.stdout)
    assert.match(result.stdout, /updating the package lists \(apt-get update\)/)
    assert.match(result.stdout, /resolved: .*miniupnpd-nftables/)
    assert.ok(readdirSync(lists).some((name) => name.includes('_Packages')), `apt-get update filled ${lists}: ${readdirSync(lists).join(' ')}`)
  })

  it('on a machine that has every tool changes nothing and needs no network', () => {
    const result = offline(['bash', 'lab/install.sh'])
    assert.equal(result.status, 0, result.stderr + result.stdout)
    assert.equal(result.stdout.trim(), 'lab/install.sh: every lab tool is installed')
  })

  it('refuses to run without root, in one line, exit 2', () => {
    const result = offlineAsNobody(['bash', 'lab/install.sh'], temporaryDirectory(NOBODY))
    assert.equal(result.status, 2)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /^lab\/install\.sh: must run as root.*\n$/)
  })

  it('`npm run demo` without root prints one line saying what to run and exits 2, without the network', () => {
    const result = offlineAsNobody(['npm', 'run', 'demo'], temporaryDirectory(NOBODY))
    assert.equal(result.status, 2, result.stderr + result.stdout)
    // npm echoes the script it runs on stdout ("> natmapper@x demo", "> node ..."); ours is the rest.
    const ours = (result.stdout + result.stderr).split('\n').filter((line) => line.trim() !== '' && !line.startsWith('> '))
    assert.equal(ours.length, 1, ours.join('\n'))
    assert.match(ours[0] ?? '', /^natmapper demo: cannot build the lab: .*root.*bash lab\/install\.sh && npm ci && npm run demo$/)
  })

  it('.ci/run runs the demo line of README.md, and that line installs through lab/install.sh', () => {
    const extracted = spawnSync('bash', ['scripts/readme-demo-command.sh'], { cwd: ROOT, encoding: 'utf8' })
    assert.equal(extracted.status, 0, extracted.stderr)
    assert.equal(extracted.stdout, 'bash lab/install.sh && npm ci && npm run demo\n')
    assert.ok(readFileSync(join(ROOT, 'README.md'), 'utf8').includes('\n' + extracted.stdout))
    const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8')
    assert.match(ci, /^demo=\$\(bash scripts\/readme-demo-command\.sh\)$/m)
    assert.match(ci, /^bash -euo pipefail -c "\$demo"$/m)
  })
})
