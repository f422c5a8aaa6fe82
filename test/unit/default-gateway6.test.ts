import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { NoDefaultGatewayError } from '../../src/errors.js'
import type { RouteSources } from '../../src/net/default-gateway.js'
import { parseBsdRouteGet } from '../../src/net/default-gateway.js'
import { chooseSourceAddress6, findDefaultGateway6, parseBsdNetstatInet6, parseLinuxIfInet6, parseLinuxIPv6RouteTable, parseWindowsRoutePrint6 } from '../../src/net/default-gateway6.js'
import { resolveDiscoverOptions } from '../../src/options.js'
import { recorded } from '../helpers/route-fixtures.js'

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/routes/${name}`, import.meta.url), 'utf8')

function sources (platform: NodeJS.Platform, output: string): RouteSources {
  return { platform, readFile: async () => output, run: async () => output }
}

describe('IPv6 default gateway and source address', () => {
  it('reads /proc/net/ipv6_route: default routes via a gateway only, link-local next hops with their zone', () => {
    assert.deepEqual(parseLinuxIPv6RouteTable(fixture('linux-proc-net-ipv6_route.txt')), [
      { gateway: 'fe80::211:22ff:fe33:4455%wlan0', interfaceName: 'wlan0', metric: 0x400 },
      { gateway: '2001:db8:77::1', interfaceName: 'eth0', metric: 0x400 }
    ])
  })

  it('ignores garbage lines', () => {
    assert.deepEqual(parseLinuxIPv6RouteTable('x\n\n00 00 zz\n'), [])
    assert.deepEqual(parseLinuxIfInet6('nonsense\n'), [])
  })

  it('reads /proc/net/if_inet6 flags and scope', () => {
    const addresses = parseLinuxIfInet6(fixture('linux-proc-net-if_inet6.txt'))
    const byAddress = new Map(addresses.map((a) => [a.address, a]))
    assert.equal(byAddress.get('2001:db8:77:0:1a2b:3c4d:5e6f:7081')?.temporary, true)
    assert.equal(byAddress.get('2001:db8:77::2')?.temporary, false)
    assert.equal(byAddress.get('2001:db8:77:0:211:22ff:fe33:4456')?.unusable, true, 'deprecated')
    assert.equal(byAddress.get('2001:db8:99::9')?.unusable, true, 'tentative')
    assert.equal(byAddress.get('fe80::211:22ff:fe33:4456')?.global, false)
    assert.equal(byAddress.get('fd00::5')?.global, false, 'ULA')
    assert.equal(byAddress.get('::1')?.global, false)
  })

  it('chooses a stable global address, never link-local; temporary only when allowed', () => {
    const addresses = parseLinuxIfInet6(fixture('linux-proc-net-if_inet6.txt'))
    assert.equal(chooseSourceAddress6(addresses, 'eth0'), '2001:db8:77::2')
    assert.equal(chooseSourceAddress6(addresses, 'eth0', true), '2001:db8:77::2', 'stable still preferred')
    assert.equal(chooseSourceAddress6(addresses, 'wlan0'), undefined)
    assert.equal(chooseSourceAddress6(addresses, 'wlan0', true), '2001:db8:99::7')
    assert.equal(chooseSourceAddress6(addresses, 'lo'), undefined)
  })

  it('prefers the lowest metric and says when there is no IPv6 default route', async () => {
    const table = fixture('linux-proc-net-ipv6_route.txt')
    assert.equal((await findDefaultGateway6(sources('linux', table))).metric, 0x400)
    await assert.rejects(findDefaultGateway6(sources('linux', '')), NoDefaultGatewayError)
    await assert.rejects(findDefaultGateway6(sources('win32', '')), NoDefaultGatewayError)
  })

  it('validates options.family and the gateway family', () => {
    assert.equal(resolveDiscoverOptions().family, 'IPv4')
    assert.equal(resolveDiscoverOptions({ family: 'IPv6', gateway: '::1' }).family, 'IPv6')
    assert.throws(() => resolveDiscoverOptions({ family: 'IPv5' as 'IPv6' }), /options\.family/)
    assert.throws(() => resolveDiscoverOptions({ family: 'IPv6', gateway: '127.0.0.1' }), /options\.gateway must be an IPv6 address/)
    assert.equal(resolveDiscoverOptions({ gateway: '::1' }).family, 'IPv6', 'inferred from the gateway')
    assert.throws(() => resolveDiscoverOptions({ family: 'IPv4', gateway: '::1' }), /options\.gateway must be an IPv4 address/)
    assert.throws(() => resolveDiscoverOptions({ allowTemporaryAddress: 1 as unknown as boolean }), /allowTemporaryAddress/)
  })
})

describe('IPv6 default gateway beyond Linux (recorded command output)', () => {
  /** route(8) first, netstat(1) when route(8) fails: `outputs` answers each command. */
  function commands (platform: NodeJS.Platform, outputs: Record<string, string | Error>): RouteSources & { ran: string[] } {
    const ran: string[] = []
    return {
      platform,
      ran,
      readFile: async () => { throw new Error('no /proc here') },
      run: async (command, args) => {
        const line = [command, ...args].join(' ')
        ran.push(line)
        const output = outputs[line]
        if (output === undefined || output instanceof Error) throw output ?? new Error(`unexpected command ${line}`)
        return output
      }
    }
  }

  it('macOS: route -n get -inet6 default, a link-local next hop with its zone', async () => {
    assert.deepEqual(parseBsdRouteGet(recorded('macos-route-get-inet6-default.txt'), 'IPv6'),
      [{ gateway: 'fe80::1c2b:3cff:fe4d:5e6f%en0', interfaceName: 'en0', metric: 0 }])
    const sources = commands('darwin', { 'route -n get -inet6 default': recorded('macos-route-get-inet6-default.txt') })
    assert.equal((await findDefaultGateway6(sources)).gateway, 'fe80::1c2b:3cff:fe4d:5e6f%en0')
    assert.deepEqual(sources.ran, ['route -n get -inet6 default'], 'netstat only when route says nothing')
    // A link-local gateway printed without its zone gets the interface as one.
    assert.equal(parseBsdRouteGet('    gateway: fe80::1\n  interface: en1\n', 'IPv6')[0]?.gateway, 'fe80::1%en1')
    assert.deepEqual(parseBsdRouteGet(recorded('macos-route-get-default.txt'), 'IPv6'), [], 'an IPv4 answer is no IPv6 route')
  })

  it('FreeBSD: route -n get -inet6 default (with its fib line), and the IPv4 form', () => {
    assert.deepEqual(parseBsdRouteGet(recorded('freebsd-route-get-inet6-default.txt'), 'IPv6'),
      [{ gateway: 'fe80::a2b3:c4ff:fed5:e6f7%em0', interfaceName: 'em0', metric: 0 }])
    assert.deepEqual(parseBsdRouteGet(recorded('freebsd-route-get-default.txt')), [{ gateway: '192.168.1.1', interfaceName: 'em0', metric: 0 }])
  })

  it('macOS and FreeBSD: netstat -rn -f inet6 when route get fails; interface-scoped VPN defaults skipped', async () => {
    assert.deepEqual(parseBsdNetstatInet6(recorded('macos-netstat-rn-inet6.txt')), [{ gateway: 'fe80::1c2b:3cff:fe4d:5e6f%en0', interfaceName: 'en0', metric: 0 }])
    assert.deepEqual(parseBsdNetstatInet6(recorded('freebsd-netstat-rn-inet6.txt')), [{ gateway: '2001:db8:1234:5600::1', interfaceName: 'em0', metric: 0 }])
    const sources = commands('freebsd', {
      'route -n get -inet6 default': new Error('route: route has not been found'),
      'netstat -rn -f inet6': recorded('freebsd-netstat-rn-inet6.txt')
    })
    assert.equal((await findDefaultGateway6(sources)).gateway, '2001:db8:1234:5600::1')
    assert.deepEqual(sources.ran, ['route -n get -inet6 default', 'netstat -rn -f inet6'])
    await assert.rejects(findDefaultGateway6(commands('darwin', { 'netstat -rn -f inet6': 'Routing tables\n\nInternet6:\n' })), NoDefaultGatewayError)
  })

  it('Windows: route print -6 ::/0 in English, German and French, link-local next hops zoned by interface index; persistent routes ignored', async () => {
    assert.deepEqual(parseWindowsRoutePrint6(recorded('windows-route-print-6.txt')), [{ gateway: 'fe80::1a2b:3cff:fe4d:5e6f%12', interfaceName: '12', metric: 281 }])
    assert.deepEqual(parseWindowsRoutePrint6(recorded('windows-route-print-6-de.txt')), [{ gateway: 'fe80::3681:c4ff:fe12:3456%12', interfaceName: '12', metric: 281 }])
    assert.deepEqual(parseWindowsRoutePrint6(recorded('windows-route-print-6-fr.txt')), [{ gateway: '2001:db8:4321::1', interfaceName: '12', metric: 281 }])
    const sources = commands('win32', { 'route print -6 ::/0': recorded('windows-route-print-6.txt') })
    assert.equal((await findDefaultGateway6(sources)).gateway, 'fe80::1a2b:3cff:fe4d:5e6f%12')
    assert.deepEqual(parseWindowsRoutePrint6(recorded('windows-route-print.txt')), [], 'an IPv4 table has no IPv6 route')
  })
})
