#!/usr/bin/env node
// Remembered consent (AS-AUTHZ-05), prompt=none (AS-AUTHZ-03) and the account picker in headless
// Chromium, with the reference client (@atproto/oauth-client-node, one loopback client whose
// client_id allows `atproto transition:generic transition:email`) against `atauth serve --dev`:
//   first              sign in with "Remember this account on this device", the consent screen
//                      lists everything as new; Allow `atproto transition:generic`; the code
//                      exchanges
//   same-scope         the same scope again: no page at all (one 303 from /oauth/authorize to the
//                      client's callback), and the code exchanges
//   narrower           `atproto` alone: no page either; the token's scope is `atproto`
//   none-remembered    prompt=none with the remembered session and consent: a code without a page
//   none-not-consented prompt=none with the session but a wider scope than was allowed: the
//                      callback gets error=consent_required (and iss), no page
//   wider              the wider scope without prompt: the consent screen again, with only the new
//                      permission under "New: it also asks to" and the two allowed before folded
//                      under "You already allowed 2 permissions on this device"; Allow; the token
//                      has the wider scope
//   wider-remembered   prompt=none with the wider scope now: a code without a page
//   none-no-session    prompt=none in a fresh browser (no cookies): error=login_required, no page
//   second-account     the same browser signs up a second account on /account/sign-up (remembered)
//   none-two-accounts  prompt=none without login_hint, two accounts signed in: error=
//                      account_selection_required
//   picker             an authorization without login_hint shows the account picker with both;
//                      choosing the first goes straight to the callback (its consent is
//                      remembered), and the code is the first account's
// Every page shown passes axe-core (no serious or critical violation; lesser findings are listed
// under `minor` in the result) before its screenshot.
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`),
// `atauth serve --dev --demo-account alice.test`, the client's callback listener, and Debian's
// Chromium through playwright-core, which may reach only loopback.
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          screenshots of every page (required)
//   --docs DIR         also write the docs screenshots (consent-wider.png, account-picker.png) there
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
  buildLoopbackClient, Children, CHROMIUM_FLAGS, expect, helpIfAsked, loopbackContext, parseArgs, redirectChain,
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
const log = (...m) => process.stderr.write(`[remembered-consent] ${m.join(' ')}\n`)

const HANDLE = 'alice.test'
const SECOND = 'dave'
const SCOPE = 'atproto transition:generic'
const NARROW = 'atproto'
const WIDE = 'atproto transition:generic transition:email'

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
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-remembered-'))
  const password = crypto.randomBytes(12).toString('base64url')

  const { plcUrl } = await step('plc', async () => ({ plcUrl: await startPlc(children) }))
  const { issuer } = await step('serve', async () => ({
    issuer: await startServe(children, o.atauth, {
      dataDir: path.join(tmp, 'data'),
      plcUrl,
      extra: ['--demo-account', HANDLE, `--demo-password=${password}`],
    }),
  }))

  callback = await startCallbackListener(0)
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`
  const { client } = buildLoopbackClient({ redirectUri, scope: WIDE, handleResolver: issuer, plcDirectoryUrl: plcUrl })
  const authorizePath = new URL('/oauth/authorize', issuer).href

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })
  const shot = screenshots({ out: o.out, docs: o.docs, result })
  const viewport = { width: 820, height: 1000 }

  // Opens a new authorization of the client in `page` (`input`: a handle, or the server for none).
  const open = async (page, scope, { prompt, input = HANDLE } = {}) => {
    const url = await client.authorize(input, { scope, ...(prompt ? { prompt } : {}) })
    return page.goto(url.href, { waitUntil: 'load' })
  }
  // The navigation ended at the client without a page of the server: one 303 from the
  // authorization endpoint, then the callback. Returns the callback's query.
  const noPage = async (res) => {
    const chain = await redirectChain(res)
    expect(
      chain.length === 2 && chain[0].status === 303 && chain[0].url.startsWith(authorizePath) &&
        chain[1].url.startsWith(redirectUri),
      `no page, straight to the callback: ${JSON.stringify(chain)}`,
    )
    return callback.next()
  }
  // A code the client exchanges; getSession works with the tokens. Returns the session and scope.
  const exchange = async (params) => {
    expect(params.get('code') && !params.get('error'), `a code, not ${params.get('error')}`)
    const { session } = await client.callback(params)
    const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
    expect(res.status === 200, `getSession with the new tokens: HTTP ${res.status}`)
    const { scope } = await session.getTokenInfo(false)
    return { session, scope }
  }
  // An error at the callback (with the issuer), which the client reports as OAuthCallbackError.
  const refused = async (params, error) => {
    expect(params.get('error') === error, `error=${error} at the callback, got ${params.toString()}`)
    expect(params.get('iss') === issuer, `iss=${issuer} with the error, got ${params.get('iss')}`)
    let thrown
    try {
      await client.callback(params)
    } catch (err) {
      thrown = err
    }
    expect(thrown?.params?.get('error') === error, `the client reports ${error}: ${thrown}`)
    return { error, description: params.get('error_description') }
  }
  const heading = (page) => page.locator('h1').innerText()
  const texts = (locator) => locator.allInnerTexts().then((a) => a.map((t) => t.trim()))

  try {
    const context = await loopbackContext(browser, { locale: 'en-US', viewport })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)

    const { did } = await step('first', async () => {
      await open(page, SCOPE)
      expect((await heading(page)) === 'Sign in', 'the sign-in page comes first')
      await page.locator('#password').fill(password)
      await page.getByLabel('Remember this account on this device').check()
      await shot(page, 'sign-in')
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()])
      expect((await heading(page)) === 'Allow access to your account?', 'then the consent screen')
      const h2 = (await page.locator('form h2').innerText()).trim()
      expect(h2 === 'It will be able to', `nothing allowed before: "${h2}"`)
      expect((await page.locator('details.granted').count()) === 0, 'no "already allowed" list')
      const lines = await texts(page.locator('form > ul.perms > li strong'))
      expect(
        JSON.stringify(lines) === JSON.stringify(['Know who you are', 'Read and change your account data']),
        `the permissions: ${JSON.stringify(lines)}`,
      )
      expect((await unlabelledControls(page)).length === 0, 'every control labelled')
      await shot(page, 'consent')
      const cb = page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 20_000 })
      await page.getByRole('button', { name: 'Allow', exact: true }).click()
      await cb
      const { session, scope } = await exchange(await callback.next())
      expect(scope === SCOPE, `the token's scope: ${scope}`)
      return { did: session.did, scope }
    })

    await step('same-scope', async () => {
      const { scope } = await exchange(await noPage(await open(page, SCOPE)))
      expect(scope === SCOPE, `the token's scope: ${scope}`)
      return { scope }
    })

    await step('narrower', async () => {
      const { scope } = await exchange(await noPage(await open(page, NARROW)))
      expect(scope === NARROW, `the token's scope: ${scope}`)
      return { scope }
    })

    await step('none-remembered', async () => {
      const { scope } = await exchange(await noPage(await open(page, SCOPE, { prompt: 'none' })))
      expect(scope === SCOPE, `the token's scope: ${scope}`)
      return { scope }
    })

    await step('none-not-consented', async () =>
      refused(await noPage(await open(page, WIDE, { prompt: 'none' })), 'consent_required'),
    )

    await step('wider', async () => {
      await open(page, WIDE)
      expect((await heading(page)) === 'Allow access to your account?', 'a wider scope asks again')
      const h2 = (await page.locator('form h2').innerText()).trim()
      expect(h2 === 'New: it also asks to', `the new part's heading: "${h2}"`)
      const fresh = await texts(page.locator('form > ul.perms > li strong'))
      expect(JSON.stringify(fresh) === JSON.stringify(['See your email address']), `only what is new: ${JSON.stringify(fresh)}`)
      const summary = (await page.locator('details.granted summary').innerText()).trim()
      expect(summary === 'You already allowed 2 permissions on this device', `the folded list: "${summary}"`)
      await page.locator('details.granted summary').click()
      const before = await texts(page.locator('details.granted ul.perms li strong'))
      expect(
        JSON.stringify(before) === JSON.stringify(['Know who you are', 'Read and change your account data']),
        `what was allowed before: ${JSON.stringify(before)}`,
      )
      expect((await unlabelledControls(page)).length === 0, 'every control labelled')
      await shot(page, 'consent-wider', 'consent-wider.png')
      const cb = page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 20_000 })
      await page.getByRole('button', { name: 'Allow', exact: true }).click()
      await cb
      const { scope } = await exchange(await callback.next())
      expect(scope === WIDE, `the token's scope: ${scope}`)
      return { new: fresh, already: before, scope }
    })

    await step('wider-remembered', async () => {
      const { scope } = await exchange(await noPage(await open(page, WIDE, { prompt: 'none' })))
      expect(scope === WIDE, `the token's scope: ${scope}`)
      return { scope }
    })

    await step('none-no-session', async () => {
      const fresh = await loopbackContext(browser, { locale: 'en-US', viewport })
      try {
        const p = await fresh.newPage()
        return await refused(await noPage(await open(p, SCOPE, { prompt: 'none' })), 'login_required')
      } finally {
        await fresh.close()
      }
    })

    await step('second-account', async () => {
      await page.goto(new URL('/account/sign-up', issuer).href, { waitUntil: 'load' })
      expect((await heading(page)) === 'Create an account', 'the sign-up page')
      expect((await unlabelledControls(page)).length === 0, 'every control labelled')
      await shot(page, 'sign-up')
      await page.locator('#handle').fill(SECOND)
      await page.locator('#email').fill(`${SECOND}@example.com`)
      await page.locator('#password').fill('correct horse battery staple')
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByRole('button', { name: 'Create account' }).click()])
      expect((await heading(page)) === 'Your account', 'then the account page')
      const who = (await page.locator('.who strong').first().innerText()).trim()
      expect(who === `@${SECOND}.test`, `signed in as the new account: ${who}`)
      const others = await texts(page.locator('p.hint a'))
      expect(others.includes(`@${HANDLE}`), `the first account is signed in too: ${JSON.stringify(others)}`)
      await shot(page, 'account-second')
      return { handle: `${SECOND}.test` }
    })

    await step('none-two-accounts', async () =>
      refused(await noPage(await open(page, SCOPE, { prompt: 'none', input: issuer })), 'account_selection_required'),
    )

    await step('picker', async () => {
      await open(page, SCOPE, { input: issuer })
      expect((await heading(page)) === 'Choose an account', 'two accounts, no login_hint: the picker')
      const listed = await texts(page.locator('a.account .meta strong'))
      expect(
        JSON.stringify([...listed].sort()) === JSON.stringify([`@${HANDLE}`, `@${SECOND}.test`].sort()),
        `both accounts: ${JSON.stringify(listed)}`,
      )
      await shot(page, 'picker', 'account-picker.png')
      const [res] = await Promise.all([
        page.waitForNavigation({ url: (u) => u.href.startsWith(redirectUri), waitUntil: 'load' }),
        page.locator('a.account', { hasText: `@${HANDLE}` }).click(),
      ])
      const { session, scope } = await exchange(await noPage(res))
      expect(session.did === did, `the first account's code: ${session.did}`)
      return { accounts: listed, scope }
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
