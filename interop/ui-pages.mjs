#!/usr/bin/env node
// Every server-rendered page of the authorization server in headless Chromium, in English and in
// German (the browser's Accept-Language, from its locale): sign-in (and its refusal), consent,
// the account page, the account page's sign-in form, the sign-up page and an error page. On each
// page:
//   lang      <html lang> and Content-Language are the negotiated language, Vary: Accept-Language
//   words     the page's heading is in that language
//   brand     the operator's links (terms, privacy, support: --brand-*) are in the footer
//   axe       axe-core (WCAG 2.1 A/AA + best practices) finds no serious or critical violation;
//             lesser ones are listed in the result
// Screenshots of every page (both languages) go to --out; with --docs, the German sign-in, consent,
// account and sign-up pages also go there (sign-in-de.png, consent-de.png, account-de.png,
// sign-up-de.png).
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`), `atauth
// serve --dev --demo-account alice.test` with branding flags, a loopback callback listener, the
// reference OAuth client (to make the authorization requests), and Debian's Chromium through
// playwright-core, which may reach only loopback.
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          screenshots (required)
//   --docs DIR         also write the German docs screenshots there
//   --chromium PATH    (default /usr/bin/chromium)
//   --timeout SECONDS  (default 150) hard limit for the whole run
//
// Prints one JSON line (steps, files); exit 0 iff every step passed.

import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'

import { axeCheck, buildLoopbackClient, Children, CHROMIUM_FLAGS, expect, helpIfAsked, parseArgs, startCallbackListener, startPlc, startServe, stepRecorder } from './lib.mjs'

const args = parseArgs(process.argv.slice(2))
await helpIfAsked(args, import.meta.url)
const o = {
  atauth: args.atauth,
  out: args.out,
  docs: args.docs ?? '',
  chromium: args.chromium ?? '/usr/bin/chromium',
  timeout: Number(args.timeout ?? '150'),
}
const log = (...m) => process.stderr.write(`[ui-pages] ${m.join(' ')}\n`)

const HANDLE = 'alice.test'
const SCOPE = 'atproto transition:generic'
const BRAND = {
  tos: 'http://127.0.0.1:9/tos',
  privacy: 'http://127.0.0.1:9/privacy',
  support: 'mailto:help@pds.example',
}

