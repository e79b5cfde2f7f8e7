#!/usr/bin/env node
// The second factor (issue 16) in headless Chromium, end to end with the reference client:
//   account    /account: sign in with the password (the demo account has no factor yet)
//   enrol      "Set up an authenticator app": the page shows the key (base32) and the otpauth://
//              link; Node computes the current code from the shown key (RFC 6238 with node:crypto,
//              as an authenticator app would), names it and turns it on; ten recovery codes are
//              shown once
//   sign-out   "Sign out everywhere": this browser is signed out
//   authorize  the reference OAuth client (@atproto/oauth-client-node, a loopback client) asks
//              `atauth serve --dev`; the password alone leads to the "Two-step verification" step,
//              not the consent screen; a wrong code is refused with a clear message; the next
//              step's code (typed with the keyboard) leads to consent; Allow; client.callback()
//              exchanges the code and getSession works
// Every page a screenshot is taken of also passes axe-core (no serious or critical violation;
// lesser findings are listed under `minor` in the result), and every form control is labelled.
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`),
// `atauth serve --dev --demo-account alice.test`, the client's callback listener, and Debian's
// Chromium through playwright-core, which may reach only loopback. Real time: a used code is
// good once, so the sign-in waits for the next 30-second step (at most 30 s).
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          screenshots of every step (required)
//   --docs DIR         also write the docs screenshots (second-factor-step.png, account-totp-setup.png)
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
const log = (...m) => process.stderr.write(`[second-factor] ${m.join(' ')}\n`)

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



// RFC 4648 base32 (the key as the page shows it: groups of four, no padding).
function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  const out = []
  for (const c of s.replace(/[\s=-]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c)
    if (v < 0) throw new Error(`not base32: ${c}`)
    value = (value << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((value >>> bits) & 0xff)
    }
  }
  return Buffer.from(out)
}

// RFC 6238 TOTP: HMAC-SHA-1 of the 30-second step, dynamic truncation, 6 digits.
function totp(key, step) {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = crypto.createHmac('sha1', key).update(counter).digest()
  const off = mac[mac.length - 1] & 0x0f
  const bin = mac.readUInt32BE(off) & 0x7fffffff
  return String(bin % 1_000_000).padStart(6, '0')
}
const stepNow = () => Math.floor(Date.now() / 1000 / 30)

async function main() {
  expect(o.atauth, '--atauth is required')
  expect(o.out, '--out is required')
  await fs.mkdir(o.out, { recursive: true })
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-second-factor-'))
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
  const { client } = buildLoopbackClient({ redirectUri, scope: SCOPE, handleResolver: issuer, plcDirectoryUrl: plcUrl })

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
  try {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 820, height: 1100 } })
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url())
      if (['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.protocol === 'data:') return route.continue()
      return route.abort()
    })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)
    const submit = (button) =>
      Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByRole('button', { name: button }).click()])

    await step('account', async () => {
      await page.goto(new URL('/account', issuer).href, { waitUntil: 'load' })
      await page.locator('#identifier').fill(HANDLE)
      await page.locator('#password').fill(password)
      await submit('Sign in')
      expect((await page.locator('h1').innerText()) === 'Your account', 'signed in on the account page')
      const section = await page.locator('#factor-h').innerText()
      expect(section === 'Two-step verification', `the section: ${section}`)
      return {}
    })

    let key
    let enrolledStep
    await step('enrol', async () => {
      await submit('Set up an authenticator app')
      const shown = await page.locator('#totp-key').inputValue()
      expect(/^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$/.test(shown), `the key in groups of four: ${shown}`)
      const uri = await page.locator('a[href^="otpauth://totp/"]').getAttribute('href')
      expect(uri.includes(`secret=${shown.replace(/ /g, '')}`), `the otpauth link carries the key: ${uri}`)
      key = base32Decode(shown)
      await page.getByLabel('Name', { exact: true }).fill('Phone')
      await shot(page, 'totp-setup', 'account-totp-setup.png')
      enrolledStep = stepNow()
      await page.getByLabel('6-digit code from the app').fill(totp(key, enrolledStep))
      await submit('Turn on')
      const notice = await page.locator('.alert.ok').innerText()
      expect(/Two-step verification is on/.test(notice), `the notice: ${notice}`)
      const codes = await page.locator('ul.codes li').allInnerTexts()
      expect(codes.length === 10 && codes.every((c) => /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/.test(c)), `ten recovery codes: ${codes}`)
      await shot(page, 'recovery-codes')
      await page.reload({ waitUntil: 'load' })
      expect((await page.locator('ul.codes li').count()) === 0, 'the recovery codes are shown once')
      expect(/10 unused recovery codes left/.test(await page.content()), 'the page counts them')
      return { uri: uri.replace(/secret=[A-Z2-7]+/, 'secret=…') }
    })

    await step('sign-out', async () => {
      await submit('Sign out everywhere')
      expect((await page.locator('#password').count()) === 1, 'signed out: the sign-in form')
      return {}
    })

    await step('authorize', async () => {
      const url = await client.authorize(HANDLE, { scope: SCOPE })
      await page.goto(url.href, { waitUntil: 'load' })
      expect((await page.locator('h1').innerText()) === 'Sign in', 'the sign-in page comes first')
      await page.locator('#password').fill(password)
      await submit('Sign in')
      const h1 = await page.locator('h1').innerText()
      expect(h1 === 'Two-step verification', `the password alone is not enough: ${h1}`)
      const code = page.getByLabel('6-digit code')
      expect((await code.getAttribute('autocomplete')) === 'one-time-code', 'autocomplete=one-time-code')
      expect((await code.getAttribute('inputmode')) === 'numeric', 'inputmode=numeric')
      await shot(page, 'second-factor', 'second-factor-step.png')
      // A wrong code: refused with a clear message, nothing signed in.
      const right = new Set([-1, 0, 1].map((d) => totp(key, stepNow() + d)))
      let wrong = '000000'
      for (let i = 0; right.has(wrong); i++) wrong = String(100000 + i)
      await code.fill(wrong)
      await submit('Verify')
      const alert = await page.locator('.alert.error').innerText()
      expect(/wrong or was already used/.test(alert), `the refusal: ${alert}`)
      // The recovery-code fold opens with the keyboard and its form is labelled too.
      await page.locator('summary').focus()
      await page.keyboard.press('Enter')
      expect(await page.getByLabel('Recovery code').isVisible(), 'the recovery-code field shows')
      await shot(page, 'second-factor-wrong')
      // The enrolment spent its step: wait for the next one (at most 30 s), then type the code.
      while (stepNow() <= enrolledStep) await new Promise((r) => setTimeout(r, 500))
      await page.getByLabel('6-digit code').focus()
      await page.keyboard.type(totp(key, stepNow()))
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')])
      const next = await page.locator('h1').innerText()
      expect(next === 'Allow access to your account?', `then the consent screen: ${next}`)
      await shot(page, 'consent')
      const cb = page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 20_000 })
      await page.getByRole('button', { name: 'Allow' }).click()
      await cb
      const params = await callback.got
      const { session } = await client.callback(params)
      const res = await session.fetchHandler('/xrpc/com.atproto.server.getSession')
      expect(res.status === 200, `getSession with the new tokens: HTTP ${res.status}`)
      return { did: session.did }
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
