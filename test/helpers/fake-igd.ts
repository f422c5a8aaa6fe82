/**
 * An in-process fake UPnP IGD on a loopback address: an SSDP responder on a UDP port the test
 * chooses (never the multicast group) and an HTTP server for the description and SOAP control,
 * written over node:net so that it can misbehave the way routers do: chunked bodies, HTTP/1.0
 * without Content-Length, a body that never ends, an oversized body, XML with entity
 * declarations, unusual namespace prefixes, scripted faults, a LOCATION naming another host.
 *
 * It keeps a real port-mapping table, so tests can check what was mapped and deleted.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import { escapeXml, parseXml } from '../../src/upnp/xml.js'

export type FakeServiceKind = 'WANIPConnection:2' | 'WANIPConnection:1' | 'WANPPPConnection:1'

export interface FakeWanService {
  kind: FakeServiceKind
  /** GetStatusInfo's NewConnectionStatus. Default 'Connected'. */
  connectionStatus?: string
  /** GetExternalIPAddress's answer. Default 203.0.113.7 (public documentation range). */
  externalAddress?: string
  /** The controlURL written in the description; default a relative `/ctl/<index>`. */
  controlUrl?: string
  /** The serviceType's namespace: TR-064 boxes write `urn:dslforum-org:service:...`. Default 'schemas-upnp-org'. */
  namespace?: 'schemas-upnp-org' | 'dslforum-org'
}

/** How an HTTP response body is framed. */
export type BodyStyle = 'content-length' | 'chunked' | 'http10-close' | 'never-ends' | 'oversized'

export interface FakeMapping {
  protocol: 'TCP' | 'UDP'
  externalPort: number
  internalPort: number
  internalClient: string
  description: string
  leaseDuration: number
}

export interface SoapCall {
  action: string
  args: Record<string, string>
  soapAction: string | undefined
}

export interface FakeIgdOptions {
  /** Loopback address the gateway lives on (IPv4, or ::1). Default 127.0.0.2. */
  address?: string
  /** UDP port for SSDP; 0 picks a free one. Default 0. */
  ssdpPort?: number
  /** Device type version. Default 2. */
  igdVersion?: 1 | 2
  /** WAN services, all in one WANConnectionDevice. Default one WANIPConnection of the IGD version. */
  services?: FakeWanService[]
  /** Framing of the description response. Default 'content-length'. */
  descriptionStyle?: BodyStyle
  /** Framing of SOAP responses. Default 'content-length'. */
  soapStyle?: BodyStyle
  /** 'entity-declarations' puts a billion-laughs DOCTYPE in the description; 'unusual-prefixes' prefixes every element. */
  xmlStyle?: 'plain' | 'entity-declarations' | 'unusual-prefixes'
  /** Host written in LOCATION instead of the gateway's address. */
  locationHost?: string
  /** Send SSDP answers from this address (another socket) instead of the gateway's. */
  replyFromAddress?: string
  /** URLBase to write into the description. */
  urlBase?: string
  /** A fault code to answer an action with, checked before anything else. */
  fault?: (call: SoapCall) => number | undefined
  /** Answer 725 OnlyPermanentLeasesSupported to any non-zero lease. */
  onlyPermanentLeases?: boolean
  /** Ports another LAN host already holds: AddPortMapping on them answers 718. */
  occupiedPorts?: Array<{ protocol: 'TCP' | 'UDP', port: number }>
  /** Milliseconds each SOAP answer is held back (to observe concurrency). */
  soapDelayMs?: number
  /**
   * Field quirks of AddPortMapping: 'timed-lease-402' answers 402 InvalidArgs to a non-zero lease
   * (ARRIS NVG578LX); 'permanent-lease-402' answers 402 to lease 0 (routers whose maximum is a
   * week); 'conflict-for-own' answers 718 even when the port is already ours (same client and port);
   * 'silent-when-full' answers a new mapping beyond `tableSize` with success and adds nothing
   * (Linksys, bitletorg/weupnp#12); 'renewal-keeps-expiry' updates an existing mapping without
   * extending its lease (Tomato's miniupnpd, miniupnp #131, #199).
   */
  quirk?: 'timed-lease-402' | 'permanent-lease-402' | 'conflict-for-own' | 'silent-when-full' | 'renewal-keeps-expiry'
  /** Mappings the table holds at most; AddPortMapping of a new one then answers 402 (miniupnp #92). */
  tableSize?: number
  /** The lease GetSpecificPortMappingEntry reports, whatever was granted (nft backend: 0; Technicolor: 86400). */
  reportedLease?: number
}

