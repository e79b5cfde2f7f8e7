// Reference vectors for atauth's permission model (issue 13, SCOPE-02 … 12, RS-SCOPE-01).
//
//   interop/node22 interop/scope-vectors.mjs            write crates/atauth-oauth/tests/vectors/oauth-scopes.json
//   interop/node22 interop/scope-vectors.mjs --check    regenerate in memory, exit 1 if the committed file differs
//
// Runs the pinned reference packages (@atproto/oauth-scopes, @atproto/lex-document, @atproto/oauth-types,
// versions from interop/package-lock.json) over the corpus below and records what they answer:
//   scopes          one scope string: accepted? normal form? (isOAuthScope && isAtprotoOauthScope,
//                   normalizeAtprotoOauthScopeValue; a string the reference throws on counts as refused)
//   lists           a scope list: normalizeAtprotoOauthScope
//   access          a granted scope list x a request: ScopePermissionsTransition.allows*, and the scope
//                   its ScopeMissingError names
//   permission_sets a permission-set Lexicon document: accepted (lexiconDocumentSchema, id, main type)?
//                   and per include: scope, IncludeScope.toScopes (the token-scope expansion, SCOPE-12)
// The Rust test crates/atauth-oauth/tests/oauth_scopes_vectors.rs asserts atauth answers the same.
//
// Where the reference's normal form does not read back as the same permission in the reference
// itself, atauth deliberately writes another form: such inputs must be listed in DEVIATIONS below
// with atauth's form, which is checked here to mean the same to the reference (docs/DEVIATIONS.md).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as scopes from '@atproto/oauth-scopes'
import { lexiconDocumentSchema } from '@atproto/lex-document'
import { isOAuthScope } from '@atproto/oauth-types'

const HERE = dirname(fileURLToPath(import.meta.url))
const OUT = join(HERE, '..', 'crates', 'atauth-oauth', 'tests', 'vectors', 'oauth-scopes.json')
const version = (name) => JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version

const APPVIEW = 'did:web:api.bsky.app#bsky_appview'
const APPVIEW_Q = 'did:web:api.bsky.app%23bsky_appview'
const PLC = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'

