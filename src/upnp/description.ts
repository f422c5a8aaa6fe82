/**
 * Device description codec (UDA 1.1 §2.3): finds the WAN connection services an IGD offers, in
 * any embedded device at any depth, and resolves their control URLs. Pure: the caller fetched
 * the text and decides which hosts to trust (see trust.ts).
 */
import { MalformedMessageError } from '../errors.js'
import { childNamed, childText, parseXml, type XmlElement } from './xml.js'

/** The connection services we can map ports with (WANIPConnection:2 adds AddAnyPortMapping). */
export type WanServiceKind = 'WANIPConnection:2' | 'WANIPConnection:1' | 'WANPPPConnection:1'

export interface WanService {
  kind: WanServiceKind
  /** The serviceType as the device wrote it (trimmed): SOAP actions are addressed to it. */
  serviceType: string
  /** The control URL, resolved against URLBase or the description's own URL. */
  controlUrl: URL
}

/** WANIPv6FirewallControl:1 (IPv6 pinholes), recorded for later use. */
export interface FirewallControlService {
  serviceType: string
  controlUrl: URL
}

export interface DeviceDescription {
  /** The root device's type, e.g. `urn:schemas-upnp-org:device:InternetGatewayDevice:2`. */
  deviceType: string | undefined
  friendlyName: string | undefined
  manufacturer: string | undefined
  modelName: string | undefined
  /** 2 when the root device is InternetGatewayDevice:2 or a WANIPConnection:2 is offered, else 1. */
  igdVersion: 1 | 2
  /** WAN connection services in document order; a service whose control URL cannot be resolved is left out. */
  wanServices: WanService[]
  firewallControl: FirewallControlService | undefined
}

/**
 * Service types match case-insensitively (URNs' NID is; vendors vary) and a higher version of
 * WANIPConnection counts as :2, since later versions stay backward compatible (UDA 1.1 §2.3).
 * ISP boxes that speak TR-064 name the same services in the Broadband Forum's namespace
 * (`urn:dslforum-org:service:WANIPConnection:1`, a MitraStar in ofekp/TinyUPnP#14; tailscale PR
 * #10927): same actions, same arguments, version 1 only.
 */
const WAN_SERVICE_TYPE = /^urn:(schemas-upnp-org|dslforum-org):service:(WANIPConnection|WANPPPConnection):(\d{1,3})$/i
const FIREWALL_SERVICE_TYPE = /^urn:schemas-upnp-org:service:WANIPv6FirewallControl:\d{1,3}$/i
const IGD_DEVICE_TYPE = /^urn:schemas-upnp-org:device:InternetGatewayDevice:(\d{1,3})$/i

/** Parses a device description fetched from `descriptionUrl`, or throws MalformedMessageError. */
export function decodeDeviceDescription (text: string, descriptionUrl: URL): DeviceDescription {
  const root = parseXml(text, 'device description')
  if (root.name !== 'root') throw new MalformedMessageError('upnp', `device description: root element is <${root.name}>, not <root>`)
  const rootDevice = childNamed(root, 'device')
  if (rootDevice === undefined) throw new MalformedMessageError('upnp', 'device description has no <device>')
  const base = urlBase(childText(root, 'URLBase'), descriptionUrl)

  const wanServices: WanService[] = []
  let firewallControl: FirewallControlService | undefined
  for (const service of servicesOf(rootDevice)) {
    const serviceType = childText(service, 'serviceType') ?? ''
    const controlUrl = resolveUrl(childText(service, 'controlURL'), base)
    if (controlUrl === undefined) continue
    const kind = wanServiceKind(serviceType)
    if (kind !== undefined) {
      wanServices.push({ kind, serviceType, controlUrl })
    } else if (firewallControl === undefined && FIREWALL_SERVICE_TYPE.test(serviceType)) {
      firewallControl = { serviceType, controlUrl }
    }
  }

  const deviceType = childText(rootDevice, 'deviceType')
  const rootVersion = Number(IGD_DEVICE_TYPE.exec(deviceType ?? '')?.[1] ?? 0)
  return {
    deviceType,
    friendlyName: childText(rootDevice, 'friendlyName'),
    manufacturer: childText(rootDevice, 'manufacturer'),
    modelName: childText(rootDevice, 'modelName'),
    igdVersion: rootVersion >= 2 || wanServices.some((service) => service.kind === 'WANIPConnection:2') ? 2 : 1,
    wanServices,
    firewallControl
  }
}

/** Which WAN connection service a serviceType names, if any. */
export function wanServiceKind (serviceType: string): WanServiceKind | undefined {
  const match = WAN_SERVICE_TYPE.exec(serviceType.trim())
  if (match?.[1] === undefined || match[2] === undefined) return undefined
  const version = Number(match[3])
  if (version < 1) return undefined
  if (match[2].toLowerCase() === 'wanpppconnection') return 'WANPPPConnection:1'
  // TR-064 has no WANIPConnection:2 (no AddAnyPortMapping, no lease limits of IGDv2).
  return version >= 2 && match[1].toLowerCase() === 'schemas-upnp-org' ? 'WANIPConnection:2' : 'WANIPConnection:1'
}

/** Whether a serviceType is TR-064's (Broadband Forum) name rather than the UPnP Forum's. */
export function isTr064ServiceType (serviceType: string): boolean {
  return /^urn:dslforum-org:/i.test(serviceType.trim())
}

/**
 * Every <service> of `device` and of its embedded devices, depth first. The XML reader already
 * bounds nesting depth, so the recursion is bounded too.
 */
function * servicesOf (device: XmlElement): Generator<XmlElement> {
  for (const service of childNamed(device, 'serviceList')?.children ?? []) {
    if (service.name.toLowerCase() === 'service') yield service
  }
  for (const embedded of childNamed(device, 'deviceList')?.children ?? []) {
    if (embedded.name.toLowerCase() === 'device') yield * servicesOf(embedded)
  }
}

/** URLBase if it is a usable http URL (UDA 1.0 §2.1; deprecated in 1.1 but still sent), else the description URL. */
function urlBase (value: string | undefined, descriptionUrl: URL): URL {
  if (value === undefined || value === '') return descriptionUrl
  const base = resolveUrl(value, descriptionUrl)
  return base ?? descriptionUrl
}

/** RFC 3986 resolution of `value` against `base`; undefined unless the result is an http URL. */
function resolveUrl (value: string | undefined, base: URL): URL | undefined {
  if (value === undefined || value === '') return undefined
  try {
    const url = new URL(value, base)
    return url.protocol === 'http:' ? url : undefined
  } catch {
    return undefined
  }
}
