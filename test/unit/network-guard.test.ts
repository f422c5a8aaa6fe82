import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import net from 'node:net'
import { describe, it } from 'node:test'
import { discoverNAT } from '../../src/index.js'
import { inRootNetworkNamespace } from '../helpers/netns.js'

// The guard is loaded with --import by scripts/test.mjs; these tests prove it is in force.
describe('network guard (tests in the root namespace reach loopback only)', { skip: inRootNetworkNamespace() ? false : 'not in the root network namespace' }, () => {
  it('refuses UDP toward a non-loopback address, including the SSDP group', () => {
    const socket = dgram.createSocket('udp4')
    try {
      assert.throws(() => { socket.send(Buffer.from('x'), 1900, '239.255.255.250') }, /network guard/)
      assert.throws(() => { socket.send(Buffer.from('x'), 0, 1, 5351, '192.0.2.1') }, /network guard/)
      assert.throws(() => { socket.connect(5351, '198.51.100.1') }, /network guard/)
      assert.throws(() => { socket.addMembership('239.255.255.250') }, /network guard/)
    } finally {
      socket.close()
    }
  })

  it('refuses TCP toward a non-loopback address', () => {
    assert.throws(() => net.connect({ host: '192.0.2.1', port: 80 }), /network guard/)
    assert.throws(() => net.connect(80, '192.0.2.1'), /network guard/)
  })

  it('lets loopback through', async () => {
    const socket = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => { socket.connect(9, '127.0.0.1', resolve) })
    socket.close()
  })

  it('stops discovery via the default route from leaving the machine', async () => {
    // Either the guard stops the first packet, or (in a namespace without one) there is no route.
    await assert.rejects(discoverNAT({ timeout: 500 }), (error: Error & { code?: string }) =>
      /network guard/.test(error.message) || error.code === 'ERR_NO_DEFAULT_GATEWAY')
  })
})
