/** The default lifetime natmapper asks for; mappings are renewed every third of it. (60 s) */
export const MAPPING_DURATION = 60_000

/** How long a mapping trusts a cached external address before asking the gateway again. (15 s) */
export const CACHE_TIME = 15_000

/** How long discovery waits for any gateway to answer before rejecting with NoNATFoundError. */
export const DEFAULT_DISCOVERY_TIMEOUT = 2_500

/**
 * After a less preferred protocol answers, how long discovery still waits for a more preferred
 * one that has neither answered nor failed. Gateways that speak both answer within a few
 * milliseconds of each other.
 */
export const DEFAULT_PREFERENCE_WINDOW = 50

/** Default bound on a single request/response exchange with the gateway (retries included). */
export const DEFAULT_REQUEST_TIMEOUT = 4_000

/** How long close() spends deleting mappings at the gateway before giving up. */
export const DEFAULT_CLOSE_TIMEOUT = 2_000

/** RFC 6886 §1.1, RFC 6887 §19.1: the server port for NAT-PMP and PCP. */
export const PCP_SERVER_PORT = 5351

/** RFC 6886 §3.2.1, RFC 6887 §19.1: clients listen here for multicast announcements. */
export const PCP_CLIENT_PORT = 5350
