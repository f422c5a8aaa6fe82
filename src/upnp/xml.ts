/**
 * A bounded XML reader for UPnP device descriptions and SOAP responses, built on saxes.
 *
 * Why saxes: it is a small, strict, streaming parser (one dependency, xmlchars) that is kept up
 * by the jsdom maintainers and has no DTD processing code at all: it never reads an internal
 * subset, so entity declarations cannot be expanded (a billion-laughs document leaves `&lol9;`
 * as an undefined reference) and external entities are never fetched. We go further and refuse
 * any document that carries a DOCTYPE: UDA 1.1 §2 descriptions do not use DTDs and SOAP 1.1 §3
 * forbids them in messages, so a DOCTYPE from a gateway is never legitimate. fast-xml-parser was
 * the other candidate; it does parse DOCTYPE entity declarations (with expansion limits) and has
 * had several advisories in exactly that code, so it was not chosen.
 *
 * The reader keeps a small element tree (local names only: routers use every namespace prefix
 * under the sun) and enforces limits on depth, element count and text length, so a hostile
 * document costs at most linear time in its (already capped) size.
 */
import { createRequire } from 'node:module'
import type { SaxesParser } from 'saxes'
import { MalformedMessageError } from '../errors.js'

export interface XmlElement {
  /** The local name: whatever prefix the sender used (`s:`, `SOAP-ENV:`, `ns0:`) is dropped. */
  readonly name: string
  readonly children: XmlElement[]
  /** Character data directly inside this element (CDATA included), not trimmed. */
  text: string
}

export interface XmlLimits {
  /** Deepest element nesting accepted. */
  maxDepth: number
  /** Most elements accepted in the whole document. */
  maxElements: number
  /** Longest text accepted directly inside one element, in characters. */
  maxTextLength: number
  /** Most recoverable well-formedness errors tolerated before the document is refused. */
  maxRecoverableErrors: number
}

/**
 * A device description nests root/device/deviceList/device/deviceList/device/serviceList/
 * service/controlURL (9 levels); SOAP responses nest 5. 32 leaves room for odd vendors.
 */
export const DEFAULT_XML_LIMITS: Readonly<XmlLimits> = {
  maxDepth: 32,
  maxElements: 4_096,
  maxTextLength: 8_192,
  maxRecoverableErrors: 32
}

/** What may follow `&` in a reference; bounded, so each test is constant time. */
const REFERENCE_AFTER_AMPERSAND = /(?:[A-Za-z_][\w.-]{0,31}|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});/y

/**
 * Escapes each `&` that does not start a character or entity reference. Some routers print
 * "AT&T" or "Bits & Bytes" unescaped in friendlyName; saxes would otherwise swallow the rest of
 * the document as an entity name. CDATA sections are left alone (an `&` there is literal). One
 * pass with cached positions, so the cost is linear in the text.
 */
export function escapeBareAmpersands (text: string): string {
  let out = ''
  let position = 0
  let cdata = text.indexOf('<![CDATA[')
  while (true) {
    const ampersand = text.indexOf('&', position)
    if (ampersand === -1) break
    if (cdata !== -1 && cdata < ampersand) {
      const end = text.indexOf(']]>', cdata + 9)
      const resume = end === -1 ? text.length : end + 3
      out += text.slice(position, resume)
      position = resume
      cdata = end === -1 ? -1 : text.indexOf('<![CDATA[', resume)
      continue
    }
    REFERENCE_AFTER_AMPERSAND.lastIndex = ampersand + 1
    out += text.slice(position, ampersand) + (REFERENCE_AFTER_AMPERSAND.test(text) ? '&' : '&amp;')
    position = ampersand + 1
  }
  return out + text.slice(position)
}

let saxes: { SaxesParser: typeof SaxesParser } | undefined

/**
 * Loads saxes on first use rather than at import: programs whose gateway speaks PCP or NAT-PMP
 * never parse XML, and loading it costs about 10 ms. The UPnP probe calls this while it waits
 * for SSDP answers, so that the first description does not wait for it either.
 */
