/**
 * The package as its users meet it: the tarball from `npm pack` (not the source tree), installed
 * into a fresh project outside the repository. Its contents and size; every TypeScript example of
 * README.md, taken from README.md itself, compiled against it under moduleResolution node16,
 * nodenext and bundler; the README's library example run in the lab as an ES module and through
 * require(), on the Node running this file (CI: 20, 22 and 24); and on a Node that cannot load ES
 * modules synchronously (20.15.1, from scripts/node-binaries.sh), the one-line require() error
 * beside a working import.
 *
 * No network: `npm install --offline` takes the tarball, and the packages it and the examples need
 * as file: links to this repository's node_modules (what `npm ci` installed from the lockfile).
 * Packs what dist/ holds: it must have been built from the current sources (CI builds first).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, beforeEach, describe, it } from 'node:test'
import { gatewayHolds, lab, labSuite, ROOT } from '../helpers/lab.js'

/**
 * The budget for the package: the tarball as the registry stores it, and unpacked. Set at 140 kB /
 * 480 kB when the package was 109 / 369 kB; the service mode (serve, status, metrics, the config
 * parser: the CLI bundle went from ~40 to 74 kB) and the systemd files brought it to 150 / 502 kB.
 * About 13 % room above that: a source map, a test folder or a stray bundle still breaks it.
 */
const PACKED_BYTES_LIMIT = 170_000
const UNPACKED_BYTES_LIMIT = 570_000

/**
 * What the tarball may hold at its top level (anything else fails), and files it must hold. A new
 * shipped file or folder goes into both lists.
 */
const TOP_LEVEL = ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist', 'systemd']
const REQUIRED_FILES = ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'systemd/natmapper.service', 'systemd/natmapper.conf']
/** Never in the tarball, wherever they are. */
const FORBIDDEN = [/\.map$/, /\.test\.[cm]?[jt]s$/, /(^|\/)(src|test|lab|scripts|node_modules)\//, /^\.|\/\./, /tsconfig/]

/** The Node that cannot require() ES modules: before 20.16, so the ES import takes dist/compat/'s builtins too. */
const NODE_WITHOUT_REQUIRE_ESM = '20.15.1'

/**
 * Packages the consumer project links besides natmapper's own dependencies: the examples' imports
 * and the compiler. A linked package finds its own dependencies where it really is.
 */
const EXAMPLE_PACKAGES = ['libp2p', '@libp2p/tcp', '@libp2p/interface', '@multiformats/multiaddr', 'typescript', '@types/node']

/** Whether this Node loads ES modules from require() (20.19+, 22.12+, 23+): where "module-sync" applies. */
function requiresEsm (version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number)
  return major >= 23 || (major === 22 && minor >= 12) || (major === 20 && minor >= 19)
}

/** Every ```ts block of README.md, in order. */
function readmeExamples (): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '')
}

/** The README's library example: the block that imports from 'natmapper' itself. */
function libraryExample (examples: string[]): string {
  const example = examples.find((text) => /from 'natmapper'$/m.test(text))
  assert.ok(example !== undefined, 'README.md has a ```ts example importing from \'natmapper\'')
  return example
}

/**
 * The same example as a CommonJS module: its imports stay (TypeScript turns them into require()
 * calls in a .cts file) and the rest runs inside an async function, since CommonJS has no
 * top-level await.
 */
function asCommonJs (example: string): string {
  const lines = example.split('\n')
  const body = lines.findIndex((line) => !/^import .* from '[^']+'$/.test(line) && line.trim() !== '')
  return [...lines.slice(0, body), 'async function main (): Promise<void> {', ...lines.slice(body), '}',
    'main().catch((error: unknown) => { console.error(error); process.exitCode = 1 })', ''].join('\n')
}

function run (command: string, args: string[], cwd: string, timeout = 120_000): { status: number | null, stdout: string, stderr: string } {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr + (result.error === undefined ? '' : String(result.error)) }
}

function newestMtime (dir: string): number {
  return Math.max(...readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((file) => statSync(join(dir, file)).mtimeMs))
}

interface Packed { tarball: string, files: string[], size: number, unpackedSize: number }

const work = mkdtempSync(join(tmpdir(), 'natmapper-package-'))
const consumer = join(work, 'consumer')
let packed: Packed

