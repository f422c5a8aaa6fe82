/** `import 'natmapper/libp2p'` on a Node.js that cannot `require()` ES modules: see ./index.ts. */
import './builtins.js'
export * from '../libp2p/index.js'