// ------------------------------------------------------------------------------ single scopes ---
const SCOPES = [
  // static
  'atproto', 'transition:generic', 'transition:chat.bsky', 'transition:email', 'transition:other',
  'atproto:x', 'atproto?x=1', 'transition', 'openid', 'Atproto',
  // repo (SCOPE-05)
  'repo:app.bsky.feed.post', 'repo:*', 'repo:app.bsky.feed.post?action=create',
  'repo:app.bsky.feed.post?action=delete&action=create', 'repo:app.bsky.feed.post?action=create&action=update&action=delete',
  'repo:app.bsky.feed.post?action=create&action=create', 'repo?collection=app.bsky.feed.post',
  'repo?collection=b.b.c&collection=a.b.c', 'repo?collection=a.b.c&collection=a.b.c',
  'repo?collection=a.b.c&collection=*', 'repo?collection=*&collection=*', 'repo:*?action=delete',
  'repo:com.example.*', 'repo:a.b.c?collection=x.y.z', 'repo', 'repo:', 'repo?', 'repo:?', 'repo:&',
  'repo:a.b.c?action=publish', 'repo:a.b.c?action=', 'repo:a.b.c?action', 'repo:a.b.c?foo=1', 'repo:a.b.c?&',
  'repo:a.b.c?', 'repo:a.b.c?=x', 'repo:app.bsky.feed.post?%61ction=create', 'repo:app%2Ebsky.feed.post',
  'repo:app.bsky.feed.post%3Fx', 'repo:%', 'repo:%zz', 'repo:%C3%A9.b.c', 'repo:a.b', 'repo:a.b.c.d.e.f',
  'repo:1a.b.c', 'repo:a.b.1c', 'repo:a-.b.c', 'repo:a.b-c.d', 'repo:a.b.c-d', 'repo:A.B.C',
  'repo:a.b.c:d', 'repo?collection=a.b.c:d', 'repo?collection=a.b.c&action=create&collection=a.b.d',
  'repo:app.bsky.feed.post?action=create&action=update', 'repo?collection=a.b.c+d',
  'repository:a.b.c', 'repo:' + 'a'.repeat(63) + '.b.c', 'repo:' + 'a'.repeat(64) + '.b.c',
  'repo:' + Array(60).fill('abcd').join('.') + '.x',
  // rpc (SCOPE-06)
  `rpc:app.bsky.feed.getTimeline?aud=${APPVIEW_Q}`, 'rpc:app.bsky.feed.getTimeline?aud=*', 'rpc:*?aud=' + APPVIEW_Q,
  'rpc:*?aud=*', 'rpc?lxm=*&aud=*', 'rpc:*', 'rpc:com.example.method1', 'rpc:com.example.service?aud=invalid',
  'rpc:foo.bar.baz?aud=did:plc:111', `rpc:foo.bar.baz?aud=${PLC}%23svc`, `rpc:foo.bar.baz?aud=${PLC}`,
  'rpc:foo.bar.baz?aud=did:web:example.com', 'rpc:foo.bar.baz?aud=did:web:example.com%23',
  'rpc:foo.bar.baz?aud=did:web:example.com%23a%23b', 'rpc:foo.bar.baz?aud=did:web:example.com#svc',
  'rpc:foo.bar.baz?aud=did:web:example.com:path%23svc', 'rpc:foo.bar.baz?aud=did:web:example.com%253A443%23svc',
  'rpc:foo.bar.baz?aud=did:web:localhost%253A2583%23svc', 'rpc:foo.bar.baz?aud=did:web:localhost%3A2583%23svc',
  'rpc:foo.bar.baz?aud=did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme%23svc',
  'rpc:foo.bar.baz?aud=did:web:example.com%23svc~1', 'rpc:foo.bar.baz?aud=did:web:example.com%23a!b',
  'rpc:foo.bar.baz?aud=did:web:example.com%23a%2520b', 'rpc:foo.bar.baz?aud=did:web:example.com%23a+b',
  'rpc:foo.bar.baz?aud=did:web:EXAMPLE.com%23svc', 'rpc:foo.bar.baz?aud=did:web:ex_ample.com%23svc',
  'rpc:foo.bar.baz?aud=*&aud=*', 'rpc:com.example.method1?aud=did:web:example.com&lxm=com.example.method2',
  'rpc?lxm=com.example.method1&lxm=com.example.method2&aud=did:web:example.com%23service_id',
  'rpc?lxm=b.b.c&lxm=a.b.c&lxm=a.b.c&aud=*', 'rpc?lxm=a.b.c&lxm=*&aud=' + APPVIEW_Q, 'rpc?lxm=a.b.c&lxm=*&aud=*',
  'rpc?aud=*&lxm=a.b.c', 'rpc:a.b.c?aud=*&foo=bar', 'rpc?lxm=a.b.c', 'rpc:a.b.c?aud=',
  // blob (SCOPE-07)
  'blob:*/*', 'blob:image/png', 'blob:image/*', 'blob:Image/PNG', 'blob:png', 'blob:*/png', 'blob:/png', 'blob:image/',
  'blob:a/b/c', 'blob:a*b/*', 'blob:**/*', 'blob:image/p*g', 'blob?accept=video/*&accept=text/html',
  'blob?accept=image/png&accept=image/*', 'blob?accept=image/png&accept=*/*', 'blob?accept=image/png&accept=image/png',
  'blob?accept=text/html&accept=image/png&accept=IMAGE/JPEG', 'blob:image/svg+xml', 'blob:image/svg%2Bxml',
  'blob?accept=image/svg+xml', 'blob?accept=image/svg%2Bxml', 'blob?accept=image/png&accept=image/svg%2Bxml',
  'blob:text/%C3%A9', 'blob:text/a%2541', 'blob:text/a%09b', 'blob:text/a%20b', 'blob?accept=text/%FF',
  'blob?accept=text/a%ZZ', 'blob:image/png;q=1', 'blob:image/png?accept=image/gif', 'blob', 'blob:',
  'blob?accept=image/png&accept=', 'blob:image%2Fpng', "blob:a'b/c(d)", 'blob:a@b/c,d',
  // account (SCOPE-08)
  'account:email', 'account:repo?action=manage', 'account:status', 'account:status?action=manage', 'account:*',
  'account:email?action=write', 'account:email?action=read', 'account:email?action=read&action=read',
  'account:email?action=manage&action=read', 'account:email?action=read&action=manage',
  'account:email?action=manage&action=manage', 'account?attr=email', 'account?attr=email&attr=repo',
  'account:email?attr=email', 'account', 'account:', 'account:Email',
  // identity (SCOPE-09)
  'identity:handle', 'identity:*', 'identity:*?', 'identity:email', 'identity?attr=handle', 'identity:handle?attr=*',
  'identity', 'identity:%2A',
  // include (SCOPE-10)
  'include:app.example.authFull', `include:app.example.authFull?aud=${APPVIEW_Q}`, 'include:app.example.authFull?aud=*',
  'include:app.example.authFull?aud=did:web:example.com', 'include:app.example', 'include:*', 'include:app.example.*',
  'include?nsid=app.example.authFull', 'include:app.example.authFull?nsid=app.example.other',
  `include:app.example.authFull?aud=${APPVIEW_Q}&aud=${APPVIEW_Q}`, 'include:app.example.authFull?foo=bar',
  // grammar (SCOPE-02, SCOPE-04) and unknown resources
  'resource', 'resource:positional?key=val', 'resource:', 'resource?', 'service:did:web:com.example#type?key=val',
  'repo:a.b.c?key=québec', 'emoji:☺️', 'repo:a"b.c', 'repo:a\\b.c', 'repo:a.b.c ', '', ':a.b.c', '?x=1',
  'repo:a.b.c\t', 'repo:a.b.c#x',
]