const FAULT_NAMES: Record<number, string> = {
  401: 'Invalid Action',
  402: 'Invalid Args',
  606: 'Action not authorized',
  713: 'SpecifiedArrayIndexInvalid',
  714: 'NoSuchEntryInArray',
  718: 'ConflictInMappingEntry',
  725: 'OnlyPermanentLeasesSupported'
}

export class FakeIgd {
  readonly address: string
  readonly options: FakeIgdOptions
  readonly services: FakeWanService[]
  readonly mappings = new Map<string, FakeMapping>()
  readonly calls: SoapCall[] = []
  /** M-SEARCH datagrams received, as text. */
  readonly searches: string[] = []
  descriptionRequests = 0
  activeSoap = 0
  peakSoap = 0
  ssdpPort = 0
  httpPort = 0

  readonly #ssdp: dgram.Socket
  #replySocket: dgram.Socket | undefined
  readonly #http: net.Server
  readonly #connections = new Set<net.Socket>()
  readonly #timers = new Set<NodeJS.Timeout>()
  /** When each timed mapping runs out (Date.now() ms), by `${protocol} ${externalPort}`. */
  readonly #expiry = new Map<string, number>()
  /** Mappings still listed (and renewed) that no longer forward (Technicolor CGA4131COM, tailscale #21208). */
  readonly #notForwarding = new Set<string>()

  private constructor (options: FakeIgdOptions) {
    this.options = options
    this.address = options.address ?? '127.0.0.2'
    const version = options.igdVersion ?? 2
    this.services = options.services ?? [{ kind: version === 2 ? 'WANIPConnection:2' : 'WANIPConnection:1' }]
    this.#ssdp = dgram.createSocket(this.address.includes(':') ? 'udp6' : 'udp4')
    this.#http = net.createServer((socket) => { this.#serve(socket) })
  }

  static async start (options: FakeIgdOptions = {}): Promise<FakeIgd> {
    const igd = new FakeIgd(options)
    await igd.#listen()
    return igd
  }

  get igdVersion (): 1 | 2 {
    return this.options.igdVersion ?? 2
  }

