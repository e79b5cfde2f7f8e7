#!/usr/bin/env node
// Drives atauth's sign-in and consent UI (crates/atauth-server/src/ui) in headless Chromium:
// opens the authorize URL a client produced, signs in, approves, and waits for the browser to
// reach the client's loopback redirect_uri. Screenshots of each page go to --screenshots.
//
// Steps (each reported pass/fail in the final JSON line on stdout):
//   error-page   an unknown request_uri on the same server shows our error page (HTML, 400)
//   sign-in      the sign-in page: handle pre-filled from login_hint (or typed), anti-framing headers
//   wrong-pw     a wrong password keeps us on the sign-in page with an error message
//   consent      sign in; the consent page names the client_id and describes the scopes
//   approve      click "Allow"; the browser lands on the callback with code, state and iss
//
// Options:
//   --url URL              the authorize URL (required)
//   --handle H             account handle (required)
//   --password P           account password (required)
//   --callback-origin URL  where the client listens, e.g. http://127.0.0.1:PORT (required)
//   --screenshots DIR      save 01-error.png, 02-sign-in.png, 03-sign-in-error.png, 04-consent.png
//   --chromium PATH        (default /usr/bin/chromium)
//   --timeout SECONDS      (default 60) hard limit for the whole run
//
// Exit code 0 iff every step passed, 2 on timeout, 1 otherwise. Chromium gets the flags of lib.mjs
// (CHROMIUM_FLAGS, incl. --host-resolver-rules) and every request to a non-loopback host is aborted.

import fs from 'node:fs/promises'
import path from 'node:path'
import process from 'node:process'

import { CHROMIUM_FLAGS, parseArgs, stepRecorder } from './lib.mjs'

const args = parseArgs(process.argv.slice(2))
if (args.help) {
  const src = await fs.readFile(new URL(import.meta.url), 'utf8')
  const help = []
  for (const l of src.split('\n').slice(1)) {
    if (!l.startsWith('//')) break
    help.push(l)
  }
  process.stderr.write(help.join('\n') + '\n')
  process.exit(0)
}
const o = {
  url: args.url,
  handle: args.handle,
  password: args.password,
  callbackOrigin: args['callback-origin'],
  screenshots: args.screenshots ?? '',
  chromium: args.chromium ?? '/usr/bin/chromium',
  timeout: Number(args.timeout ?? '60'),
}
const log = (...m) => process.stderr.write(`[drive-consent] ${m.join(' ')}\n`)

const { result, finish, step } = stepRecorder({ screenshots: [] })
const hardTimer = setTimeout(() => {
  result.error = `timeout after ${o.timeout}s`
  log(result.error)
  finish(2)
}, o.timeout * 1000)
hardTimer.unref()

function expect(cond, msg) {
  if (!cond) throw new Error(msg)
}

async function main() {
  for (const k of ['url', 'handle', 'password', 'callbackOrigin']) if (!o[k]) throw new Error(`--${k} is required`)
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })
  try {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 900, height: 860 } })
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url())
      if (['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.protocol === 'data:') return route.continue()
      return route.abort()
    })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)
    const shot = async (name) => {
      if (!o.screenshots) return
      await fs.mkdir(o.screenshots, { recursive: true })
      const p = path.join(o.screenshots, `${String(result.screenshots.length + 1).padStart(2, '0')}-${name}.png`)
      await page.screenshot({ path: p, fullPage: true })
      result.screenshots.push(p)
    }
    const authorize = new URL(o.url)

    await step('error-page', async () => {
      const bogus = new URL('/oauth/authorize', authorize.origin)
      bogus.searchParams.set('client_id', authorize.searchParams.get('client_id') ?? '')
      bogus.searchParams.set('request_uri', 'urn:ietf:params:oauth:request_uri:req-0000000000000000')
      const res = await page.goto(bogus.href, { waitUntil: 'load' })
      expect(res.status() === 400, `error page status ${res.status()}`)
      const h1 = await page.locator('h1').innerText()
      expect(/expired/i.test(h1), `error page heading: ${h1}`)
      await shot('error')
      return { status: res.status(), heading: h1 }
    })

    await step('sign-in', async () => {
      const res = await page.goto(o.url, { waitUntil: 'load' })
      expect(res.status() === 200, `authorize page status ${res.status()}`)
      const headers = res.headers()
      expect(/frame-ancestors 'none'/.test(headers['content-security-policy'] ?? ''), 'CSP frame-ancestors')
      expect(headers['x-frame-options'] === 'DENY', 'X-Frame-Options')
      expect((await page.locator('h1').innerText()) === 'Sign in', 'sign-in heading')
      const user = page.locator('#identifier')
      const prefilled = await user.inputValue()
      if (!prefilled) await user.fill(o.handle)
      await shot('sign-in')
      return { prefilled: prefilled || null }
    })

    await step('wrong-pw', async () => {
      await page.locator('#password').fill(`${o.password}-wrong`)
      const [res] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.getByRole('button', { name: 'Sign in' }).click(),
      ])
      expect(res.status() === 401, `wrong password status ${res.status()}`)
      const alert = await page.locator('.alert.error').innerText()
      expect(/wrong/i.test(alert), `alert: ${alert}`)
      await shot('sign-in-error')
      return { status: res.status(), alert }
    })

    await step('consent', async () => {
      const user = page.locator('#identifier')
      if (!(await user.inputValue())) await user.fill(o.handle)
      await page.locator('#password').fill(o.password)
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.getByRole('button', { name: 'Sign in' }).click()])
      const h1 = await page.locator('h1').innerText()
      expect(h1 === 'Allow access to your account?', `consent heading: ${h1}`)
      const text = await page.locator('.card').innerText()
      expect(text.includes(authorize.searchParams.get('client_id')), 'client_id shown')
      expect(text.includes('Know who you are'), 'atproto described')
      expect(text.includes(`@${o.handle}`), 'account shown')
      await shot('consent')
      const scopes = await page.locator('.perm code').allInnerTexts()
      return { scopes }
    })

    await step('approve', async () => {
      const reached = page.waitForURL((u) => u.href.startsWith(o.callbackOrigin), { timeout: 15_000 })
      await page.getByRole('button', { name: 'Allow' }).click()
      await reached
      const cb = new URL(page.url())
      for (const k of ['code', 'state', 'iss']) expect(cb.searchParams.get(k), `callback without ${k}`)
      return { callback: cb.origin + cb.pathname, iss: cb.searchParams.get('iss') }
    })
  } finally {
    await browser.close().catch(() => {})
  }
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
