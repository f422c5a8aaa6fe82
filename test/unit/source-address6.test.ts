import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { chooseSourceAddress6, parseLinuxIfInet6 } from '../../src/net/default-gateway6.js'

// /proc/net/if_inet6 of the lab's LAN host on the home profile (SLAAC with use_tempaddr=2, as
// desktops have it): a stable (EUI-64, flags 00) and a temporary (flags 01) address in the global
// prefix and in the ULA prefix, and the link-local address.
const HOME_HOST = `00000000000000000000000000000001 01 80 10 80       lo
fd77007700770000271632e718da2db7 02 40 00 01     lan0
20010db800770000000000fffe770002 02 40 00 00     lan0
20010db800770000418c10543781bc08 02 40 00 01     lan0
fe80000000000000000000fffe770002 02 40 20 80     lan0
fd77007700770000000000fffe770002 02 40 00 00     lan0
`

describe('which address an IPv6 pinhole is for (stable, temporary and ULA addresses on one host)', () => {
  const addresses = parseLinuxIfInet6(HOME_HOST)

  it('the stable global address: where a server wants to be reached', () => {
    assert.equal(chooseSourceAddress6(addresses, 'lan0'), '2001:db8:77::ff:fe77:2')
    assert.equal(chooseSourceAddress6(addresses, 'lan0', true), '2001:db8:77::ff:fe77:2', 'stable wins even when temporary ones are allowed')
  })

  it('a temporary one only when the caller allows it (allowTemporaryAddress) and there is no stable one; never a ULA or link-local one', () => {
    const withoutStable = addresses.filter((entry) => entry.address !== '2001:db8:77::ff:fe77:2')
    assert.equal(chooseSourceAddress6(withoutStable, 'lan0'), undefined, 'the stable ULA address is not reachable from the Internet')
    assert.equal(chooseSourceAddress6(withoutStable, 'lan0', true), '2001:db8:77:0:418c:1054:3781:bc08')
    assert.deepEqual(addresses.filter((entry) => entry.temporary).map((entry) => entry.address), ['fd77:77:77:0:2716:32e7:18da:2db7', '2001:db8:77:0:418c:1054:3781:bc08'])
  })
})
