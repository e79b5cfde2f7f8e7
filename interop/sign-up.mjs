#!/usr/bin/env node
// Sign-up (issue 16) in headless Chromium, end to end with the reference client:
//   invite     `atauth account invite create` makes a code in the running server's database
//   sign-up    the reference OAuth client (@atproto/oauth-client-node, a loopback client) asks
//              `atauth serve --dev --invite-required` with prompt=create; Chromium gets the sign-up
//              page, every control labelled; the form is filled with the keyboard only (autofocus,
//              Tab order handle -> email -> password -> invite code, Enter submits); a weak
//              password first gets its message on the re-rendered form
//   consent    the new account goes straight on to the consent screen; Allow
//   callback   the client receives a code, exchanges it (its sub/iss checks resolve the new did:plc
//              in the PLC and the handle through our resolveHandle), getSession answers the new
//              handle
//   account    the same browser opens /account (the new account was remembered on the sign-up
//              form): the app is listed with its client_id and its permissions in plain words
//   sign-out   "Sign out of this app": the notice, and the app is gone from the list
//   refresh    the client's refresh (client.restore(did, true), a refresh_token grant) fails with
//              invalid_grant
// Every page shown passes axe-core (no serious or critical violation; lesser findings are listed
// under `minor` in the result) before its screenshot.
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`),
// `atauth serve --dev --invite-required`, the client's callback listener, and Debian's Chromium
// through playwright-core, which may reach only loopback.
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          screenshots of every step (required)
//   --docs DIR         also write the docs screenshots (sign-up.png, sign-up-weak-password.png) there
//   --chromium PATH    (default /usr/bin/chromium)
//   --timeout SECONDS  (default 150) hard limit for the whole run
//
// Prints one JSON line (steps, files); exit 0 iff every step passed.

import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'

import {
  buildLoopbackClient, Children, CHROMIUM_FLAGS, expect, helpIfAsked, loopbackContext, oauthErrorCode, parseArgs,
  screenshots, startCallbackListener, startPlc, startServe, stepRecorder, unlabelledControls,
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
const log = (...m) => process.stderr.write(`[sign-up] ${m.join(' ')}\n`)

const HANDLE_NAME = 'carol'
const PASSWORD = 'correct horse battery staple'
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
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-signup-'))
  const dataDir = path.join(tmp, 'data')

  const { plcUrl } = await step('plc', async () => ({ plcUrl: await startPlc(children) }))
  const { issuer } = await step('serve', async () => ({
    issuer: await startServe(children, o.atauth, { dataDir, plcUrl, extra: ['--invite-required'] }),
  }))

  const { code } = await step('invite', async () => {
    const out = await new Promise((resolve, reject) => {
      const child = spawn(o.atauth, ['account', 'invite', 'create', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
      let text = ''
      child.stdout.on('data', (d) => (text += d))
      child.on('exit', (c) => (c === 0 ? resolve(text) : reject(new Error(`atauth account invite create exited ${c}`))))
    })
    const code = out.trim()
    expect(/^[a-z2-7]{5}-[a-z2-7]{5}-[a-z2-7]{5}$/.test(code), `an invite code: ${out}`)
    return { code }
  })

  callback = await startCallbackListener(0)
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`
  const { client, clientId } = buildLoopbackClient({ redirectUri, scope: SCOPE, handleResolver: issuer, plcDirectoryUrl: plcUrl })

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })
  const shot = screenshots({ out: o.out, docs: o.docs, result, selector: 'main' })
  const focused = (page) => page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('name') || '')
  try {
    const context = await loopbackContext(browser, { locale: 'en-US', viewport: { width: 820, height: 1100 } })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)

    await step('sign-up', async () => {
      // No handle yet: the client starts from the server's URL and asks for account creation.
      const url = await client.authorize(issuer, { scope: SCOPE, prompt: 'create' })
      await page.goto(url.href, { waitUntil: 'load' })
      expect((await page.locator('h1').innerText()) === 'Create an account', 'prompt=create shows the sign-up page')
      const bad = await unlabelledControls(page)
      expect(bad.length === 0, `controls without a label: ${bad.join(' | ')}`)
      await shot(page, 'sign-up', 'sign-up.png')
      // Keyboard only: the handle field has the focus, Tab goes through the fields in order, Space
      // ticks "Remember this account on this device" (so the account page knows this browser).
      const order = [await focused(page)]
      await page.keyboard.type(HANDLE_NAME)
      for (const text of ['carol@example.com', 'carol12345', code]) {
        await page.keyboard.press('Tab')
        order.push(await focused(page))
        await page.keyboard.type(text)
      }
      await page.keyboard.press('Tab')
      order.push(await focused(page))
      await page.keyboard.press('Space')
      expect(
        JSON.stringify(order) === JSON.stringify(['handle', 'email', 'password', 'invite_code', 'remember']),
        `focus order: ${JSON.stringify(order)}`,
      )
      expect(await page.locator('input[name=remember]').isChecked(), 'Space ticked "remember"')
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')])
      const alert = await page.locator('[role=alert]').innerText()
      expect(/Do not use your handle or email address/.test(alert), `the weak password's message: ${alert}`)
      expect((await focused(page)) === 'password', 'the password field has the focus again')
      expect((await page.locator('#handle').inputValue()) === HANDLE_NAME, 'what was typed stays')
      expect(await page.locator('input[name=remember]').isChecked(), '"remember" stays ticked')
      await shot(page, 'weak-password', 'sign-up-weak-password.png')
      await page.keyboard.type(PASSWORD)
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')])
      return { focusOrder: order }
    })

    await step('consent', async () => {
      const h1 = await page.locator('h1').innerText()
      expect(h1 === 'Allow access to your account?', `straight on to consent (saw "${h1}")`)
      const who = await page.locator('.who strong').innerText()
      expect(who === `@${HANDLE_NAME}.test`, `for the new account: ${who}`)
      await shot(page, 'consent')
      const cb = page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 20_000 })
      await page.getByRole('button', { name: 'Allow' }).click()
      await cb
      return {}
    })

    let session
    await step('callback', async () => {
      const params = await callback.got
      expect(params.get('code'), 'the client got a code')
      ;({ session } = await client.callback(params))
      const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
      expect(res.status === 200, `getSession with the new tokens: HTTP ${res.status}`)
      const body = await res.json()
      expect(body.handle === `${HANDLE_NAME}.test` && body.did === session.did, `the new account: ${JSON.stringify(body)}`)
      expect(session.did.startsWith('did:plc:'), `a did:plc: ${session.did}`)
      return { did: session.did, handle: body.handle }
    })

    await step('account', async () => {
      await page.goto(new URL('/account', issuer).href, { waitUntil: 'load' })
      const h1 = await page.locator('h1').innerText()
      expect(h1 === 'Your account', `the account page, signed in as the new account (saw "${h1}")`)
      const who = await page.locator('.who strong').first().innerText()
      expect(who === `@${HANDLE_NAME}.test`, `the account page is the new account's: ${who}`)
      const apps = page.locator('li.app')
      expect((await apps.count()) === 1, `one connected app, saw ${await apps.count()}`)
      const listedId = await apps.first().locator('.client-id').innerText()
      expect(listedId === clientId, `the app's client_id: ${listedId}`)
      await apps.first().locator('summary').click()
      const can = await apps.first().locator('.plain li strong').allInnerTexts()
      expect(
        JSON.stringify(can) === JSON.stringify(['Know who you are', 'Read and change your account data']),
        `its permissions in the consent screen's words: ${JSON.stringify(can)}`,
      )
      const bad = await unlabelledControls(page)
      expect(bad.length === 0, `controls without a label: ${bad.join(' | ')}`)
      await shot(page, 'account')
      return { permissions: can }
    })

    await step('sign-out', async () => {
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.locator('li.app').first().getByRole('button', { name: 'Sign out of this app' }).click(),
      ])
      const notice = await page.locator('.alert.ok').innerText()
      expect(/Signed out of the app/.test(notice), `the notice: ${notice}`)
      expect((await page.locator('li.app').count()) === 0, 'the app is gone from the list')
      await shot(page, 'signed-out-of-app')
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
