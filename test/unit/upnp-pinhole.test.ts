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

  it('encodes UpdatePinhole and DeletePinhole on the UniqueID', () => {
    assert.match(encodeSoapRequest(SERVICE, SoapActions.updatePinhole(7, 60)), /<u:UpdatePinhole [^>]*><UniqueID>7<\/UniqueID><NewLeaseTime>60<\/NewLeaseTime><\/u:UpdatePinhole>/)
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
    assert.throws(() => decodeSoapResponse(fault(704, 'NoSuchEntry'), 'UpdatePinhole'),
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
  it('adds, updates, re-adds after 704, and deletes by UniqueID; the grant is our own address and port', async () => {
    let nextId = 5
    let lost = false
    const fake = await fakeFirewall((action) => {
      if (action === 'GetFirewallStatus') return status(1, 1)
      if (action === 'AddPinhole') return { body: response('AddPinhole', `<UniqueID>${nextId++}</UniqueID>`) }
      if (action === 'UpdatePinhole') return lost ? { status: 500, body: fault(704, 'NoSuchEntry') } : { body: response('UpdatePinhole', '') }
      return { body: response(action, '') }
    })
    const client = new UpnpPinholeClient({ gateway: '127.0.0.1', localAddress: '2001:db8:77::2', controlUrl: fake.url, serviceType: SERVICE })
    try {
      const grant = await client.map(REQUEST, undefined, {})
      assert.deepEqual({ address: grant.externalAddress, port: grant.externalPort, lifetime: grant.lifetimeSeconds, state: grant.protocolState },
        { address: '2001:db8:77::2', port: 8080, lifetime: 60, state: { uniqueId: 5 } })
      const renewed = await client.map(REQUEST, grant, {})
      assert.deepEqual(renewed.protocolState, { uniqueId: 5 })
      lost = true
      const readded = await client.map(REQUEST, renewed, {})
      assert.deepEqual(readded.protocolState, { uniqueId: 6 })
      await client.unmap(readded, {})
      assert.deepEqual(fake.actions, ['GetFirewallStatus', 'AddPinhole', 'UpdatePinhole', 'UpdatePinhole', 'AddPinhole', 'DeletePinhole'])
      assert.equal(await client.externalAddress(), '2001:db8:77::2')
    } finally {
      await client.close()
      await fake.close()
    }
  })

  it('re-adds a pinhole whose UniqueID a restarted gateway refuses with 402 InvalidArgs (miniupnpd 2.3.1)', async () => {
    let nextId = 1
    let restarted = false
    const fake = await fakeFirewall((action) => {
      if (action === 'GetFirewallStatus') return status(1, 1)
      if (action === 'AddPinhole') return { body: response('AddPinhole', `<UniqueID>${nextId++}</UniqueID>`) }
      if (action === 'UpdatePinhole') return restarted ? { status: 500, body: fault(402, 'Invalid Args') } : { body: response('UpdatePinhole', '') }
      return { body: response(action, '') }
    })
    const client = new UpnpPinholeClient({ gateway: '127.0.0.1', localAddress: '2001:db8:77::2', controlUrl: fake.url, serviceType: SERVICE })
    try {
      const grant = await client.map(REQUEST, undefined, {})
      restarted = true
      const readded = await client.map(REQUEST, grant, {})
      assert.deepEqual(readded.protocolState, { uniqueId: 2 })
      assert.deepEqual(fake.actions, ['GetFirewallStatus', 'AddPinhole', 'UpdatePinhole', 'AddPinhole'])
    } finally {
      await client.close()
      await fake.close()
    }
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
      assert.deepEqual(grant.protocolState, { uniqueId: undefined })
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
