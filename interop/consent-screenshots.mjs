#!/usr/bin/env node
// Screenshots of atauth's consent screen for three realistic requests (issue 13), for docs/CONSENT.md:
//   posting-app    a posting app: create/delete posts, upload images and videos
//   feed-reader    a read-only feed reader: `rpc:` calls to the Bluesky app view, nothing written
//   permission-set an app asking for its own permission set (`include:`), pinned with --lexicon-dir
//
// What runs (all on 127.0.0.1): the reference PLC directory (`ref-pds.mjs --plc-only`, for the
// demo account's did:plc), `atauth serve --dev --demo-account alice.test --lexicon-dir TMP` with
// the set below pinned, then for each request a PAR (bound by `dpop_jkt`, loopback client id that
// declares the scope), and headless Chromium (Debian's, through playwright-core) opening the
// authorization URL, signing in and saving the consent page. Nothing is approved.
//
// Options:
//   --atauth PATH      the atauth binary (required)
//   --out DIR          where the PNGs go (default: ../docs/screenshots next to this script)
//   --chromium PATH    (default /usr/bin/chromium)
//   --timeout SECONDS  (default 120) hard limit for the whole run
//
// Prints one JSON line (steps, files, the scopes each page listed); exit 0 iff every step passed.

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import readline from 'node:readline'

import { CHROMIUM_FLAGS, parseArgs, stepRecorder } from './lib.mjs'

const HERE = path.dirname(new URL(import.meta.url).pathname)
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
  atauth: args.atauth,
  out: args.out ?? path.join(HERE, '..', 'docs', 'screenshots'),
  chromium: args.chromium ?? '/usr/bin/chromium',
  timeout: Number(args.timeout ?? '120'),
}
const log = (...m) => process.stderr.write(`[consent-screenshots] ${m.join(' ')}\n`)

const APPVIEW = 'did:web:api.bsky.app#bsky_appview'
const COOKBOOK_VIEW = 'did:web:api.cookbook.example#cookbook_appview'
const enc = (s) => s.replace('#', '%23')

// The pinned permission set of the third app, written as its author would publish it.
const SET_NSID = 'com.example.cookbook.authFull'
const SET = {
  lexicon: 1,
  id: SET_NSID,
  defs: {
    main: {
      type: 'permission-set',
      title: 'Share and save recipes in Cookbook',
      detail: 'Publish, edit and delete your recipes, keep a list of saved recipes, and read recipe feeds.',
      permissions: [
        { type: 'permission', resource: 'repo', collection: ['com.example.cookbook.recipe'] },
        {
          type: 'permission',
          resource: 'repo',
          collection: ['com.example.cookbook.savedRecipe'],
          action: ['create', 'delete'],
        },
        {
          type: 'permission',
          resource: 'rpc',
          lxm: ['com.example.cookbook.getFeed', 'com.example.cookbook.searchRecipes'],
          inheritAud: true,
        },
      ],
    },
  },
}

const REQUESTS = [
  {
    name: 'posting-app',
    scope: 'atproto repo:app.bsky.feed.post?action=create&action=delete blob?accept=image/*&accept=video/*',
  },
  {
    name: 'feed-reader',
    scope:
      `atproto rpc:app.bsky.feed.getTimeline?aud=${enc(APPVIEW)} ` +
      `rpc?lxm=app.bsky.feed.getFeed&lxm=app.bsky.feed.getPostThread&lxm=app.bsky.actor.getProfile&aud=${enc(APPVIEW)}`,
  },
  {
    name: 'permission-set',
    scope: `atproto include:${SET_NSID}?aud=${enc(COOKBOOK_VIEW)} blob:image/*`,
  },
]
const REDIRECT_URI = 'http://127.0.0.1/callback'
const HANDLE = 'alice.test'

const { result, finish, step } = stepRecorder({ files: [] })
const hardTimer = setTimeout(() => {
  result.error = `timeout after ${o.timeout}s`
  log(result.error)
  cleanup().finally(() => finish(2))
}, o.timeout * 1000)
hardTimer.unref()

const children = []
let tmp = ''
async function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  if (tmp) await fs.rm(tmp, { recursive: true, force: true }).catch(() => {})
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg)
}

