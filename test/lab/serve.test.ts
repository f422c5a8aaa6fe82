import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { after, it } from 'node:test'
import type { ServiceStatus } from '../../src/cli/status.js'
import { gatewayHolds, gatewayHoldsPinhole, lab, labSuite, runLabScript, WanProber } from '../helpers/lab.js'
import { Cli, echoService, listening, natmapper } from '../helpers/lab-cli.js'
import { readExposition } from '../helpers/prometheus.js'

// `natmapper serve` as a service meets it, on the router as shipped (stock profile): a config
// file naming three mappings (TCP and UDP, IPv4 and IPv6), each reachable from the WAN host;
// a gateway restart that forgets everything; a reload that removes one and adds one; a reload
// of a broken file; the status socket and the metrics endpoint; SIGTERM.
//
// --protocol nat-pmp,upnp: IPv4 over NAT-PMP, IPv6 pinholes over UPnP WANIPv6FirewallControl.
// Not PCP: miniupnpd 2.3.1 refuses to delete a PCP IPv6 pinhole once it has been renewed
// (lab/README.md, "IPv6"), and this test runs past the first renewal, so "nothing left at the
// gateway after SIGTERM" would be miniupnpd's bug to fail, not ours. PCP under serve is the
// fake-gateway test's (test/unit/cli-serve.test.ts).
labSuite('lab: natmapper serve', { mode: 'all', profile: 'stock' }, () => {
  const directory = mkdtempSync(`${tmpdir()}/natmapper-serve-lab-`)
  after(() => { rmSync(directory, { recursive: true, force: true }) })

  it('holds a config file\'s mappings across a gateway restart and two reloads, reports them, deletes them on SIGTERM', async () => {
    const WAN = lab.gatewayWanAddress
    const LAN6 = lab.lanAddress6
    const config = `${directory}/natmapper.conf`
    const section = (name: string, protocol: 'tcp' | 'udp', port: number, family: string): string =>
      `[${name}]\nprotocol = ${protocol}\nport = ${port}\nfamily = ${family}\ndescription = serve test ${name}\n`
    const web = section('web', 'tcp', 27_300, 'all')
    const game = section('game', 'udp', 27_301, 'ipv4')
    const chat = section('chat', 'tcp', 27_302, 'ipv6')
    const voice = section('voice', 'udp', 27_303, 'ipv4')
    writeFileSync(config, `# three mappings\n${web}\n${game}\n${chat}`)

    const services = [echoService(27_300), echoService(27_301, 'udp'), echoService(27_302), echoService(27_303, 'udp')]
    const env = { ...process.env, RUNTIME_DIRECTORY: `${directory}/run` }
    const cli = new Cli(['serve', '--config', config, '--protocol', 'nat-pmp,upnp', '--metrics', '127.0.0.1:9464', '--json'], { env })
    const prober = new WanProber()
    try {
      await Promise.all(services.map(async (service) => { await listening(service) }))
      const established = (name: string, family: string): Record<string, unknown> | undefined =>
        cli.events.filter((e) => (e.event === 'established' || e.event === 'recovered') && e.name === name && e.family === family).at(-1)
      await cli.until('established all four', () => [['web', 'IPv4'], ['web', 'IPv6'], ['game', 'IPv4'], ['chat', 'IPv6']].every(([name = '', family = '']) => established(name, family) !== undefined), 60_000)
      const webPort = established('web', 'IPv4')?.port as number
      const gamePort = established('game', 'IPv4')?.port as number
      assert.deepEqual([established('web', 'IPv4')?.address, established('game', 'IPv4')?.address], [WAN, WAN], cli.transcript())
      assert.deepEqual([established('web', 'IPv6')?.address, established('web', 'IPv6')?.port, established('chat', 'IPv6')?.port], [LAN6, 27_300, 27_302])
      assert.deepEqual([established('web', 'IPv4')?.type, established('web', 'IPv6')?.type], ['nat-pmp', 'upnp-igd2'])

      const all = (): Array<['tcp' | 'udp', string, () => number]> => [
        ['tcp', WAN, () => webPort], ['udp', WAN, () => gamePort], ['tcp', LAN6, () => 27_300], ['tcp', LAN6, () => 27_302]
      ]
      const held = (): void => {
        assert.ok(gatewayHolds('tcp', webPort) && gatewayHolds('udp', gamePort), runLabScript('gateway.sh', ['mappings']))
        assert.ok(gatewayHoldsPinhole('tcp', LAN6, 27_300) && gatewayHoldsPinhole('tcp', LAN6, 27_302), 'both pinholes')
      }
      held()
      for (const [protocol, address, port] of all()) await prober.untilReachable(protocol, address, port, 30_000)

      // The gateway restarts and forgets every mapping: all of them come back, on the same ports.
      runLabScript('gateway.sh', ['restart', '--flush'])
      for (const [protocol, address, port] of all()) await prober.untilReachable(protocol, address, port, 90_000)
      held()

      // A reload: [game] removed, [voice] added, [web] and [chat] untouched.
      writeFileSync(config, `${web}\n${chat}\n${voice}`)
      cli.signal('SIGHUP')
      await cli.until('reloaded', () => cli.events.some((e) => e.event === 'reloaded'))
      assert.deepEqual(cli.events.find((e) => e.event === 'reloaded'), { event: 'reloaded', config, added: 1, removed: 1, unchanged: 3, time: cli.events.find((e) => e.event === 'reloaded')?.time })
      await cli.until('voice established', () => established('voice', 'IPv4') !== undefined, 30_000)
      const voicePort = established('voice', 'IPv4')?.port as number
      assert.ok(cli.events.some((e) => e.event === 'deleted' && e.name === 'game' && e.held === true), cli.transcript())
      assert.ok(!gatewayHolds('udp', gamePort), 'the removed mapping is gone at the gateway')
      await prober.untilReachable('udp', WAN, () => voicePort, 30_000)
      assert.equal(established('web', 'IPv4')?.port, webPort, 'untouched: the same external port')
      assert.ok(gatewayHolds('tcp', webPort) && gatewayHoldsPinhole('tcp', LAN6, 27_300) && gatewayHoldsPinhole('tcp', LAN6, 27_302))
      const webEvents = (): number => cli.events.filter((e) => e.name === 'web').length

      // A broken file: one line saying where, and everything held as it was.
      const before = webEvents()
      writeFileSync(config, `${web}\n[chat]\nprotocol = tcp\nport = 27302\nfamily = ipv6\nexternal-port = 0\n`)
      const stderrBefore = cli.stderr.length
      cli.signal('SIGHUP')
      await cli.until('refused the reload', () => cli.stderr.length > stderrBefore)
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.deepEqual(cli.stderr.slice(stderrBefore), [`natmapper: ${config}:11: bad external-port "0": expected a whole number from 1 to 65535; the 4 mapping(s) held are left as they were`])
      assert.equal(webEvents(), before, 'nothing happened to the mappings')
      for (const [protocol, address, port] of [['tcp', WAN, webPort], ['udp', WAN, voicePort], ['tcp', LAN6, 27_300], ['tcp', LAN6, 27_302]] as const) {
        const reach = await prober.probe(protocol, address, port, 3_000)
        assert.ok(reach.ok, `${protocol} ${address}:${port} still reachable: ${reach.error ?? ''}`)
      }

      // natmapper status --json: the mappings, and counters that match what happened.
      const status = await natmapper(['status', '--json'], { env })
      assert.equal(status.code, 0, status.cli.transcript())
      const found = JSON.parse(status.stdout) as ServiceStatus
      assert.deepEqual(found.mappings.map((m) => [m.name, m.family, m.protocol, m.established, m.externalAddress, m.externalPort]), [
        ['web', 'IPv4', 'tcp', true, WAN, webPort],
        ['web', 'IPv6', 'tcp', true, LAN6, 27_300],
        ['chat', 'IPv6', 'tcp', true, LAN6, 27_302],
        ['voice', 'IPv4', 'udp', true, WAN, voicePort]
      ])
      assert.ok(found.mappings.every((m) => m.lastError === null && m.leaseSecondsLeft !== null && m.leaseSecondsLeft > 0), JSON.stringify(found.mappings))
      assert.deepEqual([found.reloads, found.reloadsRefused], [1, 1])
      const ipv4 = found.families.find((f) => f.family === 'IPv4')?.stats
      const ipv6 = found.families.find((f) => f.family === 'IPv6')?.stats
      assert.ok(ipv4 !== undefined && ipv4 !== null && ipv6 !== undefined && ipv6 !== null, JSON.stringify(found.families))
      assert.ok(ipv4.gatewayResets >= 1, `the restart was seen: ${JSON.stringify(ipv4)}`)
      const natPmp = ipv4.protocols['nat-pmp']
      // web, game and voice were each granted once; the restart renewed them (they never lapsed).
      assert.deepEqual([natPmp.mappingsEstablished, natPmp.mappingsLost, natPmp.mappingsRecovered], [3, 0, 0], JSON.stringify(natPmp))
      assert.ok(natPmp.requests >= 3 && (natPmp.answers.find((a) => a.code === 0)?.count ?? 0) >= 3, JSON.stringify(natPmp))
      assert.equal(ipv4.protocols.pcp.requests, 0, 'PCP was not used')
      assert.equal(ipv6.protocols.upnp.mappingsEstablished, 2, JSON.stringify(ipv6.protocols.upnp))
      assert.ok(ipv4.sinceLastSuccessMs !== null && ipv4.sinceLastSuccessMs < 60_000)

      // The metrics endpoint, scraped from the LAN host's own loopback, line by line.
      const scrape = spawnSync('ip', ['netns', 'exec', lab.lanNamespace, process.execPath, '-e',
        'fetch("http://127.0.0.1:9464/metrics").then(async (r) => { process.stdout.write(await r.text()) })'], { encoding: 'utf8' })
      assert.equal(scrape.status, 0, scrape.stderr)
      const { samples } = readExposition(scrape.stdout)
      const sample = (name: string, labels: Record<string, string>): number | undefined =>
        samples.find((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value))?.value
      assert.equal(sample('natmapper_mapping_established', { name: 'voice', family: 'ipv4' }), 1)
      assert.equal(sample('natmapper_mapping_external_port', { name: 'web', family: 'ipv4' }), webPort)
      assert.equal(sample('natmapper_gateway_resets_total', { family: 'ipv4' }), ipv4.gatewayResets)
      assert.equal(sample('natmapper_mapping_events_total', { family: 'ipv4', protocol: 'nat-pmp', event: 'established' }), 3)

      cli.signal('SIGTERM')
      assert.equal(await cli.exit(), 0, cli.transcript())
      assert.equal(cli.events.at(-1)?.event, 'stopped')
      assert.equal(runLabScript('gateway.sh', ['mappings']).trim(), '', 'no IPv4 rule left')
      assert.ok(!gatewayHoldsPinhole('tcp', LAN6, 27_300) && !gatewayHoldsPinhole('tcp', LAN6, 27_302), 'no pinhole left')
    } catch (error) {
      // What the service printed, and the gateway's log, beside whatever failed.
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${cli.transcript()}`, { cause: error })
    } finally {
      prober.close()
      cli.kill()
      for (const service of services) service.kill('SIGKILL')
    }
  })
})
