#!/usr/bin/env node
// Reference OAuth client (@atproto/oauth-client-node, loopback client) asking an authorization server
// for a granular scope (e.g. `atproto include:<nsid>?aud=... repo:...`), then probing what the token
// may do at the resource server. Used by the permission-set interop test (issue 13) against both the
// reference PDS and `atauth serve`, so the two answers can be compared.
//
// Steps (the final JSON line on stdout reports each; `info` has the values):
//   authorize   resolve identity + AS metadata, PAR with --scope
//   consent     sign in and approve: --consent api (the reference provider's UI JSON API) or
//               atauth (atauth serve's headless consent API, POST /oauth/authorize/sign-in-and-approve)
//   token       code exchange; info.tokenScope = the token response's `scope`
//   probes      for each --probe LXM: DPoP GET com.atproto.server.getServiceAuth?aud=--aud&lxm=LXM;
//               info.probes[LXM] = { status, error, message }
//   refresh     refresh_token grant; info.refreshedScope = the new token response's `scope`
//
// Options: --pds URL (AS + resource server + handle resolver), --plc URL, --handle H, --password P,
//   --scope S, --consent api|atauth, --aud DID (service DID, `#` allowed), --probe LXM (repeatable,
//   comma-separated), --timeout SECONDS (default 60).
// Exit code 0 iff every step ran (a 403 probe is a result, not a failure).

import process from 'node:process'

import { buildLoopbackClient, consentViaApi, parseArgs, rawRequest, startCallbackListener, stepRecorder } from './lib.mjs'

const args = parseArgs(process.argv.slice(2))
for (const k of ['pds', 'plc', 'handle', 'password', 'scope', 'aud'])
  if (!args[k]) {
    process.stderr.write(`--${k} is required\n`)
    process.exit(1)
  }
const consent = args.consent ?? 'api'
const probes = String(args.probe ?? '')
  .split(',')
  .filter(Boolean)
const log = (...m) => process.stderr.write(`[ref-client-scopes] ${m.join(' ')}\n`)

const { result, finish, step } = stepRecorder({ info: { probes: {} } })
const hardTimer = setTimeout(() => {
  result.error = `timeout after ${args.timeout ?? 60}s`
  finish(2)
}, Number(args.timeout ?? 60) * 1000)
hardTimer.unref()

// atauth serve's headless consent API: one form POST answering 303 to the client's redirect_uri.
async function consentViaAtauth(authorizeUrl, identifier, password) {
  const u = new URL(authorizeUrl)
  const body = new URLSearchParams({
    client_id: u.searchParams.get('client_id'),
    request_uri: u.searchParams.get('request_uri'),
    identifier,
    password,
  }).toString()
  const res = await rawRequest(`${u.origin}/oauth/authorize/sign-in-and-approve`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  })
  if (res.status !== 303) throw new Error(`sign-in-and-approve: HTTP ${res.status}: ${res.text.slice(0, 500)}`)
  const cb = await rawRequest(res.headers.location)
  if (cb.status !== 200) throw new Error(`callback listener answered HTTP ${cb.status}`)
  return { redirectedTo: res.headers.location.split('?')[0] }
}

async function main() {
  const cb = await startCallbackListener(0)
  const redirectUri = `http://127.0.0.1:${cb.port}/callback`
  const { client, sessionStore } = buildLoopbackClient({
    redirectUri,
    scope: args.scope,
    handleResolver: args.pds,
    plcDirectoryUrl: args.plc,
  })
  let authorizeUrl
  await step('authorize', async () => {
    authorizeUrl = (await client.authorize(args.handle, { scope: args.scope })).href
    return { authorizeEndpoint: authorizeUrl.split('?')[0] }
  })
  await step('consent', async () => {
    if (consent === 'api') return consentViaApi(authorizeUrl, args.handle, args.password)
    if (consent === 'atauth') return consentViaAtauth(authorizeUrl, args.handle, args.password)
    throw new Error(`unknown --consent ${consent}`)
  })
  let session
  await step('token', async () => {
    const params = await cb.got
    if (params.get('error')) throw new Error(`AS returned error: ${params}`)
    session = (await client.callback(params)).session
    result.info.did = session.did
    result.info.tokenScope = sessionStore.m.get(session.did)?.tokenSet?.scope ?? null
    return { scope: result.info.tokenScope }
  })
  await step('probes', async () => {
    for (const lxm of probes) {
      const q = new URLSearchParams({ aud: args.aud, lxm })
      const res = await session.fetchHandler(`/xrpc/com.atproto.server.getServiceAuth?${q}`, { method: 'GET' })
      const body = await res.json().catch(() => null)
      result.info.probes[lxm] = {
        status: res.status,
        error: body?.error ?? null,
        message: body?.message ?? null,
        token: typeof body?.token === 'string',
      }
    }
    return result.info.probes
  })
  await step('refresh', async () => {
    const before = sessionStore.m.get(session.did)?.tokenSet
    session = await client.restore(session.did, true)
    const after = sessionStore.m.get(session.did)?.tokenSet
    if (after?.access_token === before?.access_token) throw new Error('access token unchanged after refresh')
    result.info.refreshedScope = after?.scope ?? null
    return { scope: result.info.refreshedScope }
  })
  cb.server.close()
  cb.server.closeAllConnections?.()
}

main().then(
  () => {
    clearTimeout(hardTimer)
    finish(0)
  },
  (err) => {
    clearTimeout(hardTimer)
    result.error = String(err?.message || err)
    log('FAILED:', err?.stack || err)
    finish(1)
  },
)
