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
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`),
// `atauth serve --dev --invite-required`, the client's callback listener, and Debian's Chromium
// through playwright-core, which may reach only loopback.
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          screenshots of every step (required)
//   --docs DIR         also write the docs screenshot (sign-up.png) there
//   --chromium PATH    (default /usr/bin/chromium)
//   --timeout SECONDS  (default 150) hard limit for the whole run
//
// Prints one JSON line (steps, files); exit 0 iff every step passed.

import { spawn } from 'node:child_process'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'

import { buildLoopbackClient, Children, CHROMIUM_FLAGS, expect, helpIfAsked, parseArgs, startCallbackListener, stepRecorder } from './lib.mjs'

const HERE = path.dirname(new URL(import.meta.url).pathname)
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

const { result, finish, step } = stepRecorder({ files: [] })
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

const startChild = (...a) => children.start(...a)

// Every visible form control has an accessible label, every button a name (the page works with
// a screen reader and without a mouse).
async function unlabelledControls(page) {
  return page.evaluate(() => {
    const bad = []
    for (const el of document.querySelectorAll('input:not([type=hidden]), button, select, textarea')) {
      const name =
        el.tagName === 'BUTTON'
          ? el.innerText.trim() || el.getAttribute('aria-label')
          : (el.labels && [...el.labels].map((l) => l.innerText.trim()).join(' ')) || el.getAttribute('aria-label')
      if (!name) bad.push(el.outerHTML.slice(0, 120))
    }
    return bad
  })
}

async function main() {
  expect(o.atauth, '--atauth is required')
  expect(o.out, '--out is required')
  await fs.mkdir(o.out, { recursive: true })
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-signup-'))
  const dataDir = path.join(tmp, 'data')

  const { plcUrl } = await step('plc', async () => ({
    plcUrl: await startChild(
      process.execPath,
      [path.join(HERE, 'ref-pds.mjs'), '--plc-only'],
      { cwd: HERE },
      (l) => {
        try {
          return JSON.parse(l).plcUrl
        } catch {
          return undefined
        }
      },
      'the PLC directory',
    ),
  }))

  const { issuer } = await step('serve', async () => ({
    issuer: await startChild(
      o.atauth,
      [
        'serve', '--dev', '--bind', '127.0.0.1', '--port', '0', '--no-metrics',
        '--data-dir', dataDir, '--plc-url', plcUrl, '--handle-domains', '.test', '--invite-required',
      ],
      { env: { ...process.env, RUST_LOG: 'warn' } },
      (l) => l.match(/^atauth serve: listening on .*\(issuer (.*)\)$/)?.[1],
      'atauth serve',
    ),
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
  const { client } = buildLoopbackClient({ redirectUri, scope: SCOPE, handleResolver: issuer, plcDirectoryUrl: plcUrl })

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })
  const shots = []
  const shot = async (page, name, docsName) => {
    const file = path.join(o.out, `${String(shots.length + 1).padStart(2, '0')}-${name}.png`)
    await page.locator('main').screenshot({ path: file })
    shots.push(file)
    const { size } = await fs.stat(file)
    result.files.push({ file: path.relative(process.cwd(), file), kib: Math.round(size / 1024) })
    if (o.docs && docsName) {
      await fs.mkdir(o.docs, { recursive: true })
      await fs.copyFile(file, path.join(o.docs, docsName))
      result.files.push({ file: path.relative(process.cwd(), path.join(o.docs, docsName)) })
    }
  }
  const focused = (page) => page.evaluate(() => document.activeElement?.id ?? '')
  try {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 820, height: 1100 } })
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url())
      if (['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.protocol === 'data:') return route.continue()
      return route.abort()
    })
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
      // Keyboard only: the handle field has the focus, Tab goes through the fields in order.
      const order = [await focused(page)]
      await page.keyboard.type(HANDLE_NAME)
      for (const text of ['carol@example.com', 'carol12345', code]) {
        await page.keyboard.press('Tab')
        order.push(await focused(page))
        await page.keyboard.type(text)
      }
      expect(
        JSON.stringify(order) === JSON.stringify(['handle', 'email', 'password', 'invite_code']),
        `focus order: ${JSON.stringify(order)}`,
      )
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')])
      const alert = await page.locator('[role=alert]').innerText()
      expect(/Do not use your handle or email address/.test(alert), `the weak password's message: ${alert}`)
      expect((await focused(page)) === 'password', 'the password field has the focus again')
      expect((await page.locator('#handle').inputValue()) === HANDLE_NAME, 'what was typed stays')
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

    await step('callback', async () => {
      const params = await callback.got
      expect(params.get('code'), 'the client got a code')
      const { session } = await client.callback(params)
      const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
      expect(res.status === 200, `getSession with the new tokens: HTTP ${res.status}`)
      const body = await res.json()
      expect(body.handle === `${HANDLE_NAME}.test` && body.did === session.did, `the new account: ${JSON.stringify(body)}`)
      expect(session.did.startsWith('did:plc:'), `a did:plc: ${session.did}`)
      return { did: session.did, handle: body.handle }
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