  get descriptionUrl (): string {
    const host = this.options.locationHost ?? this.address
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.httpPort}/rootDesc.xml`
  }

  mapping (protocol: 'TCP' | 'UDP', externalPort: number): FakeMapping | undefined {
    return this.mappings.get(`${protocol} ${externalPort}`)
  }

  /** The router stops forwarding a mapping it keeps listing and renewing; only a new rule (delete + add) forwards again. */
  stopForwarding (protocol: 'TCP' | 'UDP', externalPort: number): void {
    this.#notForwarding.add(`${protocol} ${externalPort}`)
  }

  /** Whether traffic to the external port would reach the internal client. */
  forwards (protocol: 'TCP' | 'UDP', externalPort: number): boolean {
    const key = `${protocol} ${externalPort}`
    this.#expire()
    return this.mappings.has(key) && !this.#notForwarding.has(key)
  }

  /** Seconds left on a mapping's lease, as GetSpecificPortMappingEntry reports it; 0 for a permanent one. */
  remainingLease (key: string): number {
    const expiry = this.#expiry.get(key)
    return expiry === undefined ? 0 : Math.max(0, Math.ceil((expiry - Date.now()) / 1000))
  }

  /** Timed mappings whose lease ran out leave the table, as on a router. */
  #expire (): void {
    for (const [key, expiry] of this.#expiry) {
      if (Date.now() >= expiry) {
        this.#expiry.delete(key)
        this.mappings.delete(key)
        this.#notForwarding.delete(key)
      }
    }
  }

  #store (mapping: FakeMapping): void {
    const key = `${mapping.protocol} ${mapping.externalPort}`
    const existing = this.mappings.has(key)
    this.mappings.set(key, mapping)
    if (existing && this.options.quirk === 'renewal-keeps-expiry') return
    if (mapping.leaseDuration === 0) this.#expiry.delete(key)
    else this.#expiry.set(key, Date.now() + mapping.leaseDuration * 1000)
  }

  async close (): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    for (const socket of this.#connections) socket.destroy()
    await Promise.all([
      new Promise<void>((resolve) => { this.#http.close(() => { resolve() }) }),
      new Promise<void>((resolve) => { this.#ssdp.close(() => { resolve() }) }),
      this.#replySocket === undefined ? undefined : new Promise<void>((resolve) => { this.#replySocket?.close(() => { resolve() }) })
    ])
  }

  async #listen (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#http.once('error', reject)
      this.#http.listen(0, this.address, () => { resolve() })
    })
    this.httpPort = (this.#http.address() as net.AddressInfo).port
    await new Promise<void>((resolve, reject) => {
      this.#ssdp.once('error', reject)
      this.#ssdp.bind(this.options.ssdpPort ?? 0, this.address, () => { resolve() })
    })
    this.ssdpPort = this.#ssdp.address().port
    this.#ssdp.on('message', (message, remote) => { this.#answerSearch(message.toString('latin1'), remote) })
    if (this.options.replyFromAddress !== undefined) {
      const replySocket = dgram.createSocket('udp4')
      this.#replySocket = replySocket
      await new Promise<void>((resolve) => { replySocket.bind(0, this.options.replyFromAddress, () => { resolve() }) })
    }
  }

  /** The search targets this device answers (UDA 1.1 §1.3.2: earlier versions too). */
  #answersTo (searchTarget: string): boolean {
    const match = /^urn:schemas-upnp-org:(device|service):(\w+):(\d+)$/.exec(searchTarget)
    if (match === null) return searchTarget === 'ssdp:all' || searchTarget === 'upnp:rootdevice'
    const [, , type, version] = match
    if (type === 'InternetGatewayDevice') return Number(version) <= this.igdVersion
    return this.services.some((service) => {
      const [kind, kindVersion] = service.kind.split(':')
      return kind === type && Number(version) <= Number(kindVersion)
    })
  }

  #answerSearch (text: string, remote: dgram.RemoteInfo): void {
    this.searches.push(text)
    const searchTarget = /\r\nST:[ \t]*(.*)\r\n/i.exec(text)?.[1]?.trim()
    if (searchTarget === undefined || !text.startsWith('M-SEARCH') || !this.#answersTo(searchTarget)) return
    const answer = 'HTTP/1.1 200 OK\r\n' +
      'CACHE-CONTROL: max-age=120\r\n' +
      `ST: ${searchTarget}\r\n` +
      `USN: uuid:fake-igd::${searchTarget}\r\n` +
      'EXT:\r\n' +
      'SERVER: Linux/6 UPnP/1.1 FakeIGD/1.0\r\n' +
      `LOCATION: ${this.descriptionUrl}\r\n` +
      '\r\n'
    const socket = this.#replySocket ?? this.#ssdp
    socket.send(Buffer.from(answer, 'latin1'), remote.port, remote.address)
  }

  #serve (socket: net.Socket): void {
    this.#connections.add(socket)
    socket.on('close', () => { this.#connections.delete(socket) })
    socket.on('error', () => { /* the client hung up */ })
    let buffer = Buffer.alloc(0)
    let handled = false
    socket.on('data', (chunk: Buffer) => {
      if (handled) return
      buffer = Buffer.concat([buffer, chunk])
      const headEnd = buffer.indexOf('\r\n\r\n')
      if (headEnd === -1) return
      const head = buffer.subarray(0, headEnd).toString('latin1')
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
      if (buffer.length < headEnd + 4 + length) return
      handled = true
      const body = buffer.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8')
      const [method = '', path = ''] = head.split(' ')
      const soapAction = /\r\nSOAPAction:\s*(.*)/i.exec(head)?.[1]?.trim()
      this.#route(socket, method, path, body, soapAction)
    })
  }

  #route (socket: net.Socket, method: string, path: string, body: string, soapAction: string | undefined): void {
    if (method === 'GET' && path === '/rootDesc.xml') {
      this.descriptionRequests++
      this.#respond(socket, 200, this.#description(), this.options.descriptionStyle ?? 'content-length')
      return
    }
    const serviceIndex = /^\/ctl\/(\d+)$/.exec(path)?.[1]
    const service = serviceIndex === undefined ? undefined : this.services[Number(serviceIndex)]
    if (method === 'POST' && service !== undefined) {
      this.activeSoap++
      this.peakSoap = Math.max(this.peakSoap, this.activeSoap)
      const { status, xml } = this.#control(service, body, soapAction)
      const send = (): void => {
        this.activeSoap--
        this.#respond(socket, status, xml, this.options.soapStyle ?? 'content-length')
      }
      if (this.options.soapDelayMs === undefined) send()
      else this.#later(send, this.options.soapDelayMs)
      return
    }
    this.#respond(socket, 404, 'not found', 'content-length')
  }

  #later (task: () => void, ms: number): void {
    const timer = setTimeout(() => { this.#timers.delete(timer); task() }, ms)
    this.#timers.add(timer)
  }

  #respond (socket: net.Socket, status: number, text: string, style: BodyStyle): void {
    const reason = status === 200 ? 'OK' : status === 500 ? 'Internal Server Error' : 'Not Found'
    const body = Buffer.from(text, 'utf8')
    const type = 'Content-Type: text/xml; charset="utf-8"\r\n'
    switch (style) {
      case 'content-length':
        socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 ${status} ${reason}\r\n${type}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]))
        return
      case 'chunked': {
        socket.write(`HTTP/1.1 ${status} ${reason}\r\n${type}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`)
        // Odd chunk sizes, with a chunk extension on one of them, as some servers send.
        for (let offset = 0, size = 7; offset < body.length; offset += size, size = size * 2 + 3) {
          const piece = body.subarray(offset, offset + size)
          socket.write(`${piece.length.toString(16)}${offset === 0 ? ';ext=1' : ''}\r\n`)
          socket.write(piece)
          socket.write('\r\n')
        }
        socket.end('0\r\n\r\n')
        return
      }
      case 'http10-close':
        socket.end(Buffer.concat([Buffer.from(`HTTP/1.0 ${status} ${reason}\r\n${type}\r\n`), body]))
        return
      case 'never-ends':
        // A chunked body whose last chunk never comes: only a timeout can end this.
        socket.write(`HTTP/1.1 ${status} ${reason}\r\n${type}Transfer-Encoding: chunked\r\n\r\n`)
        socket.write(`${body.length.toString(16)}\r\n`)
        socket.write(body)
        socket.write('\r\n')
        return
      case 'oversized': {
        // Close-delimited, so the client only learns the size by reading past its cap.
        socket.write(`HTTP/1.0 ${status} ${reason}\r\n${type}\r\n`)
        socket.write(body)
        const padding = Buffer.alloc(16_384, 0x20)
        for (let sent = 0; sent < 200_000; sent += padding.length) socket.write(padding)
        socket.end()
      }
    }
  }

  #description (): string {
    const p = this.options.xmlStyle === 'unusual-prefixes' ? 'ns0:' : ''
    const xmlns = this.options.xmlStyle === 'unusual-prefixes' ? 'xmlns:ns0' : 'xmlns'
    const element = (name: string, content: string): string => `<${p}${name}>${content}</${p}${name}>`
    const services = this.services.map((service, index) => element('service',
      element('serviceType', serviceTypeOf(service)) +
      element('serviceId', `urn:upnp-org:serviceId:${service.kind.split(':')[0] ?? ''}${index}`) +
      element('controlURL', service.controlUrl ?? `/ctl/${index}`) +
      element('eventSubURL', `/evt/${index}`) +
      element('SCPDURL', `/scpd/${index}.xml`))).join('')
    const version = this.igdVersion
    const doctype = this.options.xmlStyle === 'entity-declarations'
      ? '<!DOCTYPE root [\n<!ENTITY lol "lol">\n<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n' +
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n' +
        '<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n]>\n'
      : ''
    const friendlyName = this.options.xmlStyle === 'entity-declarations' ? '&lol9;' : 'Fake IGD &amp; friends'
    return `<?xml version="1.0"?>\r\n${doctype}<${p}root ${xmlns}="urn:schemas-upnp-org:device-1-0">` +
      element('specVersion', element('major', '1') + element('minor', '1')) +
      (this.options.urlBase === undefined ? '' : element('URLBase', this.options.urlBase)) +
      element('device',
        element('deviceType', `urn:schemas-upnp-org:device:InternetGatewayDevice:${version}`) +
        element('friendlyName', friendlyName) +
        element('manufacturer', 'natmapper tests') +
        element('modelName', 'FakeIGD') +
        element('UDN', 'uuid:fake-igd') +
        element('deviceList', element('device',
          element('deviceType', `urn:schemas-upnp-org:device:WANDevice:${version}`) +
          element('deviceList', element('device',
            element('deviceType', `urn:schemas-upnp-org:device:WANConnectionDevice:${version}`) +
            element('serviceList', services)))))) +
      `</${p}root>\r\n`
  }

  #control (service: FakeWanService, body: string, soapAction: string | undefined): { status: number, xml: string } {
    let call: SoapCall
    try {
      const envelope = parseXml(body, 'fake IGD request')
      const request = envelope.children.find((child) => child.name === 'Body')?.children[0]
      if (request === undefined) return this.#fault(402)
      const args: Record<string, string> = {}
      for (const child of request.children) args[child.name] = child.text
      call = { action: request.name, args, soapAction }
    } catch {
      return this.#fault(402)
    }
    this.calls.push(call)
    const serviceType = serviceTypeOf(service)
    if (soapAction !== `"${serviceType}#${call.action}"`) return this.#fault(401)
    const scripted = this.options.fault?.(call)
    if (scripted !== undefined) return this.#fault(scripted)
    const ok = (values: Record<string, string | number> = {}): { status: number, xml: string } =>
      ({ status: 200, xml: this.#response(serviceType, call.action, values) })
    const { args } = call
    this.#expire()

    switch (call.action) {
      case 'GetExternalIPAddress':
        return ok({ NewExternalIPAddress: service.externalAddress ?? '203.0.113.7' })
      case 'GetStatusInfo':
        return ok({ NewConnectionStatus: service.connectionStatus ?? 'Connected', NewLastConnectionError: 'ERROR_NONE', NewUptime: 1234 })
      case 'AddPortMapping':
      case 'AddAnyPortMapping': {
        const mapping = this.#mappingFrom(args)
        if (mapping === undefined) return this.#fault(402)
        if (call.action === 'AddAnyPortMapping' && service.kind !== 'WANIPConnection:2') return this.#fault(401)
        if (this.options.onlyPermanentLeases === true && mapping.leaseDuration !== 0) return this.#fault(725)
        if (this.options.quirk === 'timed-lease-402' && mapping.leaseDuration !== 0) return this.#fault(402)
        if (this.options.quirk === 'permanent-lease-402' && mapping.leaseDuration === 0) return this.#fault(402)
        const key = `${mapping.protocol} ${mapping.externalPort}`
        if (this.options.quirk === 'conflict-for-own' && this.mappings.has(key)) return this.#fault(718)
        if (this.options.tableSize !== undefined && !this.mappings.has(key) && this.mappings.size >= this.options.tableSize) {
          return this.options.quirk === 'silent-when-full' ? ok(call.action === 'AddAnyPortMapping' ? { NewReservedPort: mapping.externalPort } : {}) : this.#fault(402)
        }
        if (call.action === 'AddAnyPortMapping') {
          while (!this.#free(mapping)) mapping.externalPort = mapping.externalPort >= 65_535 ? 1_024 : mapping.externalPort + 1
          this.#store(mapping)
          return ok({ NewReservedPort: mapping.externalPort })
        }
        if (!this.#free(mapping)) return this.#fault(718)
        this.#store(mapping)
        return ok()
      }
      case 'DeletePortMapping': {
        const key = `${args.NewProtocol ?? ''} ${args.NewExternalPort ?? ''}`
        if (!this.mappings.delete(key)) return this.#fault(714)
        this.#expiry.delete(key)
        this.#notForwarding.delete(key)
        return ok()
      }
      case 'GetSpecificPortMappingEntry': {
        const key = `${args.NewProtocol ?? ''} ${args.NewExternalPort ?? ''}`
        const mapping = this.mappings.get(key)
        if (mapping === undefined) return this.#fault(714)
        return ok(entryValues({ ...mapping, leaseDuration: this.options.reportedLease ?? this.remainingLease(key) }, false))
      }
      case 'GetGenericPortMappingEntry': {
        const mapping = [...this.mappings.values()][Number(args.NewPortMappingIndex ?? -1)]
        if (mapping === undefined) return this.#fault(713)
        return ok(entryValues(mapping, true))
      }
      default:
        return this.#fault(401)
    }
  }

  #mappingFrom (args: Record<string, string>): FakeMapping | undefined {
    const protocol = args.NewProtocol
    const externalPort = Number(args.NewExternalPort)
    const internalPort = Number(args.NewInternalPort)
    const leaseDuration = Number(args.NewLeaseDuration)
    if (protocol !== 'TCP' && protocol !== 'UDP') return undefined
    if (!(externalPort >= 1 && externalPort <= 65_535 && internalPort >= 1 && internalPort <= 65_535)) return undefined
    if (!Number.isInteger(leaseDuration) || leaseDuration < 0) return undefined
    if (this.igdVersion === 2 && leaseDuration > 604_800) return undefined
    const internalClient = args.NewInternalClient ?? ''
    if (net.isIP(internalClient) === 0) return undefined
    return { protocol, externalPort, internalPort, internalClient, description: args.NewPortMappingDescription ?? '', leaseDuration }
  }

  /** Free for this client: not held by another host, nor mapped to another internal endpoint. */
  #free (mapping: FakeMapping): boolean {
    if (this.options.occupiedPorts?.some((held) => held.protocol === mapping.protocol && held.port === mapping.externalPort) === true) return false
    const existing = this.mappings.get(`${mapping.protocol} ${mapping.externalPort}`)
    return existing === undefined || (existing.internalClient === mapping.internalClient && existing.internalPort === mapping.internalPort)
  }

  #response (serviceType: string, action: string, values: Record<string, string | number>): string {
    const unusual = this.options.xmlStyle === 'unusual-prefixes'
    const env = unusual ? 'SOAP-ENV' : 's'
    const u = unusual ? 'm' : 'u'
    const args = Object.entries(values).map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`).join('')
    return `<?xml version="1.0"?>\r\n<${env}:Envelope xmlns:${env}="http://schemas.xmlsoap.org/soap/envelope/" ${env}:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
      `<${env}:Body><${u}:${action}Response xmlns:${u}="${serviceType}">${args}</${u}:${action}Response></${env}:Body></${env}:Envelope>\r\n`
  }

  #fault (code: number): { status: number, xml: string } {
    const env = this.options.xmlStyle === 'unusual-prefixes' ? 'SOAP-ENV' : 's'
    return {
      status: 500,
      xml: `<?xml version="1.0"?>\r\n<${env}:Envelope xmlns:${env}="http://schemas.xmlsoap.org/soap/envelope/" ${env}:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">` +
        `<${env}:Body><${env}:Fault><faultcode>${env}:Client</faultcode><faultstring>UPnPError</faultstring><detail>` +
        `<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode><errorDescription>${FAULT_NAMES[code] ?? 'Error'}</errorDescription></UPnPError>` +
        `</detail></${env}:Fault></${env}:Body></${env}:Envelope>\r\n`
    }
  }
}

function serviceTypeOf (service: FakeWanService): string {
  return `urn:${service.namespace ?? 'schemas-upnp-org'}:service:${service.kind}`
}

function entryValues (mapping: FakeMapping, withKey: boolean): Record<string, string | number> {
  return {
    ...(withKey ? { NewRemoteHost: '', NewExternalPort: mapping.externalPort, NewProtocol: mapping.protocol } : {}),
    NewInternalPort: mapping.internalPort,
    NewInternalClient: mapping.internalClient,
    NewEnabled: 1,
    NewPortMappingDescription: mapping.description,
    NewLeaseDuration: mapping.leaseDuration
  }
}