/** npm pack into `work`, then a fresh ES module project in `consumer` with the tarball installed. */
function packAndInstall (): void {
  assert.ok(existsSync(join(ROOT, 'dist')) && newestMtime(join(ROOT, 'dist')) >= newestMtime(join(ROOT, 'src')), 'dist/ is missing or older than src/: run npm run build first')
  const pack = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)
  assert.equal(pack.status, 0, pack.stderr)
  const [report] = JSON.parse(pack.stdout) as Array<{ filename: string, files: Array<{ path: string }>, size: number, unpackedSize: number }>
  assert.ok(report !== undefined)
  packed = { tarball: join(work, report.filename), files: report.files.map((file) => file.path).sort(), size: report.size, unpackedSize: report.unpackedSize }

  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
  const dependencies: Record<string, string> = { natmapper: `file:${packed.tarball}` }
  for (const name of [...Object.keys(manifest.dependencies ?? {}), ...EXAMPLE_PACKAGES]) dependencies[name] = `file:${join(ROOT, 'node_modules', name)}`
  mkdirSync(consumer)
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies }, null, 2))
  const install = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], consumer)
  assert.equal(install.status, 0, install.stderr + install.stdout)
}

// Once, before the first test; a failure fails every test with it (a failed before() hook would
// leave them uncounted).
let setUp: { error?: unknown } | undefined
beforeEach(() => {
  if (setUp === undefined) {
    setUp = {}
    try { packAndInstall() } catch (error) { setUp.error = error }
  }
  if (setUp.error !== undefined) throw setUp.error
})
after(() => { rmSync(work, { recursive: true, force: true }) })

describe('the tarball', () => {
  it(`holds what users need and nothing else, within ${PACKED_BYTES_LIMIT / 1000} kB packed and ${UNPACKED_BYTES_LIMIT / 1000} kB unpacked`, () => {
    const strays = packed.files.filter((file) => !TOP_LEVEL.includes(file.split('/')[0] ?? ''))
    assert.deepEqual(strays, [], `only ${TOP_LEVEL.join(', ')} at the top level`)
    assert.deepEqual(packed.files.filter((file) => FORBIDDEN.some((pattern) => pattern.test(file))), [], 'no source maps, sources, tests or dotfiles')
    for (const file of REQUIRED_FILES) assert.ok(packed.files.includes(file), `${file} is in the tarball`)
    assert.ok(packed.size <= PACKED_BYTES_LIMIT, `packed ${packed.size} bytes`)
    assert.ok(packed.unpackedSize <= UNPACKED_BYTES_LIMIT, `unpacked ${packed.unpackedSize} bytes`)
    console.log(`# tarball: ${packed.files.length} files, ${packed.size} bytes packed, ${packed.unpackedSize} unpacked`)
  })

  it('holds every file its exports map and bin name', () => {
    const manifest = JSON.parse(readFileSync(join(consumer, 'node_modules/natmapper/package.json'), 'utf8')) as { exports: Record<string, Record<string, string>>, bin: Record<string, string>, types: string, main: string }
    const named = [manifest.types, manifest.main, ...Object.values(manifest.bin), ...Object.values(manifest.exports).flatMap((conditions) => Object.values(conditions))]
    for (const path of named) assert.ok(packed.files.includes(path.replace(/^\.\//, '')), `${path} is in the tarball`)
    for (const [entry, conditions] of Object.entries(manifest.exports)) {
      // "module": bundlers (esbuild, webpack, rollup) take the bundle for import and require alike.
      assert.deepEqual(Object.keys(conditions), ['types', 'module-sync', 'module', 'import', 'require', 'default'], `${entry}: types first, module-sync and module before import and require`)
    }
  })

  // What each Node picks: "module-sync" (the bundle itself, for import and require alike: one
  // instance of every class) where require() loads ES modules, else dist/compat/.
  const RESOLVE = `
    import { createRequire } from 'node:module'
    const require = createRequire(import.meta.url)
    const inPackage = (path) => path.replace(/^.*\\/node_modules\\/natmapper\\//, '')
    const picked = {}
    for (const entry of ['natmapper', 'natmapper/libp2p']) picked[entry] = { import: inPackage(import.meta.resolve(entry)), require: inPackage(require.resolve(entry)) }
    if (process.features.require_module === true) picked.sameInstance = require('natmapper').NAT === (await import('natmapper')).NAT
    console.log(JSON.stringify(picked))`
  const modern = { natmapper: { import: 'dist/index.js', require: 'dist/index.js' }, 'natmapper/libp2p': { import: 'dist/libp2p/index.js', require: 'dist/libp2p/index.js' }, sameInstance: true }
  const older = { natmapper: { import: 'dist/compat/index.js', require: 'dist/compat/require.cjs' }, 'natmapper/libp2p': { import: 'dist/compat/libp2p.js', require: 'dist/compat/require.cjs' } }

  it(`resolves to the bundle through "module-sync" on Node ${process.versions.node}${requiresEsm(process.versions.node) ? ', the same module for import and require' : ''}`, () => {
    const result = run(process.execPath, ['--input-type=module', '-e', RESOLVE], consumer)
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), requiresEsm(process.versions.node) ? modern : older)
  })

  it(`resolves to dist/compat/ on Node ${NODE_WITHOUT_REQUIRE_ESM}`, () => {
    const result = run(oldNode(), ['--input-type=module', '-e', RESOLVE], consumer)
    assert.equal(result.status, 0, result.stderr)
    assert.deepEqual(JSON.parse(result.stdout), older)
  })

  it('a bundler (esbuild) takes the bundle through "module", for require() and import alike', () => {
    writeFileSync(join(consumer, 'app-require.cjs'), "console.log(typeof require('natmapper').discoverNAT)\n")
    writeFileSync(join(consumer, 'app-import.js'), "import { discoverNAT } from 'natmapper'\nconsole.log(typeof discoverNAT)\n")
    for (const app of ['app-require.cjs', 'app-import.js']) {
      const bundled = join(consumer, `bundled-${app}.cjs`)
      const bundle = run(join(ROOT, 'node_modules/.bin/esbuild'), [app, '--bundle', '--platform=node', '--format=cjs', '--log-level=warning', `--outfile=${bundled}`], consumer)
      assert.equal(bundle.status, 0, bundle.stderr)
      const result = run(process.execPath, [bundled], consumer)
      assert.equal(result.stdout, 'function\n', `${app}: ${result.stderr}`)
    }
  })

  it('installs the natmapper command: --version', () => {
    const result = run(process.execPath, [join(consumer, 'node_modules/.bin/natmapper'), '--version'], consumer)
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stdout, /^natmapper \d+\.\d+\.\d+\n$/)
  })
})

