// atauth: passkeys (WebAuthn) on the account page and at the second-factor step of sign-in.
// Progressive enhancement: the passkey forms are `hidden` in the HTML and shown here only when the
// browser has WebAuthn; without this script, authenticator apps and recovery codes still work.
//
// A form `form[data-passkey]` (`register` or `sign-in`) names in `data-options` where to get the
// ceremony's options: a POST of its hidden fields (without `csrf_token`) as JSON, with the CSRF
// token in `X-CSRF-Token`, answered `{"publicKey": …}` with binary members in base64url. The
// browser's answer goes, as JSON in the same shape, into the form's `credential` field, and the form
// is submitted as any other; the server answers it with a page. Words come from the form's
// `data-msg-*` attributes (the page's language); status goes to its `[role=status]` element.
'use strict'
;(function () {
  var forms = document.querySelectorAll('form[data-passkey]')
  if (!forms.length) return
  var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch)
  document.querySelectorAll('[data-passkey-fallback]').forEach(function (el) { el.hidden = supported })
  if (!supported) return

  function dec (s) {
    var b = atob(s.replace(/-/g, '+').replace(/_/g, '/'))
    var out = new Uint8Array(b.length)
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i)
    return out.buffer
  }
  function enc (buf) {
    var bytes = new Uint8Array(buf)
    var s = ''
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i])
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
  }
  function ids (list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: dec(c.id) }) })
  }

  function credentialJson (c) {
    var r = c.response
    var out = { id: c.id, rawId: enc(c.rawId), type: c.type, response: { clientDataJSON: enc(r.clientDataJSON) } }
    if (r.attestationObject) {
      out.response.attestationObject = enc(r.attestationObject)
      out.response.transports = typeof r.getTransports === 'function' ? r.getTransports() : []
    } else {
      out.response.authenticatorData = enc(r.authenticatorData)
      out.response.signature = enc(r.signature)
      out.response.userHandle = r.userHandle ? enc(r.userHandle) : null
    }
    return JSON.stringify(out)
  }

  forms.forEach(function (form) {
    var status = form.querySelector('[role=status]')
    var button = form.querySelector('button[type=submit]')
    var say = function (key) { if (status) status.textContent = form.getAttribute('data-msg-' + key) || '' }
    form.hidden = false
    form.addEventListener('submit', function (event) {
      event.preventDefault()
      if (!form.reportValidity()) return
      var body = {}
      var csrf = ''
      form.querySelectorAll('input[type=hidden]').forEach(function (input) {
        if (input.name === 'csrf_token') csrf = input.value
        else if (input.name !== 'credential') body[input.name] = input.value
      })
      button.disabled = true
      say('waiting')
      fetch(form.getAttribute('data-options'), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify(body),
      })
        .then(function (res) {
          if (!res.ok) throw new Error('options: HTTP ' + res.status)
          return res.json()
        })
        .then(function (json) {
          var o = json.publicKey
          o.challenge = dec(o.challenge)
          if (form.getAttribute('data-passkey') === 'register') {
            o.user.id = dec(o.user.id)
            o.excludeCredentials = ids(o.excludeCredentials)
            return navigator.credentials.create({ publicKey: o })
          }
          o.allowCredentials = ids(o.allowCredentials)
          return navigator.credentials.get({ publicKey: o })
        })
        .then(function (credential) {
          form.querySelector('input[name=credential]').value = credentialJson(credential)
          say('sending')
          form.submit()
        })
        .catch(function (err) {
          button.disabled = false
          say(err && (err.name === 'NotAllowedError' || err.name === 'AbortError') ? 'cancelled' : 'failed')
          button.focus()
        })
    })
  })
})()
