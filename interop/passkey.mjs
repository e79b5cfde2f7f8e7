#!/usr/bin/env node
// Passkeys (WebAuthn, issue 16) in headless Chromium with its virtual authenticator (DevTools
// protocol: CTAP2, internal transport, resident keys, user verification), not a mock of the
// ceremony, end to end with the reference client:
//   add-passkey   Alice signs in on /account and adds a passkey ("Add a passkey", named): the
//                 notice, and the list shows it with its dates
//   sign-out      she signs this browser out
//   authorize     the reference OAuth client (@atproto/oauth-client-node, a loopback client) asks
//                 `atauth serve --dev`; after the password the second-factor step shows "Use a
//                 passkey"; the virtual authenticator answers; consent; client.callback()
//                 exchanges the code and getSession works
//   bob           Bob signs up on /account/sign-up and adds a passkey of his own, then signs out
//   other-account Bob's OAuth sign-in: after his password, the browser is made to answer with
//                 Alice's passkey (the options' allowCredentials rewritten in flight, as a
//                 confused or hostile front end could): the page says the passkey belongs to
//                 another account and stays on the step; then his own passkey finishes the sign-in
//                 (nothing was changed by the refusal) and his getSession works
// Every page a screenshot is taken of passes axe-core (no serious or critical violation; lesser
// findings are listed under `minor`) and has a label for every form control.
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`), `atauth
// serve --dev --demo-account alice.test` (issuer http://localhost:PORT: RP IDs cannot be IP
// addresses), the clients' callback listeners, and Debian's Chromium through playwright-core.
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          screenshots of every step (required)
//   --docs DIR         also write the docs screenshots (account-passkeys.png, passkey-other-account.png) there
//   --chromium PATH    (default /usr/bin/chromium)
//   --timeout SECONDS  (default 150) hard limit for the whole run
//
// Prints one JSON line (steps, files); exit 0 iff every step passed.

import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'

import { axeCheck, buildLoopbackClient, Children, CHROMIUM_FLAGS, expect, helpIfAsked, parseArgs, startCallbackListener, startPlc, startServe, stepRecorder, unlabelledControls } from './lib.mjs'

const args = parseArgs(process.argv.slice(2))
await helpIfAsked(args, import.meta.url)
const o = {
  atauth: args.atauth,
  out: args.out,
  docs: args.docs ?? '',
  chromium: args.chromium ?? '/usr/bin/chromium',
  timeout: Number(args.timeout ?? '150'),
}
const log = (...m) => process.stderr.write(`[passkey] ${m.join(' ')}\n`)

const ALICE = 'alice.test'
const BOB = 'bob.test'
const SCOPE = 'atproto transition:generic'
const OPTIONS_PATH = '/oauth/authorize/passkey/options'

const { result, finish, step } = stepRecorder({ files: [], minor: {} })
const hardTimer = setTimeout(() => {
  result.error = `timeout after ${o.timeout}s`
  log(result.error)
  cleanup().finally(() => finish(2))
}, o.timeout * 1000)
hardTimer.unref()

const children = new Children()
let tmp = ''
const listeners = []
async function cleanup() {
  children.stopAll()
  for (const l of listeners) {
    l.server.close()
    l.server.closeAllConnections?.()
  }
  if (tmp) await fs.rm(tmp, { recursive: true, force: true }).catch(() => {})
}