// ------------------------------------------------------------------------------- scope lists ---
const LISTS = [
  'atproto transition:generic',
  'transition:generic atproto repo:b.b.c repo:a.b.c',
  'atproto atproto',
  'atproto repo:a.b.c?action=create&action=update&action=delete rpc:a.b.c?aud=* blob:IMAGE/png unknown:x',
  `repo:app.bsky.feed.post?action=create atproto account:email identity:handle include:app.example.authFull?aud=${APPVIEW_Q}`,
  'rpc:a.b.c?aud=* repo:* blob:*/* Zeta:x atproto',
]

// ------------------------------------------------------------------------------------ access ---
const GRANTS = [
  'atproto',
  'atproto transition:generic',
  'atproto transition:generic transition:chat.bsky',
  'atproto transition:chat.bsky',
  'atproto transition:email',
  'atproto repo:app.bsky.feed.post',
  'atproto repo:app.bsky.feed.post?action=create',
  'atproto repo:*?action=delete',
  'atproto repo?collection=app.bsky.feed.post&collection=app.bsky.feed.like&action=update',
  `atproto rpc:app.bsky.feed.getTimeline?aud=${APPVIEW_Q}`,
  'atproto rpc:app.bsky.feed.getTimeline?aud=*',
  `atproto rpc:*?aud=${APPVIEW_Q}`,
  `atproto rpc?lxm=chat.bsky.convo.getLog&lxm=app.bsky.actor.getPreferences&aud=${APPVIEW_Q}`,
  'atproto blob:*/*',
  'atproto blob:image/*',
  'atproto blob?accept=image/png&accept=video/mp4',
  'atproto blob:Image/PNG',
  'atproto account:email',
  'atproto account:email?action=manage',
  'atproto account:repo?action=manage',
  'atproto account:status?action=manage',
  'atproto account:email?action=read&action=manage',
  'atproto identity:handle',
  'atproto identity:*',
  'atproto repo:app.bsky.feed.post?action=bogus blob:nope rpc:*?aud=*',
  `atproto include:app.example.authFull?aud=${APPVIEW_Q}`,
]
const REQUESTS = [
  { kind: 'repo', action: 'create', collection: 'app.bsky.feed.post' },
  { kind: 'repo', action: 'update', collection: 'app.bsky.feed.post' },
  { kind: 'repo', action: 'delete', collection: 'app.bsky.feed.post' },
  { kind: 'repo', action: 'create', collection: 'app.bsky.feed.like' },
  { kind: 'repo', action: 'update', collection: 'app.bsky.feed.like' },
  { kind: 'repo', action: 'delete', collection: 'com.example.thing' },
  { kind: 'repo', action: 'create', collection: 'App.bsky.feed.post' },
  { kind: 'repo', action: 'create', collection: 'not an nsid' },
  { kind: 'blob', mime: 'image/png' },
  { kind: 'blob', mime: 'image/PNG' },
  { kind: 'blob', mime: 'Image/PNG' },
  { kind: 'blob', mime: 'video/mp4' },
  { kind: 'blob', mime: 'text/html' },
  { kind: 'blob', mime: 'image/*' },
  { kind: 'blob', mime: 'nonsense' },
  { kind: 'blob', mime: 'imagex/png' },
  { kind: 'rpc', lxm: 'app.bsky.feed.getTimeline', aud: APPVIEW },
  { kind: 'rpc', lxm: 'app.bsky.feed.getTimeline', aud: 'did:web:api.bsky.app#other' },
  { kind: 'rpc', lxm: 'app.bsky.feed.getTimeline', aud: 'did:web:api.bsky.app' },
  { kind: 'rpc', lxm: 'app.bsky.actor.getPreferences', aud: APPVIEW },
  { kind: 'rpc', lxm: 'chat.bsky.convo.getLog', aud: 'did:web:api.bsky.chat#bsky_chat' },
  { kind: 'rpc', lxm: 'chat.bsky.convo.getLog', aud: APPVIEW },
  { kind: 'rpc', lxm: '*', aud: APPVIEW },
  { kind: 'rpc', lxm: 'com.atproto.moderation.createReport', aud: 'did:plc:ar7c4by46qjdydhdevvrndac#atproto_labeler' },
  { kind: 'account', attr: 'email', action: 'read' },
  { kind: 'account', attr: 'email', action: 'manage' },
  { kind: 'account', attr: 'repo', action: 'read' },
  { kind: 'account', attr: 'repo', action: 'manage' },
  { kind: 'account', attr: 'status', action: 'read' },
  { kind: 'account', attr: 'status', action: 'manage' },
  { kind: 'identity', attr: 'handle' },
  { kind: 'identity', attr: '*' },
]

