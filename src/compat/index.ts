/**
 * `import 'natmapper'` on a Node.js that cannot `require()` ES modules (before 20.19 and 22.12,
 * which do not know the exports map's "module-sync" condition): the builtins first, then the
 * package. The order of these two imports is the point of this file.
 */
import './builtins.js'
export * from '../index.js'
