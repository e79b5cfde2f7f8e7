#!/usr/bin/env node
// Reference legacy-session client: @atproto/api's AtpAgent (pinned in package.json) against a PDS.
//
// Steps (each reported pass/fail in the final JSON line on stdout):
//   login        agent.login({identifier, password}) -> createSession
//   getSession   agent.com.atproto.server.getSession() with the access JWT
//   refresh      agent.sessionManager.refreshSession() -> refreshSession with the refresh JWT
//   getSession2  getSession again with the rotated access JWT
//   logout       agent.logout() -> deleteSession with the refresh JWT
//   afterLogout  refreshSession with the deleted refresh JWT must fail (ExpiredToken)
//
// Options: --service URL  --identifier ID  --password P  [--expect-scope SCOPE]
// (SCOPE is checked against the access JWT's `scope` claim, e.g. com.atproto.appPass.)
import { AtpAgent } from '@atproto/api'

function parseArgs(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${argv[i]}`)
    out[argv[i].slice(2)] = argv[i + 1]
  }
  return out
}

const args = parseArgs(process.argv.slice(2))
const steps = {}
const result = { steps, ok: false }
const claims = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

async function step(name, fn) {
  try {
    const detail = await fn()
    steps[name] = { ok: true, ...(detail ?? {}) }
  } catch (err) {
    steps[name] = { ok: false, error: err?.error ?? err?.name, status: err?.status, message: String(err?.message ?? err) }
    throw err
  }
}

try {
  const agent = new AtpAgent({ service: args.service })
  await step('login', async () => {
    const res = await agent.login({ identifier: args.identifier, password: args.password })
    const scope = claims(res.data.accessJwt).scope
    if (args['expect-scope'] && scope !== args['expect-scope']) throw new Error(`scope ${scope}`)
    return { did: res.data.did, handle: res.data.handle, scope }
  })
  await step('getSession', async () => {
    const res = await agent.com.atproto.server.getSession()
    return { did: res.data.did, handle: res.data.handle }
  })
  const oldRefresh = agent.session.refreshJwt
  await step('refresh', async () => {
    await agent.sessionManager.refreshSession()
    if (agent.session.refreshJwt === oldRefresh) throw new Error('refresh token not rotated')
    return { rotated: true }
  })
  await step('getSession2', async () => {
    const res = await agent.com.atproto.server.getSession()
    return { did: res.data.did }
  })
  const refreshJwt = agent.session.refreshJwt
  await step('logout', async () => {
    await agent.logout()
  })
  await step('afterLogout', async () => {
    const res = await fetch(`${args.service}/xrpc/com.atproto.server.refreshSession`, {
      method: 'POST',
      headers: { authorization: `Bearer ${refreshJwt}` },
    })
    const body = await res.json()
    if (res.status !== 400 || body.error !== 'ExpiredToken') throw new Error(`got ${res.status} ${JSON.stringify(body)}`)
    return { status: res.status, error: body.error }
  })
  result.ok = true
} catch {
  // reported in steps
}
console.log(JSON.stringify(result))
process.exit(result.ok ? 0 : 1)