describe('every TypeScript example of README.md compiles against the tarball', () => {
  const examples = readmeExamples()
  const resolutions = [
    { name: 'node16', module: 'node16', moduleResolution: 'node16' },
    { name: 'nodenext', module: 'nodenext', moduleResolution: 'nodenext' },
    { name: 'bundler', module: 'esnext', moduleResolution: 'bundler' }
  ]

  it('README.md has the library and the js-libp2p examples', () => {
    assert.ok(examples.length >= 2, `${examples.length} examples`)
    assert.ok(examples.some((text) => /from 'natmapper\/libp2p'/.test(text)), 'the js-libp2p example')
    libraryExample(examples)
  })

  /** Compiles `files` (name -> text) in consumer/<name> with tsc; a failure shows tsc's output. */
  function compile (name: string, files: Record<string, string>, compilerOptions: Record<string, unknown>): void {
    const dir = join(consumer, name)
    mkdirSync(dir)
    for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text)
    const options = { target: 'ES2022', lib: ['ES2023', 'ESNext.Disposable'], types: ['node'], strict: true, ...compilerOptions }
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: Object.keys(files) }, null, 2))
    const tsc = run(process.execPath, [join(consumer, 'node_modules/typescript/bin/tsc'), '-p', dir], dir)
    assert.equal(tsc.status, 0, `tsc (${name}):\n${tsc.stdout}${tsc.stderr}`)
  }

  // js-libp2p's own declarations use DOM types (EventInit, JsonWebKey): its users compile with the
  // DOM library, and so do these. Checking js-libp2p's declarations is js-libp2p's business and
  // takes three times as long as the rest (skipLibCheck); natmapper's are checked in full below.
  for (const resolution of resolutions) {
    it(`moduleResolution ${resolution.name}`, () => {
      compile(resolution.name, Object.fromEntries(examples.map((text, index) => [`readme-${index + 1}.ts`, text])), {
        module: resolution.module, moduleResolution: resolution.moduleResolution, lib: ['ES2023', 'ESNext.Disposable', 'DOM'], skipLibCheck: true, noEmit: true
      })
    })
  }

  it('the library example as an ES module and as CommonJS (require), nodenext, without DOM, natmapper\'s declarations checked: the files the lab runs', () => {
    const example = libraryExample(examples)
    compile('run', { 'library-example.ts': example, 'library-example.cts': asCommonJs(example) },
      { module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out', noEmitOnError: true })
  })
})

