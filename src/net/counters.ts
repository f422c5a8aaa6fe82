/**
 * Where a protocol client counts its exchanges with a gateway. The object is the NAT's (core
 * owns the statistics); the UDP channel and the protocol clients only increment it in place:
 * no allocation on the request path, so counting costs nothing a renewal could measure.
 */
export interface ExchangeCounters {
  /** Requests sent (first transmissions; a UPnP SOAP call is one). */
  requests: number
  /** Datagrams sent again because no answer came (RFC 6886 §3.1, RFC 6887 §8.1.1). */
  retransmissions: number
  /** Requests that ended with no answer within their deadline. */
  timeouts: number
  /** Requests refused by the gateway's host: ICMP port unreachable, a TCP reset (nothing listens there). */
  refusals: number
  /** One answer from the gateway with this result code (0: success) and its protocol's name for it. */
  answered: (code: number, name: string) => void
}