// --------------------------------------------------------------------------- permission sets ---
const NSID = 'app.example.authFull'
const doc = (permissions, extra = {}, main = {}) => ({
  lexicon: 1,
  id: NSID,
  defs: { main: { type: 'permission-set', title: 'Full app access', detail: 'Everything the app needs.', permissions, ...main } },
  ...extra,
})
const perm = (resource, params) => ({ type: 'permission', resource, ...params })
const INCLUDES = [
  `include:${NSID}`,
  `include:${NSID}?aud=${APPVIEW_Q}`,
  `include:${NSID}?aud=did:web:localhost%253A2583%23svc`,
]
const SETS = [
  { name: 'typical', nsid: NSID, document: doc([
    perm('repo', { collection: ['app.example.post', 'app.example.like'] }),
    perm('repo', { collection: ['app.example.profile'], action: ['update'] }),
    perm('rpc', { lxm: ['app.example.getFeed'], aud: '*' }),
    perm('rpc', { lxm: ['app.example.sub.getThing', 'app.example.getOther'], inheritAud: true }),
  ], {}, { 'title:lang': { fr: 'Accès complet', 'pt-BR': 'Acesso total' }, 'detail:lang': { fr: 'Tout.' } }) },
  { name: 'ignored one by one', nsid: NSID, document: doc([
    perm('repo', { collection: ['*'] }),
    perm('repo', { collection: ['com.other.post'] }),
    perm('repo', { collection: ['app.example.post', 'app.other.post'] }),
    perm('repo', { collection: 'app.example.post' }),
    perm('repo', { collection: [] }),
    perm('repo', { collection: ['app.example.post'], action: 'create' }),
    perm('repo', { collection: ['app.example.post'], action: ['publish'] }),
    perm('repo', { collection: ['app.example.post'], inheritAud: true }),
    perm('repo', { collection: ['app.example.post'], extra: 'x' }),
    perm('repo', { collection: ['app.example'] }),
    perm('repo', { collection: ['app.examplex.post'] }),
    perm('repo', { collection: ['app.example.post'], action: ['create', 'create'] }),
    perm('rpc', { lxm: ['app.example.get'], aud: APPVIEW }),
    perm('rpc', { lxm: ['app.example.get'], aud: '*', inheritAud: true }),
    perm('rpc', { lxm: ['app.example.get'], aud: APPVIEW, inheritAud: true }),
    perm('rpc', { lxm: ['app.example.get'], inheritAud: false }),
    perm('rpc', { lxm: ['app.example.get'] }),
    perm('rpc', { lxm: ['*'], aud: '*' }),
    perm('rpc', { lxm: ['*'], inheritAud: true }),
    perm('rpc', { lxm: 'app.example.get', aud: '*' }),
    perm('rpc', { lxm: ['app.example.get'], aud: ['*'] }),
    perm('rpc', { lxm: ['app.example.get'], aud: 7 }),
    perm('blob', { accept: ['image/*'] }),
    perm('account', { attr: 'email' }),
    perm('identity', { attr: 'handle' }),
    perm('include', { nsid: 'app.example.other' }),
    perm('unknown', { foo: 'bar' }),
    perm('rpc', { lxm: ['app.example.ok'], aud: '*' }),
  ]) },
  { name: 'empty', nsid: NSID, document: doc([]) },
  { name: 'id mismatch', nsid: NSID, document: { ...doc([]), id: 'app.example.other' } },
  { name: 'not a permission set', nsid: NSID, document: { lexicon: 1, id: NSID, defs: { main: { type: 'query' } } } },
  { name: 'no main', nsid: NSID, document: { lexicon: 1, id: NSID, defs: {} } },
  { name: 'lexicon 2', nsid: NSID, document: { ...doc([]), lexicon: 2 } },
  { name: 'no permissions', nsid: NSID, document: { lexicon: 1, id: NSID, defs: { main: { type: 'permission-set' } } } },
  { name: 'entry not a permission', nsid: NSID, document: doc([{ type: 'token', resource: 'repo' }]) },
  { name: 'entry without resource', nsid: NSID, document: doc([{ type: 'permission' }]) },
  { name: 'entry empty resource', nsid: NSID, document: doc([{ type: 'permission', resource: '' }]) },
  { name: 'entry object value', nsid: NSID, document: doc([perm('repo', { collection: { a: 1 } })]) },
  { name: 'entry mixed list', nsid: NSID, document: doc([perm('repo', { collection: ['app.example.a', 1] })]) },
  { name: 'entry float', nsid: NSID, document: doc([perm('repo', { collection: ['app.example.a'], n: 1.5 })]) },
  { name: 'title not a string', nsid: NSID, document: doc([], {}, { title: 5 }) },
  { name: 'title:lang bad value', nsid: NSID, document: doc([], {}, { 'title:lang': { fr: 5 } }) },
  { name: 'short set nsid', nsid: 'a.b.c', document: { ...doc([perm('repo', { collection: ['a.b.d', 'a.b.c.e'] }), perm('repo', { collection: ['a.bc.d'] })]), id: 'a.b.c' } },
]

