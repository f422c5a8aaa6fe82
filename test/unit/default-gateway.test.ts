import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { NoDefaultGatewayError } from '../../src/errors.js'
import { findDefaultGateway, parseBsdRouteGet, parseLinuxRouteTable, parseWindowsRoutePrint, type RouteSources } from '../../src/net/default-gateway.js'
import { recorded } from '../helpers/route-fixtures.js'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/routes/${name}`, import.meta.url), 'utf8')

function sources (platform: NodeJS.Platform, output: string): RouteSources {
  return { platform, readFile: async () => output, run: async () => output }
}

describe('default gateway lookup', () => {
  it('reads /proc/net/route (little-endian hex) and keeps only default routes via a gateway', () => {
    assert.deepEqual(parseLinuxRouteTable(fixture('linux-proc-net-route.txt'), 'LE'), [
      { gateway: '192.168.1.1', interfaceName: 'eth0', metric: 600 },
      { gateway: '192.168.254.1', interfaceName: 'wlan0', metric: 100 }
    ])
  })

  it('reads /proc/net/route on a big-endian host', () => {
    const text = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\tC0A80101\t0003\t0\t0\t0\t00000000\n'
    assert.deepEqual(parseLinuxRouteTable(text, 'BE'), [{ gateway: '192.168.1.1', interfaceName: 'eth0', metric: 0 }])
  })

  it('prefers the lowest metric', async () => {
    const route = await findDefaultGateway(sources('linux', fixture('linux-proc-net-route.txt')))
    assert.equal(route.interfaceName, 'wlan0')
  })

  it('reads macOS `route -n get default`', async () => {
    assert.deepEqual(await findDefaultGateway(sources('darwin', fixture('macos-route-get-default.txt'))),
      { gateway: '192.168.1.254', interfaceName: 'en0', metric: 0 })
  })

  it('reads Windows `route print` active routes, with our interface address, ignoring persistent ones', async () => {
    assert.deepEqual(parseWindowsRoutePrint(fixture('windows-route-print.txt')), [
      { gateway: '192.168.0.1', localAddress: '192.168.0.23', metric: 35 },
      { gateway: '10.8.0.1', localAddress: '10.8.0.6', metric: 281 }
    ])
    assert.equal((await findDefaultGateway(sources('win32', fixture('windows-route-print.txt')))).gateway, '192.168.0.1')
  })

  it('reads FreeBSD `route -n get default` (with its fib line)', async () => {
    assert.deepEqual(await findDefaultGateway(sources('freebsd', recorded('freebsd-route-get-default.txt'))),
      { gateway: '192.168.1.1', interfaceName: 'em0', metric: 0 })
  })

  it('reads Windows `route print` by shape, not by its translated headings: German and French, persistent routes ignored', () => {
    assert.deepEqual(parseWindowsRoutePrint(recorded('windows-route-print-de.txt')), [{ gateway: '192.168.178.1', localAddress: '192.168.178.20', metric: 25 }])
    assert.deepEqual(parseWindowsRoutePrint(recorded('windows-route-print-fr.txt')), [{ gateway: '192.168.1.254', localAddress: '192.168.1.42', metric: 35 }])
    // cmd writes in the OEM code page (850): decoded as UTF-8, every accented letter is U+FFFD.
    const asNodeReadsIt = recorded('windows-route-print-de.txt').replace(/[^ -~\r\n]/g, '\ufffd')
    assert.match(asNodeReadsIt, /St\ufffdndige Routen:/)
    assert.deepEqual(parseWindowsRoutePrint(asNodeReadsIt), parseWindowsRoutePrint(recorded('windows-route-print-de.txt')))
    // A persistent route alone is not in effect.
    const onlyPersistent = recorded('windows-route-print-fr.txt').replace(/^ +0\.0\.0\.0 +0\.0\.0\.0 +192\.168\.1\.254 .*\r?\n/m, '')
    assert.deepEqual(parseWindowsRoutePrint(onlyPersistent), [])
  })

  it('rejects with NoDefaultGatewayError when there is no default route or the table cannot be read', async () => {
    await assert.rejects(findDefaultGateway(sources('linux', 'Iface\tDestination\n')), NoDefaultGatewayError)
    await assert.rejects(findDefaultGateway(sources('darwin', 'route: writing to routing socket: not in table\n')), NoDefaultGatewayError)
    await assert.rejects(findDefaultGateway({ ...sources('linux', ''), readFile: async () => { throw new Error('EACCES') } }), (error: unknown) =>
      error instanceof NoDefaultGatewayError && error.code === 'ERR_NO_DEFAULT_GATEWAY')
    await assert.rejects(findDefaultGateway(sources('aix', '')), NoDefaultGatewayError)
  })

  it('ignores garbage lines', () => {
    assert.deepEqual(parseLinuxRouteTable('header\n\n\tx\neth0 00000000 zzzzzzzz 0003 0 0 0 00000000\n', 'LE'), [])
    assert.deepEqual(parseBsdRouteGet('gateway: fe80::1%en0\n'), [])
  })
})
