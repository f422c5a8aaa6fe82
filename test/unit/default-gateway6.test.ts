import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { NoDefaultGatewayError } from '../../src/errors.js'
import type { RouteSources } from '../../src/net/default-gateway.js'
import { chooseSourceAddress6, findDefaultGateway6, parseLinuxIfInet6, parseLinuxIPv6RouteTable } from '../../src/net/default-gateway6.js'
import { resolveDiscoverOptions } from '../../src/options.js'

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