// ----------------------------------------------------------------------------- deviations ---
// Inputs whose reference normal form does not read back as the same permission in the reference:
// atauth writes `ours` instead (checked below to mean the same as the input to the reference).
const DEVIATIONS = {
  'rpc:foo.bar.baz?aud=did:web:localhost%253A2583%23svc': {
    ours: 'rpc:foo.bar.baz?aud=did:web:localhost%253A2583%23svc',
    reason: 'percent sign in a value: the reference writes %25 back as a bare %, so did:web:localhost%3A2583 reads back as a did:web with a path (refused)',
  },
  'rpc:foo.bar.baz?aud=did:web:example.com%23a%2520b': {
    ours: 'rpc:foo.bar.baz?aud=did:web:example.com%23a%2520b',
    reason: 'percent sign in a value: the reference writes %25 back as a bare %, so the fragment a%20b reads back as "a b" (refused)',
  },
  'blob?accept=image/png&accept=image/svg%2Bxml': {
    ours: 'blob?accept=image/png&accept=image/svg%2Bxml',
    reason: 'plus sign in a query value: the reference writes %2B back as a bare +, which a query reads back as a space (refused)',
  },
  'blob?accept=text/a%ZZ': {
    ours: 'blob:text/a%25zz',
    reason: 'percent sign in a value: the reference writes %25 back as a bare %, so its normal form blob:text/a%zz does not decode (decodeURIComponent throws)',
  },
  'blob:text/a%2541': {
    ours: 'blob:text/a%2541',
    reason: 'percent sign in a value: the reference writes %25 back as a bare %, so text/a%41 reads back as text/aA',
  },
}

