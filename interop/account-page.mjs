#!/usr/bin/env node
// The account page (/account, issue 16) in headless Chromium, end to end with the reference client:
//   authorize  the reference OAuth client (@atproto/oauth-client-node, a loopback client) asks
//              `atauth serve --dev`; Chromium signs in (remembered) and allows on our pages;
//              client.callback() exchanges the code; getSession works with the session
//   account    the same browser opens /account: the app is listed (its client_id, what it may
//              do in the consent screen's words), this browser is listed as a device; every
//              form control has a label
//   sign-out   "Sign out of this app": the notice is shown and the app is gone from the list
//   refresh    client.restore(did, true) (a refresh_token grant) must fail with invalid_grant
//   prompt     a new authorization by the same app shows the consent screen again
//   app-pw     creating an app password shows it once, in the xxxx-xxxx-xxxx-xxxx shape
// Every page a screenshot is taken of also passes axe-core (no serious or critical violation;
// lesser findings are listed under `minor` in the result).
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`, for the demo
// account's did:plc), `atauth serve --dev --demo-account alice.test`, the client's callback
// listener, and Debian's Chromium through playwright-core, which may reach only loopback.
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          screenshots of every step (required)
//   --docs DIR         also write the three docs screenshots (account-*.png) there
//   --chromium PATH    (default /usr/bin/chromium)
//   --timeout SECONDS  (default 150) hard limit for the whole run
//
// Prints one JSON line (steps, files); exit 0 iff every step passed.

import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'

import {
  axeCheck, buildLoopbackClient, Children, CHROMIUM_FLAGS, expect, helpIfAsked, oauthErrorCode, parseArgs,
  startCallbackListener, startPlc, startServe, stepRecorder, unlabelledControls,
} from './lib.mjs'

const args = parseArgs(process.argv.slice(2))
await helpIfAsked(args, import.meta.url)
const o = {
  atauth: args.atauth,
  out: args.out,
  docs: args.docs ?? '',
  chromium: args.chromium ?? '/usr/bin/chromium',
  timeout: Number(args.timeout ?? '150'),
}
const log = (...m) => process.stderr.write(`[account-page] ${m.join(' ')}\n`)

const HANDLE = 'alice.test'
const SCOPE = 'atproto transition:generic'

const { result, finish, step } = stepRecorder({ files: [], minor: {} })
const hardTimer = setTimeout(() => {
  result.error = `timeout after ${o.timeout}s`
  log(result.error)
  cleanup().finally(() => finish(2))
}, o.timeout * 1000)
hardTimer.unref()

const children = new Children()
let tmp = ''
let callback = null
async function cleanup() {
  children.stopAll()
  if (callback) {
    callback.server.close()
    callback.server.closeAllConnections?.()
  }
  if (tmp) await fs.rm(tmp, { recursive: true, force: true }).catch(() => {})
}

async function main() {
  expect(o.atauth, '--atauth is required')
  expect(o.out, '--out is required')
  await fs.mkdir(o.out, { recursive: true })
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-account-'))
  const password = crypto.randomBytes(12).toString('base64url')

  const { plcUrl } = await step('plc', async () => ({ plcUrl: await startPlc(children) }))

  const { issuer } = await step('serve', async () => ({
    issuer: await startServe(children, o.atauth, {
      dataDir: path.join(tmp, 'data'),
      plcUrl,
      extra: [
        '--demo-account', HANDLE, `--demo-password=${password}`,
      ],
    }),
  }))

  callback = await startCallbackListener(0)
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`
  const built = buildLoopbackClient({ redirectUri, scope: SCOPE, handleResolver: issuer, plcDirectoryUrl: plcUrl })
  const { client, clientId } = built

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })
  const shots = []
  const shot = async (page, name, docsName) => {
    const { violations, blocking } = await axeCheck(page)
    if (violations.length) result.minor[name] = violations.map((v) => `${v.id} (${v.impact})`)
    expect(blocking.length === 0, `${name}: axe found ${JSON.stringify(blocking, null, 1)}`)
    const file = path.join(o.out, `${String(shots.length + 1).padStart(2, '0')}-${name}.png`)
    // The page's own column (brand, card, footer), not the empty background around it.
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
  try {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 820, height: 1000 } })
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url())
      if (['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.protocol === 'data:') return route.continue()
      return route.abort()
    })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)

    let session
    await step('authorize', async () => {
      const url = await client.authorize(HANDLE, { scope: SCOPE })
      await page.goto(url.href, { waitUntil: 'load' })
      expect((await page.locator('h1').innerText()) === 'Sign in', 'the sign-in page comes first')
      await page.locator('#password').fill(password)
      await page.getByLabel('Remember this account on this device').check()
      await shot(page, 'sign-in')
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()])
      expect((await page.locator('h1').innerText()) === 'Allow access to your account?', 'then the consent screen')
      await shot(page, 'consent')
      const cb = page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 20_000 })
      await page.getByRole('button', { name: 'Allow' }).click()
      await cb
      const params = await callback.got
      ;({ session } = await client.callback(params))
      const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
      expect(res.status === 200, `getSession with the new tokens: HTTP ${res.status}`)
      return { did: session.did }
    })

    await step('account', async () => {
      await page.goto(new URL('/account', issuer).href, { waitUntil: 'load' })
      expect((await page.locator('h1').innerText()) === 'Your account', 'the account page, already signed in')
      const apps = page.locator('li.app')
      expect((await apps.count()) === 1, `one connected app, saw ${await apps.count()}`)
      const listedId = await apps.first().locator('.client-id').innerText()
      expect(listedId === clientId, `the app's client_id: ${listedId}`)
      await apps.first().locator('summary').click()
      const can = await apps.first().locator('.plain li strong').allInnerTexts()
      expect(can.length === 2, `two permissions in plain words: ${JSON.stringify(can)}`)
      const devices = await page.locator('li.device h3').allInnerTexts()
      expect(devices.length === 1 && /This device/.test(devices[0]), `this browser as a device: ${devices}`)
      const bad = await unlabelledControls(page)
      expect(bad.length === 0, `controls without a label: ${bad.join(' | ')}`)
      await shot(page, 'account', 'account-connected-apps.png')
      return { permissions: can, devices }
    })

    await step('sign-out', async () => {
      const app = page.locator('li.app').first()
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        app.getByRole('button', { name: 'Sign out of this app' }).click(),
      ])
      const notice = await page.locator('.alert.ok').innerText()
      expect(/Signed out of the app/.test(notice), `the notice: ${notice}`)
      expect((await page.locator('li.app').count()) === 0, 'the app is gone from the list')
      await shot(page, 'signed-out-of-app', 'account-signed-out-of-app.png')
      return { notice }
    })

    await step('refresh', async () => {
      let code
      try {
        await client.restore(session.did, true) // a refresh_token grant
      } catch (err) {
        code = oauthErrorCode(err)
        if (code !== 'invalid_grant') throw new Error(`refresh failed, but not with invalid_grant: ${err?.stack || err}`)
      }
      expect(code === 'invalid_grant', 'the refresh after signing out of the app must fail')
      return { error: code }
    })

    await step('prompt', async () => {
      const url = await client.authorize(HANDLE, { scope: SCOPE })
      await page.goto(url.href, { waitUntil: 'load' })
      const h1 = await page.locator('h1').innerText()
      expect(h1 === 'Allow access to your account?', `signed in, consent forgotten: asks again (saw "${h1}")`)
      return { heading: h1 }
    })

    await step('app-pw', async () => {
      await page.goto(new URL('/account', issuer).href, { waitUntil: 'load' })
      await page.getByLabel('Name of the new app password').fill('Example reader')
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.getByRole('button', { name: 'Create app password' }).click(),
      ])
      const pw = await page.locator('#new-app-password').inputValue()
      expect(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/.test(pw), `app password shape: ${pw}`)
      const bad = await unlabelledControls(page)
      expect(bad.length === 0, `controls without a label: ${bad.join(' | ')}`)
      await shot(page, 'app-password', 'account-app-password.png')
      await page.reload({ waitUntil: 'load' })
      expect(!(await page.content()).includes(pw), 'the password is shown once')
      return {}
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
