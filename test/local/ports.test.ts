import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import t from 'tap'
import { freePort } from '../../src/local/services/ports.ts'

// freePort hands child processes a port to listen on. One from listen(0) is in the kernel's ephemeral
// range, which outgoing connections draw from too: on a busy machine one could take it before the child
// binds it (EADDRINUSE). So the port comes from below that range, and is free when handed out.

const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])

const listen = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })

t.test('a port below the ephemeral range that a server can then listen on', async (t) => {
  const held: Server[] = []
  t.teardown(() => Promise.all(held.map((s) => new Promise((r) => s.close(r)))))
  const ports = new Set<number>()
  for (let i = 0; i < 20; i++) {
    const port = await freePort()
    t.ok(port >= 10_000 && port < ephemeralStart, `${port} is outside the ephemeral range (from ${ephemeralStart})`)
    // Held open, so later picks must avoid it: every port handed out is one nobody holds.
    held.push(await listen(port))
    ports.add(port)
  }
  t.equal(ports.size, 20, 'twenty ports held at once, twenty different ports')
})