export function loadXmlParser (): { SaxesParser: typeof SaxesParser } {
  saxes ??= createRequire(import.meta.url)('saxes') as { SaxesParser: typeof SaxesParser }
  return saxes
}

/** Parses `text` into an element tree, or throws MalformedMessageError naming `what`. */
export function parseXml (text: string, what: string, limits: Readonly<XmlLimits> = DEFAULT_XML_LIMITS): XmlElement {
  const fail = (reason: string): MalformedMessageError => new MalformedMessageError('upnp', `${what}: ${reason}`)
  const parser = new (loadXmlParser().SaxesParser)({ xmlns: false, position: false })
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  let rootClosed = false
  let elements = 0
  let recoverableErrors = 0
  let lastError = ''

  const appendText = (data: string): void => {
    const top = stack.at(-1)
    if (top === undefined) return
    if (top.text.length + data.length > limits.maxTextLength) throw fail(`text in <${top.name}> exceeds ${limits.maxTextLength} characters`)
    top.text += data
  }

  parser.on('doctype', () => { throw fail('a DOCTYPE is not allowed (entity declarations are never processed)') })
  parser.on('opentag', (tag) => {
    elements++
    if (elements > limits.maxElements) throw fail(`more than ${limits.maxElements} elements`)
    if (stack.length >= limits.maxDepth) throw fail(`elements nested deeper than ${limits.maxDepth}`)
    const element: XmlElement = { name: localName(tag.name), children: [], text: '' }
    const parent = stack.at(-1)
    if (parent !== undefined) {
      parent.children.push(element)
    } else if (root === undefined) {
      root = element
    }
    // A second root element (a recoverable error) is parsed for its limits but not kept.
    stack.push(element)
  })
  parser.on('closetag', () => {
    const closed = stack.pop()
    if (closed !== undefined && closed === root) rootClosed = true
  })
  parser.on('text', appendText)
  parser.on('cdata', appendText)
  parser.on('error', (error) => {
    // saxes reports and recovers from most well-formedness errors (an undefined entity, a stray
    // close tag, text after the root); we tolerate a few, as miniupnpc's parser does, and
    // judge the document by the tree it produced.
    recoverableErrors++
    lastError = error.message
    if (recoverableErrors > limits.maxRecoverableErrors) throw fail(`too many XML errors (last: ${lastError})`)
  })

  try {
    parser.write(escapeBareAmpersands(text)).close()
  } catch (error) {
    if (error instanceof MalformedMessageError) throw error
    throw new MalformedMessageError('upnp', `${what}: XML parser failed`, { cause: error })
  }
  if (root === undefined) throw fail(`no root element${lastError === '' ? '' : ` (${lastError})`}`)
  if (!rootClosed) throw fail(`document ends inside <${root.name}>${lastError === '' ? '' : ` (${lastError})`}`)
  return root
}

/** The part of a qualified name after its prefix. */
export function localName (qualifiedName: string): string {
  return qualifiedName.slice(qualifiedName.indexOf(':') + 1)
}

/** The first child whose local name is `name` (case-insensitive: vendors disagree on `controlURL`). */
export function childNamed (element: XmlElement, name: string): XmlElement | undefined {
  const wanted = name.toLowerCase()
  return element.children.find((child) => child.name.toLowerCase() === wanted)
}

/** The trimmed text of the child called `name`, or undefined when there is no such child. */
export function childText (element: XmlElement, name: string): string | undefined {
  return childNamed(element, name)?.text.trim()
}

/**
 * Escapes text for use as element content or a quoted attribute value. Characters XML 1.0 cannot
 * carry at all (C0 controls other than tab/LF/CR, lone surrogates, U+FFFE/U+FFFF) are dropped:
 * a router's parser would reject the whole request over them.
 */
export function escapeXml (value: string): string {
  return value.replace(XML_FORBIDDEN, '').replace(/[&<>"'\r]/g, (character) => XML_ESCAPES[character] ?? character)
}

// eslint-disable-next-line no-control-regex
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

const XML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // A literal CR would reach the reader as LF (XML 1.0 §2.11 end-of-line handling).
  '\r': '&#13;'
}
