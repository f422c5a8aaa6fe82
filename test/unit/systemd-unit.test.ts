import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { describe, it } from 'node:test'
import { parseCommandLine } from '../../src/cli/args.js'

// The systemd unit shipped in the package (systemd/natmapper.service), checked by systemd itself:
// `systemd-analyze verify` (from Debian's systemd package, which lab/install.sh installs) reads it
// as systemd would. verify also checks that ExecStart's program exists, and natmapper is not
// installed on this machine: the copy verified names this Node and the built CLI instead, the
// rest of the unit byte for byte. verify exits 0 even on unknown keys and bad values (it only
// warns), so any word on its output fails the test.

const ROOT = new URL('../../', import.meta.url).pathname
const UNIT = readFileSync(`${ROOT}systemd/natmapper.service`, 'utf8')
const INSTALLED_COMMAND = '/usr/local/bin/natmapper '

function directives (text: string): Map<string, string[]> {
  const found = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (match === null) continue
    const [, key = '', value = ''] = match
    found.set(key, [...(found.get(key) ?? []), value])
  }
  return found
}

describe('the systemd unit', () => {
  it('passes systemd-analyze verify with no warning', () => {
    assert.ok(UNIT.includes(`\nExecStart=${INSTALLED_COMMAND}`), 'ExecStart runs the installed command')
    const directory = mkdtempSync(`${tmpdir()}/natmapper-unit-`)
    try {
      const copy = UNIT.replace(`\nExecStart=${INSTALLED_COMMAND}`, `\nExecStart=${process.execPath} ${ROOT}dist/cli/main.js `)
      writeFileSync(`${directory}/natmapper.service`, copy)
      const verify = spawnSync('systemd-analyze', ['verify', `${directory}/natmapper.service`], { encoding: 'utf8' })
      assert.equal(verify.error, undefined, 'systemd-analyze runs (lab/install.sh installs Debian\'s systemd package)')
      assert.equal(`${verify.stdout}${verify.stderr}`, '', 'no warning')
      assert.equal(verify.status, 0)

      // The check can fail: a misspelt key and a bad value are reported.
      writeFileSync(`${directory}/natmapper.service`, copy.replace('\nRestart=on-failure', '\nRestart=sometimes').replace('\nProtectSystem=', '\nProtectSistem='))
      const broken = spawnSync('systemd-analyze', ['verify', `${directory}/natmapper.service`], { encoding: 'utf8' })
      assert.match(broken.stderr, /Failed to parse service restart specifier, ignoring: sometimes/)
      assert.match(broken.stderr, /Unknown key 'ProtectSistem'/)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  })

  it('restarts on failure, not on a bad config; sandboxed with no capability; its socket where status looks', () => {
    const unit = directives(UNIT)
    const one = (key: string): string | undefined => {
      const values = unit.get(key)
      assert.equal(values?.length, 1, `${key} set once`)
      return values?.[0]
    }
    assert.equal(one('Restart'), 'on-failure')
    assert.equal(one('RestartPreventExitStatus'), '2', 'exit 2 is a bad config file')
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID')
    assert.equal(one('DynamicUser'), 'yes')
    assert.equal(one('CapabilityBoundingSet'), '', 'no capability at all')
    assert.equal(one('AmbientCapabilities'), '')
    assert.equal(one('NoNewPrivileges'), 'yes')
    assert.equal(one('ProtectSystem'), 'strict')
    assert.equal(one('ProtectHome'), 'yes')
    assert.equal(one('RuntimeDirectory'), 'natmapper', 'the status socket goes in /run/natmapper, where natmapper status looks')
    assert.equal(one('RuntimeDirectoryMode'), '0700')
    assert.equal(unit.get('PrivateNetwork'), undefined, 'it needs the host\'s network')
    assert.deepEqual(one('RestrictAddressFamilies')?.split(' '), ['AF_UNIX', 'AF_INET', 'AF_INET6', 'AF_NETLINK'])
    assert.equal(unit.get('ProcSubset'), undefined, '/proc/net/route must stay readable')
    assert.equal(unit.get('MemoryDenyWriteExecute'), undefined, 'V8 writes the code it runs')
    // The command line it runs is one natmapper accepts.
    const command = one('ExecStart')?.slice(INSTALLED_COMMAND.length).split(' ') ?? []
    assert.deepEqual(parseCommandLine(command), { name: 'serve', options: { families: ['IPv4'], json: false, verbose: false }, config: '/etc/natmapper.conf' })
  })

  it('ships in the package, with the example config', () => {
    const manifest = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { files: string[] }
    assert.ok(manifest.files.includes('systemd'), JSON.stringify(manifest.files))
  })
})