// Starts a child and resolves with the first stdout line `match` accepts (its return value).
function startChild(cmd, argv, opts, match, what) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    const errLines = []
    readline.createInterface({ input: child.stderr }).on('line', (l) => {
      errLines.push(l)
      if (errLines.length > 40) errLines.shift()
    })
    const rl = readline.createInterface({ input: child.stdout })
    let done = false
    rl.on('line', (l) => {
      if (done) return
      const v = match(l)
      if (v !== undefined) {
        done = true
        resolve(v)
      }
    })
    child.on('exit', (code) => {
      if (!done) reject(new Error(`${what} exited (${code}) before it was ready:\n${errLines.join('\n')}`))
    })
  })
}

const b64url = (buf) => buf.toString('base64url')

async function par(meta, scope) {
  const clientId =
    `http://localhost?redirect_uri=${encodeURIComponent(REDIRECT_URI)}&scope=${encodeURIComponent(scope)}`
  const verifier = b64url(crypto.randomBytes(32))
  const body = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope,
    state: b64url(crypto.randomBytes(12)),
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
    login_hint: HANDLE,
    // RFC 9449 §10.1: the code is bound to this key thumbprint; no token is ever requested.
    dpop_jkt: b64url(crypto.randomBytes(32)),
  })
  const res = await fetch(meta.pushed_authorization_request_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  })
  const json = await res.json()
  expect(res.status === 201 && json.request_uri, `PAR for ${scope}: HTTP ${res.status} ${JSON.stringify(json)}`)
  const u = new URL(meta.authorization_endpoint)
  u.searchParams.set('client_id', clientId)
  u.searchParams.set('request_uri', json.request_uri)
  return u.href
}

async function main() {
  expect(o.atauth, '--atauth is required')
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'atauth-consent-'))
  const lexicons = path.join(tmp, 'lexicons')
  await fs.mkdir(lexicons)
  await fs.writeFile(path.join(lexicons, `${SET_NSID}.json`), JSON.stringify(SET, null, 2))
  const password = b64url(crypto.randomBytes(12))

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
        '--data-dir', path.join(tmp, 'data'), '--plc-url', plcUrl, '--handle-domains', '.test',
        '--demo-account', HANDLE, `--demo-password=${password}`, '--lexicon-dir', lexicons,
      ],
      { env: { ...process.env, RUST_LOG: 'warn' } },
      (l) => l.match(/^atauth serve: listening on .*\(issuer (.*)\)$/)?.[1],
      'atauth serve',
    ),
  }))
  const meta = await fetch(new URL('/.well-known/oauth-authorization-server', issuer)).then((r) => r.json())

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args: CHROMIUM_FLAGS, timeout: 20_000 })
  try {
    const context = await browser.newContext({ locale: 'en-US', viewport: { width: 760, height: 900 } })
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url())
      if (['localhost', '127.0.0.1', '[::1]'].includes(u.hostname) || u.protocol === 'data:') return route.continue()
      return route.abort()
    })
    const page = await context.newPage()
    page.setDefaultTimeout(15_000)
    await fs.mkdir(o.out, { recursive: true })
    for (const req of REQUESTS) {
      await step(req.name, async () => {
        const url = await par(meta, req.scope)
        const res = await page.goto(url, { waitUntil: 'load' })
        expect(res.status() === 200, `authorize page status ${res.status()}`)
        if ((await page.locator('h1').innerText()) === 'Sign in') {
          await page.locator('#password').fill(password)
          await Promise.all([
            page.waitForNavigation({ waitUntil: 'load' }),
            page.getByRole('button', { name: 'Sign in' }).click(),
          ])
        }
        const h1 = await page.locator('h1').innerText()
        expect(h1 === 'Allow access to your account?', `consent heading: ${h1}`)
        // Every permission line is labelled (screen readers read the label with its checkbox).
        const unlabelled = await page
          .locator('.perm input[type=checkbox]')
          .evaluateAll((boxes) => boxes.filter((b) => !b.labels?.length || !b.labels[0].innerText.trim()).length)
        expect(unlabelled === 0, `${unlabelled} checkboxes without a label`)
        expect((await page.getByRole('heading', { level: 2 }).allInnerTexts()).length > 0, 'the list has a heading')
        // The page's own column (brand, card, footer), not the empty background around it.
        const file = path.join(o.out, `consent-${req.name}.png`)
        await page.locator('.shell').screenshot({ path: file })
        const { size } = await fs.stat(file)
        result.files.push({ file: path.relative(process.cwd(), file), kib: Math.round(size / 1024) })
        const titles = await page.locator('.perm label strong').allInnerTexts()
        return { scope: req.scope, titles }
      })
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
    result.error = String(err?.message || err)
    log('FAILED:', err?.stack || err)
    await cleanup()
    finish(1)
  },
)