// What each language's pages say (the server's catalog, crates/atauth-server/src/ui/i18n.rs).
const WORDS = {
  en: {
    locale: 'en-US',
    signIn: 'Sign in',
    remember: 'Remember this account on this device',
    wrong: 'Wrong handle, email or password.',
    consent: 'Allow access to your account?',
    allow: 'Allow',
    account: 'Your account',
    signUp: 'Create an account',
    permissions: ['Know who you are', 'Read and change your account data'],
    error: 'This sign-in link is not valid',
    links: ['Terms of service', 'Privacy policy', 'Support'],
  },
  de: {
    locale: 'de-DE',
    signIn: 'Anmelden',
    remember: 'Dieses Konto auf diesem Gerät merken',
    wrong: 'Handle, E-Mail-Adresse oder Passwort ist falsch.',
    consent: 'Zugriff auf Ihr Konto erlauben?',
    allow: 'Erlauben',
    account: 'Ihr Konto',
    signUp: 'Konto erstellen',
    permissions: ['Wissen, wer Sie sind', 'Ihre Kontodaten lesen und ändern'],
    error: 'Dieser Anmeldelink ist ungültig',
    links: ['Nutzungsbedingungen', 'Datenschutz', 'Hilfe'],
  },
}

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
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-ui-pages-'))
  const password = crypto.randomBytes(12).toString('base64url')

  const { plcUrl } = await step('plc', async () => ({ plcUrl: await startPlc(children) }))

  const { issuer } = await step('serve', async () => ({
    issuer: await startServe(children, o.atauth, {
      dataDir: path.join(tmp, 'data'),
      plcUrl,
      extra: [
        '--demo-account', HANDLE, `--demo-password=${password}`,
        '--brand-name', 'Example PDS', '--brand-tos-url', BRAND.tos, '--brand-privacy-url', BRAND.privacy,
        '--brand-support-url', BRAND.support,
      ],
    }),
  }))

  callback = await startCallbackListener(0)
  const redirectUri = `http://127.0.0.1:${callback.port}/callback`
  const { client } = buildLoopbackClient({ redirectUri, scope: SCOPE, handleResolver: issuer, plcDirectoryUrl: plcUrl })

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })

  // One page as it is now: language, heading, footer links, axe; then its screenshot.
  const check = async (page, response, lang, name, heading, docsName) => {
    const w = WORDS[lang]
    expect((await page.getAttribute('html', 'lang')) === lang, `${name}: <html lang> is not ${lang}`)
    if (response) {
      const h = response.headers()
      expect(h['content-language'] === lang, `${name}: Content-Language ${h['content-language']}`)
      expect(/accept-language/i.test(h.vary ?? ''), `${name}: Vary ${h.vary}`)
    }
    const h1 = (await page.locator('h1').innerText()).trim()
    expect(h1 === heading, `${name}: heading "${h1}", expected "${heading}"`)
    const links = await page.locator('footer nav a').allInnerTexts()
    expect(JSON.stringify(links) === JSON.stringify(w.links), `${name}: footer links ${JSON.stringify(links)}`)
    const hrefs = await page.locator('footer nav a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))
    expect(JSON.stringify(hrefs) === JSON.stringify([BRAND.tos, BRAND.privacy, BRAND.support]), `${name}: hrefs ${hrefs}`)
    const { violations, blocking } = await axeCheck(page)
    if (violations.length) result.minor[`${lang}-${name}`] = violations.map((v) => `${v.id} (${v.impact})`)
    expect(blocking.length === 0, `${name} (${lang}): axe found ${JSON.stringify(blocking, null, 1)}`)
    const file = path.join(o.out, `${lang}-${name}.png`)
    await page.locator('.shell').screenshot({ path: file })
    const { size } = await fs.stat(file)
    result.files.push({ file: path.relative(process.cwd(), file), kib: Math.round(size / 1024) })
    if (o.docs && docsName) {
      await fs.mkdir(o.docs, { recursive: true })
      await fs.copyFile(file, path.join(o.docs, docsName))
      result.files.push({ file: path.relative(process.cwd(), path.join(o.docs, docsName)) })
    }
    return { heading: h1, minor: violations.map((v) => v.id) }
  }

  try {
    for (const lang of ['en', 'de']) {
      const w = WORDS[lang]
      const context = await browser.newContext({ locale: w.locale, viewport: { width: 820, height: 1000 } })
      await context.route('**/*', (route) => {
        const u = new URL(route.request().url())
        if (['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.protocol === 'data:') return route.continue()
        return route.abort()
      })
      const page = await context.newPage()
      page.setDefaultTimeout(15_000)
      const docs = lang === 'de'

      await step(`${lang}-sign-in`, async () => {
        const url = await client.authorize(HANDLE, { scope: SCOPE })
        const res = await page.goto(url.href, { waitUntil: 'load' })
        const first = await check(page, res, lang, 'sign-in', w.signIn, docs ? 'sign-in-de.png' : '')
        // A refused sign-in: the same form with the error, which must pass too.
        await page.locator('#password').fill('not the password')
        const [refused] = await Promise.all([
          page.waitForNavigation({ waitUntil: 'load' }),
          page.getByRole('button', { name: w.signIn }).click(),
        ])
        expect(refused.status() === 401, `wrong password: HTTP ${refused.status()}`)
        const alert = (await page.getByRole('alert').innerText()).trim()
        expect(alert === w.wrong, `the refusal: ${alert}`)
        await check(page, refused, lang, 'sign-in-refused', w.signIn)
        return first
      })

      await step(`${lang}-consent`, async () => {
        await page.locator('#password').fill(password)
        await page.getByLabel(w.remember).check()
        const [res] = await Promise.all([
          page.waitForNavigation({ waitUntil: 'load' }),
          page.getByRole('button', { name: w.signIn }).click(),
        ])
        const r = await check(page, res, lang, 'consent', w.consent, docs ? 'consent-de.png' : '')
        const lines = (await page.locator('ul.perms li strong').allInnerTexts()).map((t) => t.trim())
        expect(JSON.stringify(lines) === JSON.stringify(w.permissions), `consent: the permissions ${JSON.stringify(lines)}`)
        const cb = page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout: 20_000 })
        await page.getByRole('button', { name: w.allow, exact: true }).click()
        await cb
        return r
      })

      await step(`${lang}-account`, async () => {
        const res = await page.goto(new URL('/account', issuer).href, { waitUntil: 'load' })
        expect((await page.locator('li.app').count()) === 1, 'the app is listed')
        await page.locator('li.app summary').first().click()
        const lines = (await page.locator('li.app .plain li strong').allInnerTexts()).map((t) => t.trim())
        expect(JSON.stringify(lines) === JSON.stringify(w.permissions), `account: the permissions ${JSON.stringify(lines)}`)
        return check(page, res, lang, 'account', w.account, docs ? 'account-de.png' : '')
      })

      await step(`${lang}-error`, async () => {
        const res = await page.goto(new URL('/oauth/authorize?client_id=x&request_uri=x&request_uri=y', issuer).href)
        expect(res.status() === 400, `error page: HTTP ${res.status()}`)
        return check(page, res, lang, 'error', w.error)
      })

      await step(`${lang}-account-sign-in`, async () => {
        const fresh = await context.browser().newContext({ locale: w.locale, viewport: { width: 820, height: 1000 } })
        try {
          const p = await fresh.newPage()
          const res = await p.goto(new URL('/account', issuer).href, { waitUntil: 'load' })
          return await check(p, res, lang, 'account-sign-in', w.account)
        } finally {
          await fresh.close()
        }
      })

      await step(`${lang}-sign-up`, async () => {
        const fresh = await context.browser().newContext({ locale: w.locale, viewport: { width: 820, height: 1100 } })
        try {
          const p = await fresh.newPage()
          const res = await p.goto(new URL('/account/sign-up', issuer).href, { waitUntil: 'load' })
          return await check(p, res, lang, 'sign-up', w.signUp, docs ? 'sign-up-de.png' : '')
        } finally {
          await fresh.close()
        }
      })
      await context.close()
    }
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