// The same, for strings the reference writes when it expands an include: (SCOPE-12).
const EXPANSION_DEVIATIONS = {
  'rpc?lxm=app.example.getOther&lxm=app.example.sub.getThing&aud=did:web:localhost%3A2583%23svc':
    'rpc?lxm=app.example.getOther&lxm=app.example.sub.getThing&aud=did:web:localhost%253A2583%23svc',
}

// ------------------------------------------------------------------------------ generation ---
function refScope(s) {
  try {
    const valid = isOAuthScope(s) && !s.includes(' ') && scopes.isAtprotoOauthScope(s)
    return { valid, normal: valid ? scopes.normalizeAtprotoOauthScopeValue(s) : null, throws: false }
  } catch (err) {
    return { valid: false, normal: null, throws: true }
  }
}

// What a scope means to the reference: its parsed fields, lists as sets (order and repeats do not
// change what a list matches), blob types lower-cased (as its normal form writes them).
function meaning(s) {
  if (scopes.isStaticScopeValue(s)) return s
  for (const C of [scopes.AccountPermission, scopes.BlobPermission, scopes.IdentityPermission, scopes.IncludeScope,
    scopes.RepoPermission, scopes.RpcPermission]) {
    let parsed = null
    try { parsed = C.fromString(s) } catch { return null }
    if (!parsed) continue
    const fields = Object.entries(parsed).map(([k, v]) => {
      if (Array.isArray(v)) v = [...new Set(C === scopes.BlobPermission ? v.map((x) => x.toLowerCase()) : v)].sort()
      return [k, v]
    })
    return JSON.stringify([C.name, fields])
  }
  return null
}

const problems = []
const scopeVectors = SCOPES.map((input) => {
  const { valid, normal, throws } = refScope(input)
  const v = { input, valid, normal }
  if (throws) v.reference_throws = true
  if (valid) {
    const again = refScope(normal)
    const stable = again.valid && (again.normal === normal || meaning(normal) === meaning(input))
    const dev = DEVIATIONS[input]
    if (!stable && !dev) problems.push(`unstable reference normal form, add a DEVIATIONS entry: ${input} -> ${normal}`)
    if (stable && dev) problems.push(`DEVIATIONS entry for a stable input: ${input}`)
    if (dev) {
      // atauth's form must mean to the reference what the input means.
      if (refScope(dev.ours).normal !== normal) problems.push(`DEVIATIONS ${input}: the reference reads ${dev.ours} differently`)
      const o = refScope(dev.ours)
      if (!o.valid) problems.push(`DEVIATIONS ${input}: the reference refuses ${dev.ours}`)
      v.deviation = { ours: dev.ours, reason: dev.reason }
    }
  }
  return v
})
for (const k of Object.keys(DEVIATIONS)) if (!SCOPES.includes(k)) problems.push(`DEVIATIONS entry not in SCOPES: ${k}`)

const listVectors = LISTS.map((input) => ({ input, normalized: scopes.normalizeAtprotoOauthScope(input) }))

