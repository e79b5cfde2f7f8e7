#!/usr/bin/env node
// Captures real WebAuthn data from Chromium's virtual authenticator (DevTools protocol, CTAP2,
// internal transport, user verification) for the unit tests of atauth-server's passkey module
// (crates/atauth-server/tests/fixtures/passkey/chromium.json). Regenerate with
//   interop/node22 interop/passkey-fixtures.mjs --out crates/atauth-server/tests/fixtures/passkey/chromium.json
//
// A loopback HTTP server serves an empty page at http://localhost:PORT (a secure context, so
// WebAuthn works); the script makes, with fixed challenges and the options atauth's server sends
// (RP ID localhost, user handle SHA-256("atauth-webauthn-user\0" ‖ did), attestation none, user
// verification preferred): an ES256 passkey for account A and two assertions with it (the
// counter goes up), an ES256 passkey for account B and one assertion, an EdDSA and an RS256
// passkey with one assertion each, and an ES256 registration with attestation "direct" (packed with
// a certificate, which the server refuses).
//
// Options:
//   --out FILE         where to write the JSON (required)
//   --chromium PATH    (default /usr/bin/chromium)

import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import http from 'node:http'
import process from 'node:process'

import { CHROMIUM_FLAGS, expect, helpIfAsked, parseArgs } from './lib.mjs'

const args = parseArgs(process.argv.slice(2))
await helpIfAsked(args, import.meta.url)
expect(args.out, '--out is required')

const b64u = (buf) => Buffer.from(buf).toString('base64url')
const userHandle = (did) => b64u(crypto.createHash('sha256').update(Buffer.concat([Buffer.from('atauth-webauthn-user\0'), Buffer.from(did)])).digest())
// Fixed challenges, so the tests can rebuild the server's state.
const challenge = (label) => b64u(crypto.createHash('sha256').update(`atauth passkey fixture ${label}`).digest())

const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' })
  res.end('<!doctype html><title>fixtures</title>')
})
await new Promise((r) => server.listen(0, '127.0.0.1', r))
const origin = `http://localhost:${server.address().port}`

const { chromium } = await import('playwright-core')
const browser = await chromium.launch({ executablePath: args.chromium ?? '/usr/bin/chromium', headless: true, args: CHROMIUM_FLAGS })
const out = { origin, rpId: 'localhost', captured: new Date().toISOString().slice(0, 10), chromium: browser.version(), accounts: {}, registrations: {}, assertions: {} }
try {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(origin)
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  })

  // Runs in the page: the same conversion the server's passkey.js does.
  const create = (opts) => page.evaluate(async (o) => {
    const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))
    const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
    o.challenge = dec(o.challenge)
    o.user.id = dec(o.user.id)
    o.excludeCredentials = (o.excludeCredentials || []).map((c) => ({ ...c, id: dec(c.id) }))
    const c = await navigator.credentials.create({ publicKey: o })
    return {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      response: { clientDataJSON: enc(c.response.clientDataJSON), attestationObject: enc(c.response.attestationObject), transports: c.response.getTransports() },
    }
  }, opts)
  const get = (opts) => page.evaluate(async (o) => {
    const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))
    const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
    o.challenge = dec(o.challenge)
    o.allowCredentials = o.allowCredentials.map((c) => ({ ...c, id: dec(c.id) }))
    const c = await navigator.credentials.get({ publicKey: o })
    return {
      id: c.id, rawId: enc(c.rawId), type: c.type,
      response: {
        clientDataJSON: enc(c.response.clientDataJSON), authenticatorData: enc(c.response.authenticatorData),
        signature: enc(c.response.signature), userHandle: c.response.userHandle ? enc(c.response.userHandle) : null,
      },
    }
  }, opts)

  const regOptions = (label, did, handle, algs, attestation = 'none') => ({
    rp: { id: 'localhost', name: 'atauth fixtures' },
    user: { id: userHandle(did), name: handle, displayName: handle },
    challenge: challenge(label),
    pubKeyCredParams: algs.map((alg) => ({ type: 'public-key', alg })),
    timeout: 300000,
    excludeCredentials: [],
    authenticatorSelection: { residentKey: 'preferred', requireResidentKey: false, userVerification: 'preferred' },
    attestation,
  })
  const authOptions = (label, ids) => ({
    challenge: challenge(label), rpId: 'localhost', timeout: 300000,
    allowCredentials: ids.map((id) => ({ type: 'public-key', id })), userVerification: 'preferred',
  })

  const accounts = { a: ['did:plc:fixtureaaaaaaaaaaaaaaaaaa', 'alice.test'], b: ['did:plc:fixturebbbbbbbbbbbbbbbbbb', 'bob.test'] }
  for (const [k, [did, handle]] of Object.entries(accounts)) out.accounts[k] = { did, handle }

  const register = async (name, account, algs, attestation) => {
    const [did, handle] = accounts[account]
    const response = await create(regOptions(`register ${name}`, did, handle, algs, attestation))
    out.registrations[name] = { account, challenge: challenge(`register ${name}`), response }
    return response.id
  }
  const assert = async (name, account, credentialId) => {
    out.assertions[name] = { account, credential: credentialId, challenge: challenge(`assert ${name}`), response: await get(authOptions(`assert ${name}`, [credentialId])) }
  }

  const a = await register('a_es256', 'a', [-7, -8, -257])
  await assert('a_es256_1', 'a', a)
  await assert('a_es256_2', 'a', a)
  const b = await register('b_es256', 'b', [-7, -8, -257])
  await assert('b_es256_1', 'b', b)
  const ed = await register('a_eddsa', 'a', [-8])
  await assert('a_eddsa_1', 'a', ed)
  const rs = await register('a_rs256', 'a', [-257])
  await assert('a_rs256_1', 'a', rs)
  await register('a_direct', 'a', [-7], 'direct')
} finally {
  await browser.close()
  server.close()
}
await fs.writeFile(args.out, JSON.stringify(out, null, 2) + '\n')
process.stderr.write(`[passkey-fixtures] wrote ${args.out}: ${Object.keys(out.registrations).length} registrations, ${Object.keys(out.assertions).length} assertions\n`)
