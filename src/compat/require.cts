/**
 * `require('natmapper')` (or 'natmapper/libp2p') on a Node.js that cannot load ES modules
 * synchronously: the exports map's "module-sync" entries serve require() on Node 20.19+ and
 * 22.12+, and this file every older one, with one line that says what to do. Its code is the one
 * Node itself gives the case.
 */
{
  const error = new Error(`natmapper is an ES module: require() of it needs Node.js 20.19+ or 22.12+ (this is ${process.version}); use import() or a newer Node.js`) as Error & { code: string }
  error.code = 'ERR_REQUIRE_ESM'
  throw error
}