async function main() {
  expect(o.atauth, '--atauth is required')
  expect(o.out, '--out is required')
  await fs.mkdir(o.out, { recursive: true })
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-passkey-'))
  const password = crypto.randomBytes(12).toString('base64url')
  const bobPassword = `Pw-${crypto.randomBytes(9).toString("hex")}` // not containing the handle (a sign-up rule)

  const { plcUrl } = await step('plc', async () => ({ plcUrl: await startPlc(children) }))

  const { issuer } = await step('serve', async () => {
    const issuer = await startServe(children, o.atauth, {
      dataDir: path.join(tmp, 'data'),
      plcUrl,
      extra: ['--demo-account', ALICE, `--demo-password=${password}`],
    })
    expect(new URL(issuer).hostname === 'localhost', `a --dev issuer on localhost (RP IDs cannot be addresses): ${issuer}`)
    return { issuer }
  })

  const newClient = async () => {
    const callback = await startCallbackListener(0)
    listeners.push(callback)
    const redirectUri = `http://127.0.0.1:${callback.port}/callback`
    const built = buildLoopbackClient({ redirectUri, scope: SCOPE, handleResolver: issuer, plcDirectoryUrl: plcUrl })
    return { ...built, callback, redirectUri }
  }

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })
  const shots = []
  const shot = async (page, name, docsName) => {
    const { violations, blocking } = await axeCheck(page)
    if (violations.length) result.minor[name] = violations.map((v) => `${v.id} (${v.impact})`)
    expect(blocking.length === 0, `${name}: axe found ${JSON.stringify(blocking, null, 1)}`)
    const bad = await unlabelledControls(page)
    expect(bad.length === 0, `${name}: controls without a label: ${bad.join(' | ')}`)
    const file = path.join(o.out, `${String(shots.length + 1).padStart(2, '0')}-${name}.png`)
    await page.locator('.shell').screenshot({ path: file })
    shots.push(file)
    const { size } = await fs.stat(file)
    result.files.push({ file: path.relative(process.cwd(), file), kib: Math.round(size / 1024) })
    if (o.docs && docsName) {
      await fs.mkdir(o.docs, { recursive: true })
      await fs.copyFile(file, path.join(o.docs, docsName))
      result.files.push({ file: path.relative(process.cwd(), path.join(o.docs, docsName)) })
    }
  }
  const h1 = (page) => page.locator('h1').innerText()
  const submit = (page, locator) => Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()])

  try {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 820, height: 1000 } })
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url())
      if (['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.protocol === 'data:') return route.continue()
      return route.abort()
    })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)
    const cdp = await context.newCDPSession(page)
    await cdp.send('WebAuthn.enable')
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    })
    const credentials = async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials

    const addPasskey = async (name) => {
      await page.getByLabel('Name of the new passkey').fill(name)
      await submit(page, page.getByRole('button', { name: 'Add a passkey' }))
      const notice = await page.locator('.alert.ok').innerText()
      expect(/Passkey added/.test(notice), `the notice: ${notice}`)
      const listed = await page.locator('li.passkey h4').allInnerTexts()
      expect(listed.some((t) => t.includes(name)), `the passkey is listed: ${JSON.stringify(listed)}`)
      return { notice, listed }
    }
    const signOutHere = async () => {
      await submit(page, page.getByRole('button', { name: 'Sign out of this device' }))
      expect((await page.locator('#identifier').count()) === 1, 'the account page asks to sign in again')
    }

    await step('add-passkey', async () => {
      await page.goto(new URL('/account', issuer).href, { waitUntil: 'load' })
      await page.locator('#identifier').fill(ALICE)
      await page.locator('#password').fill(password)
      await submit(page, page.getByRole('button', { name: 'Sign in' }))
      expect((await h1(page)) === 'Your account', 'the account page')
      expect(await page.getByRole('button', { name: 'Add a passkey' }).isVisible(), 'the script shows the passkey form')
      const r = await addPasskey('Laptop')
      const creds = await credentials()
      expect(creds.length === 1, `one credential in the authenticator: ${creds.length}`)
      await shot(page, 'account-passkey', 'account-passkeys.png')
      return { ...r, credentials: creds.length }
    })

    await step('sign-out', signOutHere)

    let aliceCredential
    await step('authorize', async () => {
      const c = await newClient()
      const url = await c.client.authorize(ALICE, { scope: SCOPE })
      await page.goto(url.href, { waitUntil: 'load' })
      await page.locator('#password').fill(password)
      await submit(page, page.getByRole('button', { name: 'Sign in' }))
      const heading = await h1(page)
      expect(heading === 'Two-step verification', `the second-factor step after the password (saw "${heading}")`)
      const use = page.getByRole('button', { name: 'Use a passkey' })
      expect(await use.isVisible(), '"Use a passkey" is offered')
      await shot(page, 'second-factor')
      await submit(page, use)
      expect((await h1(page)) === 'Allow access to your account?', 'the consent screen after the passkey')
      const cb = page.waitForURL((u) => u.href.startsWith(c.redirectUri), { timeout: 20_000 })
      await page.getByRole('button', { name: 'Allow' }).click()
      await cb
      const { session } = await c.client.callback(await c.callback.got)
      const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
      expect(res.status === 200, `getSession with the new tokens: HTTP ${res.status}`)
      ;[aliceCredential] = await credentials()
      return { did: session.did }
    })

    await step('bob', async () => {
      await page.goto(new URL('/account/sign-up', issuer).href, { waitUntil: 'load' })
      await page.locator('#handle').fill('bob')
      await page.locator('#email').fill('bob@example.test')
      await page.locator('#password').fill(bobPassword)
      await submit(page, page.getByRole('button', { name: 'Create account' }))
      expect((await h1(page)) === 'Your account', 'signed in as the new account')
      const r = await addPasskey("Bob's key")
      await signOutHere()
      return r
    })

    await step('other-account', async () => {
      const c = await newClient()
      const url = await c.client.authorize(BOB, { scope: SCOPE })
      await page.goto(url.href, { waitUntil: 'load' })
      await page.locator('#password').fill(bobPassword)
      await submit(page, page.getByRole('button', { name: 'Sign in' }))
      expect((await h1(page)) === 'Two-step verification', 'Bob gets the second-factor step')
      // The options come back offering Alice's credential instead of Bob's.
      await page.route(`**${OPTIONS_PATH}`, async (route) => {
        const res = await route.fetch()
        const json = await res.json()
        json.publicKey.allowCredentials = [{ type: 'public-key', id: Buffer.from(aliceCredential.credentialId, 'base64').toString('base64url') }]
        await route.fulfill({ response: res, json })
      })
      await submit(page, page.getByRole('button', { name: 'Use a passkey' }))
      await page.unroute(`**${OPTIONS_PATH}`)
      const heading = await h1(page)
      expect(heading === 'Two-step verification', `still on the step (saw "${heading}")`)
      const error = await page.locator('.alert.error').innerText()
      expect(/another account/.test(error), `a clear message: ${error}`)
      await shot(page, 'other-account', 'passkey-other-account.png')
      await submit(page, page.getByRole('button', { name: 'Use a passkey' }))
      expect((await h1(page)) === 'Allow access to your account?', 'his own passkey still works: consent')
      const cb = page.waitForURL((u) => u.href.startsWith(c.redirectUri), { timeout: 20_000 })
      await page.getByRole('button', { name: 'Allow' }).click()
      await cb
      const { session } = await c.client.callback(await c.callback.got)
      const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
      expect(res.status === 200, `Bob's getSession: HTTP ${res.status}`)
      const body = await res.json()
      expect(body.handle === BOB, `the session is Bob's: ${body.handle}`)
      return { error, handle: body.handle }
    })
  } finally {
    await browser.close().catch(() => {})
  }
}

main().then(
  async () => {
    clearTimeout(hardTimer)
    await cleanup()
    finish(0)
  },
  async (err) => {
    clearTimeout(hardTimer)
    result.error = String(err?.stack || err)
    log(result.error)
    await cleanup()
    finish(1)
  },
)