labSuite('the README\'s library example, from the tarball, in the lab', { profile: 'stock' }, () => {
  const ranOn = (node: string, file: string): { status: number | null, stdout: string, stderr: string } =>
    run('ip', ['netns', 'exec', lab.lanNamespace, node, file], consumer, 60_000)

  /** What the example prints against the lab's gateway, and that `await using` deleted its mapping. */
  function assertExampleRan (result: { status: number | null, stdout: string, stderr: string }): void {
    assert.equal(result.status, 0, result.stdout + result.stderr)
    // Which protocol wins the race is not the point here (PCP, unless the machine is slow enough that
    // NAT-PMP's answer comes more than preferenceWindow before PCP's).
    assert.match(result.stdout, new RegExp(`^(pcp|nat-pmp|upnp-igd2) ${lab.gatewayLanAddress.replaceAll('.', '\\.')}$`, 'm'))
    const reachable = new RegExp(`^reachable at ${lab.gatewayWanAddress.replaceAll('.', '\\.')}:(\\d+)$`, 'm').exec(result.stdout)
    assert.ok(reachable !== null, result.stdout)
    assert.ok(!gatewayHolds('tcp', Number(reachable[1])), 'the mapping was deleted at the gateway when the example ended')
  }

  it(`as an ES module, on Node ${process.versions.node}`, () => {
    assertExampleRan(ranOn(process.execPath, join(consumer, 'run/out/library-example.js')))
  })

  if (requiresEsm(process.versions.node)) {
    it(`through require(), on Node ${process.versions.node}: the same example, and both entry points`, () => {
      assert.equal((process.features as { require_module?: boolean }).require_module, true, 'Node says it loads ES modules from require()')
      assertExampleRan(ranOn(process.execPath, join(consumer, 'run/out/library-example.cjs')))
      const entries = major() >= 22 ? ['natmapper', 'natmapper/libp2p'] : ['natmapper']   // js-libp2p 3 needs Node 22
      const loaded = run(process.execPath, ['-e', `for (const entry of ${JSON.stringify(entries)}) console.log(entry, Object.keys(require(entry)).sort().join(' '))`], consumer)
      assert.equal(loaded.status, 0, loaded.stderr)
      assert.match(loaded.stdout, /^natmapper .*\bNAT\b.*\bdiscoverNAT\b.*\bmapEveryFamily\b/m)
      if (entries.length === 2) assert.match(loaded.stdout, /^natmapper\/libp2p natMapper$/m)
      console.log(`# require() on Node ${process.versions.node}:\n${loaded.stdout.trim().replace(/^/gm, '#   ')}`)
    })
  } else {
    it(`Node ${process.versions.node} cannot require() ES modules: the one-line error`, () => {
      assertRequireRefused(process.execPath)
    })
  }

  it(`on Node ${NODE_WITHOUT_REQUIRE_ESM}: the ES module and the natmapper command work, and require() of either entry point fails with one line naming the Node needed`, () => {
    const old = oldNode()
    assertExampleRan(ranOn(old, join(consumer, 'run/out/library-example.js')))
    const version = run(old, [join(consumer, 'node_modules/.bin/natmapper'), '--version'], consumer)
    assert.equal(version.status, 0, version.stderr)
    assert.match(version.stdout, /^natmapper \d+\.\d+\.\d+\n$/)
    assertRequireRefused(old)
  })

  function assertRequireRefused (node: string): void {
    const version = run(node, ['-p', 'process.version'], consumer).stdout.trim()
    for (const entry of ['natmapper', 'natmapper/libp2p']) {
      const result = run(node, ['-e', `require('${entry}')`], consumer)
      assert.equal(result.status, 1)
      const line = result.stderr.split('\n').find((text) => text.startsWith('Error'))
      assert.equal(line, `Error: natmapper is an ES module: require() of it needs Node.js 20.19+ or 22.12+ (this is ${version}); use import() or a newer Node.js`)
      assert.match(result.stderr, /code: 'ERR_REQUIRE_ESM'/)
      console.log(`# require('${entry}') on Node ${version}: ${line}`)
    }
  }
})

/** The Node without require() of ES modules, fetched by scripts/node-binaries.sh (test-every-node.sh fetches it first). */
function oldNode (): string {
  const fetched = run('bash', [join(ROOT, 'scripts/node-binaries.sh'), NODE_WITHOUT_REQUIRE_ESM], ROOT, 300_000)
  assert.equal(fetched.status, 0, fetched.stderr)
  return fetched.stdout.trim().split(' ')[1] ?? ''
}

function major (): number {
  return Number(process.versions.node.split('.')[0])
}
