import { discoverNAT } from '../../../src/index.js'
const nat = await discoverNAT({ family: 'IPv6', protocols: ['pcp'], mappingDuration: 3000 })
const m = await nat.newMapping('udp', 26003)
console.log(await m.externalAddr())
await new Promise(r => setTimeout(r, 2500))
await nat.close()
console.log('closed')
