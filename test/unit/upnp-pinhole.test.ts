import assert from 'node:assert/strict'
import http from 'node:http'
import { describe, it } from 'node:test'
import { GatewayResultError, MalformedMessageError } from '../../src/errors.js'
import { UpnpPinholeClient } from '../../src/upnp/pinhole-client.js'
import { decodeFirewallStatus, decodePinholeId, decodeSoapResponse, encodeSoapRequest, SoapActions, UPNP_ERROR_NAMES } from '../../src/upnp/soap.js'

const SERVICE = 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'

function response (action: string, inner: string): string {
  return '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action}Response xmlns:u="${SERVICE}">${inner}</u:${action}Response></s:Body></s:Envelope>`
}

function fault (code: number, name: string): string {
  return '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    '<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0">' +
    `<errorCode>${code}</errorCode><errorDescription>${name}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`
}

describe('WANIPv6FirewallControl SOAP codec', () => {
  it('encodes AddPinhole with wildcards, the IANA protocol number, and escaping', () => {
    const body = encodeSoapRequest(SERVICE, SoapActions.addPinhole({ internalClient: '2001:db8:77::2', internalPort: 8080, protocol: 'UDP', leaseTime: 3600 }))
    assert.match(body, /<u:AddPinhole xmlns:u="urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"><RemoteHost><\/RemoteHost><RemotePort>0<\/RemotePort><InternalClient>2001:db8:77::2<\/InternalClient><InternalPort>8080<\/InternalPort><Protocol>17<\/Protocol><LeaseTime>3600<\/LeaseTime><\/u:AddPinhole>/)
    const escaped = encodeSoapRequest(SERVICE, SoapActions.addPinhole({ remoteHost: '<a&b>', internalClient: '::1', internalPort: 1, protocol: 'TCP', leaseTime: 1 }))
    assert.match(escaped, /<RemoteHost>&lt;a&amp;b&gt;<\/RemoteHost>.*<Protocol>6<\/Protocol>/)
  })

  it('encodes DeletePinhole on the UniqueID', () => {
    assert.match(encodeSoapRequest(SERVICE, SoapActions.deletePinhole(7)), /<u:DeletePinhole [^>]*><UniqueID>7<\/UniqueID><\/u:DeletePinhole>/)
  })

  it('decodes GetFirewallStatus and AddPinhole responses, rejecting garbage', () => {
    assert.deepEqual(decodeFirewallStatus(decodeSoapResponse(response('GetFirewallStatus', '<FirewallEnabled>1</FirewallEnabled><InboundPinholeAllowed>0</InboundPinholeAllowed>'), 'GetFirewallStatus')),
      { firewallEnabled: true, inboundPinholeAllowed: false })
    assert.equal(decodePinholeId(decodeSoapResponse(response('AddPinhole', '<UniqueID>42</UniqueID>'), 'AddPinhole')), 42)
    assert.throws(() => decodePinholeId(new Map([['UniqueID', 'x']])), MalformedMessageError)
    assert.throws(() => decodePinholeId(new Map([['UniqueID', '70000']])), MalformedMessageError)
    assert.throws(() => decodeFirewallStatus(new Map([['FirewallEnabled', 'maybe']])), MalformedMessageError)
  })

  it('names the pinhole faults (701-709)', () => {
    assert.equal(UPNP_ERROR_NAMES.get(702), 'FirewallDisabled')
    assert.equal(UPNP_ERROR_NAMES.get(703), 'InboundPinholeNotAllowed')
    assert.equal(UPNP_ERROR_NAMES.get(704), 'NoSuchEntry')
    assert.throws(() => decodeSoapResponse(fault(704, 'NoSuchEntry'), 'DeletePinhole'),
      (error: unknown) => error instanceof GatewayResultError && error.resultCode === 704 && error.resultName === 'NoSuchEntry')
  })
})

