import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseIpRouteGet } from '../../src/net/route-to-internet.js'
import { recorded } from '../helpers/route-fixtures.js'

describe('the route the kernel uses: `ip route get` output', () => {
  const [policy4 = '', , policy6 = ''] = recorded('linux-ip-route-get-policy.txt').split('\n')
  const [wg4 = '', , wg6 = ''] = recorded('linux-ip-route-get-wg.txt').split('\n')

  it('a default route in a table chosen by ip rule: the next hop, interface, source and table', () => {
    assert.deepEqual(parseIpRouteGet(policy4), { gateway: '192.168.77.1', interfaceName: 'lan0', table: '100', localAddress: '192.168.77.2' })
    assert.deepEqual(parseIpRouteGet(policy6), { gateway: '2001:db8:77::1', interfaceName: 'lan0', table: '100', localAddress: '2001:db8:77::2' })
  })

  it("wg-quick's table: a point-to-point route has no next hop", () => {
    assert.deepEqual(parseIpRouteGet(wg4), { interfaceName: 'wg0', table: '51820', localAddress: '10.2.0.2' })
    assert.deepEqual(parseIpRouteGet(wg6), { interfaceName: 'wg0', table: '51820', localAddress: 'fd00:2::2' })
  })

  it('a link-local next hop gets its interface as zone; RFC 5549 "via inet6" is read', () => {
    // Recorded in the lab as policy6, with table 100's route via the router's link-local address.
    const linkLocal = '2001:4860:4860::8888 from :: via fe80::1 dev lan0 table 100 src 2001:db8:77::2 metric 1024 pref medium'
    assert.equal(parseIpRouteGet(linkLocal)?.gateway, 'fe80::1%lan0')
    assert.equal(parseIpRouteGet('8.8.8.8 via inet6 fe80::1 dev eth0 src 192.168.1.20 uid 1000')?.gateway, 'fe80::1%eth0')
    // The main table's route, as iproute2 prints it (no "table").
    assert.deepEqual(parseIpRouteGet('8.8.8.8 via 192.168.1.1 dev eth0 src 192.168.1.20 uid 1000 \n    cache \n'),
      { gateway: '192.168.1.1', interfaceName: 'eth0', localAddress: '192.168.1.20' })
  })

  it('no route, or nothing it can read: undefined', () => {
    for (const text of ['', '\n', 'unreachable 8.8.8.8 table 100 uid 0', 'blackhole 8.8.8.8 uid 0', 'garbage', '8.8.8.8 via not-an-address', 'x'.repeat(100_000)]) {
      assert.equal(parseIpRouteGet(text), undefined, text.slice(0, 40))
    }
    assert.equal(parseIpRouteGet('8.8.8.8 via 999.1.1.1 dev eth0')?.gateway, undefined)
  })
})
