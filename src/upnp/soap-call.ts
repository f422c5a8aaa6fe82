/**
 * One SOAP call to a UPnP control URL, shared by the WAN connection client and the IPv6 pinhole
 * client: the HTTP exchange, the fault or the out arguments, and the call counted in the NAT's
 * counters (a request; an answer by its UPnP error code, or SUCCESS; or a timeout).
 */
import { GatewayResultError, HttpStatusError, NetworkError, TimeoutError } from '../errors.js'
import type { ExchangeCounters } from '../net/counters.js'
import { httpExchange, type HttpExchangeOptions } from './http.js'
import { decodeSoapResponse, encodeSoapRequest, soapActionHeader, type SoapRequest } from './soap.js'

export const USER_AGENT = `Node.js/${process.versions.node} UPnP/1.1 natmapper/1`
export const REQUEST_HEADERS: ReadonlyArray<readonly [string, string]> = [['User-Agent', USER_AGENT], ['Connection', 'close']]

/** The result name a successful SOAP answer is counted under (UPnP has no code for success). */
const SOAP_SUCCESS = 'SUCCESS'

export interface SoapService {
  serviceType: string
  controlUrl: URL
}

/** How the connection is made: the gateway's zone (a link-local host), the address to leave from. */
export type SoapConnection = Pick<HttpExchangeOptions, 'zone' | 'localAddress'>

/** Sends `request` to the service; resolves with its out arguments, rejects with GatewayResultError for a fault. */
export async function soapCall (service: SoapService, request: SoapRequest, signal: AbortSignal, maxBodyBytes: number,
  counters: ExchangeCounters | undefined, connection: SoapConnection = {}): Promise<Map<string, string>> {
  if (counters !== undefined) counters.requests++
  try {
    const values = await exchange(service, request, signal, maxBodyBytes, connection)
    counters?.answered(0, SOAP_SUCCESS)
    return values
  } catch (error) {
    // A fault is an answer, counted by its code; a deadline that ran out is a timeout; a refused
    // connection a refusal; anything else (a malformed body, a reset mid-answer) is none of them.
    if (counters !== undefined) {
      if (error instanceof GatewayResultError) counters.answered(error.resultCode, error.resultName)
      else if (error instanceof TimeoutError) counters.timeouts++
      else if (error instanceof NetworkError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED') counters.refusals++
    }
    throw error
  }
}

async function exchange (service: SoapService, request: SoapRequest, signal: AbortSignal, maxBodyBytes: number, connection: SoapConnection): Promise<Map<string, string>> {
  const what = `upnp ${request.action} at ${service.controlUrl.href}`
  const { response } = await httpExchange({
    method: 'POST',
    url: service.controlUrl,
    headers: [
      ['Content-Type', 'text/xml; charset="utf-8"'],
      ['SOAPAction', soapActionHeader(service.serviceType, request.action)],
      ...REQUEST_HEADERS
    ],
    body: Buffer.from(encodeSoapRequest(service.serviceType, request), 'utf8'),
    maxBodyBytes,
    signal,
    ...connection
  })
  const success = response.statusCode >= 200 && response.statusCode <= 299
  const body = Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength).toString('utf8')
  let values: Map<string, string>
  try {
    values = decodeSoapResponse(body, request.action)
  } catch (error) {
    // A UPnP fault (normally with HTTP 500) is the answer; any other unreadable body on an
    // error status is an HTTP failure, on a success status a malformed response.
    if (error instanceof GatewayResultError || success) throw error
    throw new HttpStatusError(response.statusCode, `${what} answered HTTP ${response.statusCode}`, { cause: error })
  }
  if (!success) throw new HttpStatusError(response.statusCode, `${what} answered HTTP ${response.statusCode} without a fault`)
  return values
}