/** A WANIPv6FirewallControl endpoint on 127.0.0.1 that answers from a script. */
async function fakeFirewall (answer: (action: string, body: string) => { status?: number, body: string }): Promise<{ url: URL, actions: string[], close: () => Promise<void> }> {
  const actions: string[] = []
  const server = http.createServer((request, res) => {
    let body = ''
    request.on('data', (chunk: Buffer) => { body += chunk.toString() })
    request.on('end', () => {
      const action = /#(\w+)"/.exec(String(request.headers.soapaction ?? ''))?.[1] ?? ''
      actions.push(action)
      const reply = answer(action, body)
      res.writeHead(reply.status ?? 200, { 'Content-Type': 'text/xml' }).end(reply.body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return { url: new URL(`http://127.0.0.1:${port}/ctl/IP6FCtl`), actions, close: async () => { await new Promise<void>((resolve) => server.close(() => { resolve() })) } }
}

const REQUEST = { protocol: 'tcp' as const, internalPort: 8080, suggestedExternalPort: 8080, lifetimeSeconds: 60, description: 'x' }
const status = (enabled: number, allowed: number): { body: string } =>
  ({ body: response('GetFirewallStatus', `<FirewallEnabled>${enabled}</FirewallEnabled><InboundPinholeAllowed>${allowed}</InboundPinholeAllowed>`) })

describe('UpnpPinholeClient against a fake firewall service', () => {
  it('adds and renews with AddPinhole, and deletes by the UniqueID an AddPinhole has just answered; the grant is our own address and port', async () => {
    await onPinholeTable(async ({ firewall, fake, client, resets }) => {
      firewall.add(9999)
      const grant = await client.map(REQUEST, undefined, {})
      assert.deepEqual({ address: grant.externalAddress, port: grant.externalPort, lifetime: grant.lifetimeSeconds, id: idOf(grant) },
        { address: '2001:db8:77::2', port: 8080, lifetime: 60, id: 2 })
      const renewed = await client.map(REQUEST, grant, {})
      assert.equal(idOf(renewed), 2)
      assert.deepEqual(firewall.leases(), [[9999, 60], [8080, 60]])
      await client.unmap(renewed, {})
      assert.deepEqual(fake.actions, ['GetFirewallStatus', 'AddPinhole', 'AddPinhole', 'AddPinhole', 'DeletePinhole'])
      assert.deepEqual(firewall.ports(), [9999])
      assert.deepEqual(resets, [])
      assert.equal(await client.externalAddress(), '2001:db8:77::2')
    })
  })

  it('after a restart that numbers pinholes from 1 again, brings every pinhole back and reports one reset', async () => {
    const a = { ...REQUEST, internalPort: 27_302 }
    const b = { ...REQUEST, internalPort: 27_300 }
    await onPinholeTable(async ({ firewall, client, resets }) => {
      let grantA = await client.map(a, undefined, {})
      let grantB = await client.map(b, undefined, {})
      assert.deepEqual([idOf(grantA), idOf(grantB)], [1, 2])

      // B renews first and is added again as ID 1, A's old number. Renewing A by its ID would
      // keep B's pinhole alive and never bring A's back (miniupnpd 2.3.1 in the serve lab test).
      firewall.restart()
      grantB = await client.map(b, grantB, {})
      assert.equal(idOf(grantB), 1)
      assert.equal(resets.length, 1, 'a changed ID is reported as a reset, so that every pinhole is renewed at once')
      assert.match(resets[0] ?? '', /UniqueID 1, not 2/)
      grantA = await client.map(a, grantA, {})
      assert.deepEqual(firewall.ports(), [27_300, 27_302], 'both pinholes are back')
      assert.deepEqual([firewall.portOf(idOf(grantA)), firewall.portOf(idOf(grantB))], [27_302, 27_300])
      assert.equal(resets.length, 1, 'one reset, not one for each pinhole')

      // A restart that re-adds them from a lease file in another order: no error anywhere, and
      // still each grant holds its own pinhole's ID.
      firewall.restart([27_302, 27_300])
      grantA = await client.map(a, grantA, {})
      grantB = await client.map(b, grantB, {})
      assert.deepEqual([firewall.portOf(idOf(grantA)), firewall.portOf(idOf(grantB))], [27_302, 27_300])
      assert.equal(resets.length, 2)

      // Deleting by a kept ID would delete whatever has that number now.
      firewall.restart([27_999])
      await client.unmap(grantB, {}) // B held ID 1, which is now 27 999's
      assert.deepEqual(firewall.ports(), [27_999], 'the pinhole now numbered as B was is left alone')
    })
  })

  it('reports InboundPinholeNotAllowed, and needs no pinhole when the firewall is off', async () => {
    const denied = await fakeFirewall(() => status(1, 0))
    const off = await fakeFirewall(() => status(0, 0))
    const a = new UpnpPinholeClient({ gateway: '127.0.0.1', localAddress: '2001:db8::2', controlUrl: denied.url, serviceType: SERVICE })
    const b = new UpnpPinholeClient({ gateway: '127.0.0.1', localAddress: '2001:db8::2', controlUrl: off.url, serviceType: SERVICE })
    try {
      await assert.rejects(a.map(REQUEST, undefined, {}), (error: unknown) => error instanceof GatewayResultError && error.resultName === 'InboundPinholeNotAllowed' &&
        /InboundPinholeAllowed 0/.test(error.message) && /Fritz!Box/.test(error.message))
      const grant = await b.map(REQUEST, undefined, {})
      assert.equal(idOf(grant), undefined)
      await b.unmap(grant, {})
      assert.deepEqual(off.actions, ['GetFirewallStatus'], 'nothing opened, nothing deleted')
    } finally {
      await a.close()
      await b.close()
      await denied.close()
      await off.close()
    }
  })
})

/** A client against a fresh PinholeTable behind a fake firewall service, with the resets it reports; both closed after `test`. */
async function onPinholeTable (test: (setting: { firewall: PinholeTable, fake: { actions: string[] }, client: UpnpPinholeClient, resets: string[] }) => Promise<void>): Promise<void> {
  const firewall = new PinholeTable()
  const fake = await fakeFirewall((action, body) => firewall.answer(action, body))
  const client = new UpnpPinholeClient({ gateway: '127.0.0.1', localAddress: '2001:db8:77::2', controlUrl: fake.url, serviceType: SERVICE })
  const resets: string[] = []
  client.onEvent = (event) => { if (event.kind === 'reset') resets.push(event.reason) }
  try {
    await test({ firewall, fake, client, resets })
  } finally {
    await client.close()
    await fake.close()
  }
}

/**
 * miniupnpd's pinhole table as it behaves: IDs from 1; an AddPinhole for a pinhole that exists
 * with the same values renews it and answers its ID; a restart forgets every pinhole and numbers
 * from 1 again, re-adding what its lease file lists, in the file's order.
 */
class PinholeTable {
  #pinholes = new Map<number, { port: number, lease: number }>()
  #nextId = 1

  answer (action: string, body: string): { status?: number, body: string } {
    const uniqueId = Number(field(body, 'UniqueID'))
    switch (action) {
      case 'GetFirewallStatus': return status(1, 1)
      case 'AddPinhole': return { body: response('AddPinhole', `<UniqueID>${this.add(Number(field(body, 'InternalPort')), Number(field(body, 'LeaseTime')))}</UniqueID>`) }
      case 'DeletePinhole': return this.#pinholes.delete(uniqueId) ? { body: response(action, '') } : { status: 500, body: fault(704, 'NoSuchEntry') }
      default: return { status: 500, body: fault(401, 'Invalid Action') }
    }
  }

  add (port: number, lease = 60): number {
    const existing = [...this.#pinholes].find(([, held]) => held.port === port)
    if (existing !== undefined) {
      existing[1].lease = lease
      return existing[0]
    }
    this.#pinholes.set(this.#nextId, { port, lease })
    return this.#nextId++
  }

  restart (leaseFile: number[] = []): void {
    this.#pinholes.clear()
    this.#nextId = 1
    for (const port of leaseFile) this.add(port)
  }

  ports (): number[] {
    return [...this.#pinholes.values()].map((held) => held.port).sort((x, y) => x - y)
  }

  leases (): Array<[number, number]> {
    return [...this.#pinholes.values()].map((held) => [held.port, held.lease])
  }

  portOf (uniqueId: number | undefined): number | undefined {
    return uniqueId === undefined ? undefined : this.#pinholes.get(uniqueId)?.port
  }
}

function field (body: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(body)?.[1]
}

function idOf (grant: { protocolState?: unknown }): number | undefined {
  return (grant.protocolState as { uniqueId?: number } | undefined)?.uniqueId
}