const requestArgs = (r) => {
  switch (r.kind) {
    case 'repo': return ['Repo', { action: r.action, collection: r.collection }]
    case 'blob': return ['Blob', { mime: r.mime }]
    case 'rpc': return ['Rpc', { lxm: r.lxm, aud: r.aud }]
    case 'account': return ['Account', { attr: r.attr, action: r.action }]
    case 'identity': return ['Identity', { attr: r.attr }]
  }
  throw new Error(`unknown request ${JSON.stringify(r)}`)
}
const requests = REQUESTS.map((r) => {
  const [name, opts] = requestArgs(r)
  const p = new scopes.ScopePermissionsTransition('')
  let missing = null
  try { p[`assert${name}`](opts) } catch (err) {
    if (!(err instanceof scopes.ScopeMissingError)) throw err
    missing = err.scope
  }
  return { ...r, missing }
})
const grants = GRANTS.map((scope) => {
  const p = new scopes.ScopePermissionsTransition(scope.split(' '))
  const allowed = REQUESTS.map((r) => {
    const [name, opts] = requestArgs(r)
    return p[`allows${name}`](opts) ? '1' : '0'
  }).join('')
  return { scope, allowed }
})

const setVectors = SETS.map(({ name, nsid, document }) => {
  const parsed = lexiconDocumentSchema.safeParse(document)
  const valid = parsed.success && document.id === nsid && document.defs?.main?.type === 'permission-set'
  const v = { name, nsid, document, valid }
  if (valid) {
    const main = document.defs.main
    v.includes = INCLUDES.map((scope) => {
      const include = scopes.IncludeScope.fromString(scope.replace(NSID, nsid))
      const expanded = include.toScopes(main)
      const ours = expanded.map((x) => {
        const again = refScope(x)
        const dev = EXPANSION_DEVIATIONS[x]
        if (!(again.valid && again.normal === x) && !dev) problems.push(`unstable expansion, add an EXPANSION_DEVIATIONS entry: ${x}`)
        // atauth's form must mean to the reference what it meant to write.
        if (dev && refScope(dev).normal !== x) problems.push(`EXPANSION_DEVIATIONS ${x}: the reference reads ${dev} differently`)
        return dev ?? x
      })
      const out = { scope: scope.replace(NSID, nsid), expanded }
      if (ours.some((x, i) => x !== expanded[i])) {
        out.deviation = { ours, reason: 'percent sign in a value: see the scopes deviations' }
      }
      return out
    })
  }
  return v
})

const out = {
  comment: 'Generated by interop/scope-vectors.mjs from the pinned reference packages; do not edit by hand.',
  reference: {
    '@atproto/oauth-scopes': version('@atproto/oauth-scopes'),
    '@atproto/lex-document': version('@atproto/lex-document'),
    '@atproto/oauth-types': version('@atproto/oauth-types'),
  },
  scopes: scopeVectors,
  lists: listVectors,
  requests,
  grants,
  permission_sets: setVectors,
}

if (problems.length) {
  for (const p of problems) console.error(`[scope-vectors] ${p}`)
  process.exit(1)
}
const text = JSON.stringify(out, null, 1) + '\n'
if (process.argv.includes('--check')) {
  let committed = ''
  try { committed = readFileSync(OUT, 'utf8') } catch {}
  if (committed !== text) {
    console.error(`[scope-vectors] ${OUT} differs from what the pinned reference answers; run interop/node22 interop/scope-vectors.mjs and review the diff`)
    process.exit(1)
  }
  console.log(`[scope-vectors] up to date: ${scopeVectors.length} scopes, ${listVectors.length} lists, ${grants.length}x${requests.length} access checks, ${setVectors.length} permission sets`)
} else {
  mkdirSync(dirname(OUT), { recursive: true })
  writeFileSync(OUT, text)
  console.log(`[scope-vectors] wrote ${OUT}: ${scopeVectors.length} scopes, ${listVectors.length} lists, ${grants.length}x${requests.length} access checks, ${setVectors.length} permission sets`)
}
