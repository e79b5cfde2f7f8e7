//! The pages' languages: which one a request gets (`Accept-Language`, RFC 9110 §12.5.4) and every
//! word of the page chrome in each ([`Text`]).
//!
//! The catalog is plain data, no i18n framework: one [`Text`] per language, a `&'static str` field
//! per message, and a method where a message takes a value. A new page adds its fields to `Text`
//! and fills them in [`EN`] and [`DE`] (the compiler refuses a language that misses one). English
//! is the fallback. The permission descriptions ([`super::scopes`]) have their own [`ScopeText`]
//! per language, and the sign-up form its [`SignUpText`], in the same shape. What an app's
//! developer wrote (a permission set's title and detail, the client's name) is shown as written.

use http::{HeaderMap, header};

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English, the fallback.
    #[default]
    En,
    /// German.
    De,
}

impl Lang {
    /// Every language, English (the fallback) first.
    pub const ALL: [Self; 2] = [Self::En, Self::De];

    /// The BCP 47 tag, as in `<html lang>` and `Content-Language`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
        }
    }

    /// The words of this language.
    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::De => &DE,
        }
    }

    /// The language of a request's `Accept-Language` header ([`Lang::negotiate`]).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::negotiate(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
    }

    /// Picks the language of an `Accept-Language` value (RFC 9110 §12.5.4): the highest-weighted
    /// range whose primary subtag we have (`de-CH` → German, as RFC 4647 lookup truncates it), the
    /// earlier one on equal weight; `q=0` means "not this one"; `*` stands for any language not
    /// named. Nothing acceptable, no header or a malformed one: English.
    pub fn negotiate(accept_language: Option<&str>) -> Self {
        let Some(value) = accept_language else { return Self::En };
        let mut ranges: Vec<(String, u16)> = Vec::new();
        for item in value.split(',') {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            if range.is_empty() {
                continue;
            }
            let mut q = 1000;
            for param in parts {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    // A weight that does not parse counts as 0: an unreadable preference is no
                    // reason to pick a language.
                    q = parse_qvalue(v.trim()).unwrap_or(0);
                }
            }
            ranges.push((range, q));
        }
        let weight = |lang: Self| -> Option<(u16, usize)> {
            let named = ranges
                .iter()
                .enumerate()
                .filter(|(_, (r, _))| r.split('-').next() == Some(lang.tag()))
                .max_by_key(|(i, (_, q))| (*q, std::cmp::Reverse(*i)));
            match named {
                Some((i, (_, q))) => Some((*q, i)),
                None => ranges.iter().enumerate().find(|(_, (r, _))| r == "*").map(|(i, (_, q))| (*q, i)),
            }
        };
        Self::ALL
            .into_iter()
            .filter_map(|lang| weight(lang).filter(|(q, _)| *q > 0).map(|(q, i)| (lang, q, i)))
            .max_by_key(|(_, q, i)| (*q, std::cmp::Reverse(*i)))
            .map_or(Self::En, |(lang, _, _)| lang)
    }
}

/// A `qvalue` (RFC 9110 §12.4.2: `0`, `1`, up to three decimals) in thousandths.
fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The words of an error page.
#[derive(Debug, Clone, Copy)]
pub struct ErrorWords {
    /// The heading (and the title).
    pub heading: &'static str,
    /// What happened.
    pub message: &'static str,
    /// What to do.
    pub hint: &'static str,
}

/// Every word of the pages' chrome in one language. Messages with a value are methods.
#[derive(Debug)]
pub struct Text {
    /// This language.
    pub lang: Lang,

    // Footer links.
    /// Footer: the operator's home page.
    pub link_home: &'static str,
    /// Footer: terms of service.
    pub link_tos: &'static str,
    /// Footer: privacy policy.
    pub link_privacy: &'static str,
    /// Footer: support.
    pub link_support: &'static str,
    /// `aria-label` of the footer's links.
    pub footer_label: &'static str,

    // Sign-in (authorization and account page).
    /// Sign-in heading, title and button.
    pub sign_in: &'static str,
    /// "to continue to" before the app's name.
    pub to_continue_to: &'static str,
    /// Identifier field label.
    pub handle_or_email: &'static str,
    /// Locked `login_hint`, before the identifier.
    pub hinted_before: &'static str,
    /// Locked `login_hint`, after the identifier.
    pub hinted_after: &'static str,
    /// Password field label.
    pub password: &'static str,
    /// Under the password field.
    pub password_hint: &'static str,
    /// The "remember" checkbox.
    pub remember: &'static str,
    /// Link to the account picker.
    pub choose_signed_in: &'static str,
    /// The cancel button.
    pub cancel: &'static str,

    // Account picker.
    /// Picker heading and title.
    pub choose_account: &'static str,
    /// Picker: sign in with another account.
    pub use_another_account: &'static str,

    // Client as the consent screen shows it.
    /// Title of a loopback client.
    pub loopback_title: &'static str,
    /// A loopback client in running text.
    pub loopback_label: &'static str,
    /// Badge of a loopback client.
    pub loopback_badge: &'static str,
    /// Warning about loopback clients.
    pub loopback_notice: &'static str,
    /// Badge of an operator-listed client.
    pub verified: &'static str,
    /// Badge of any other client.
    pub unverified: &'static str,

    // Consent.
    /// Consent title.
    pub allow_access: &'static str,
    /// Consent heading.
    pub allow_access_q: &'static str,
    /// After the app's name: "wants to use your account."
    pub wants_to_use: &'static str,
    /// Link to change the account.
    pub switch: &'static str,
    /// Heading of the permission list.
    pub will_be_able: &'static str,
    /// Heading of the list of new permissions when some were granted before.
    pub also_asks: &'static str,
    /// On the required `atproto` line.
    pub always_included: &'static str,
    /// Under the list when some lines can be unticked.
    pub untick_hint: &'static str,
    /// Before the redirect origin.
    pub go_back_to: &'static str,
    /// Deny button.
    pub deny: &'static str,
    /// Allow button.
    pub allow: &'static str,

    // Account page.
    /// Account page heading and title.
    pub your_account: &'static str,
    /// Account page sign-in lead.
    pub account_lead: &'static str,
    /// Account page sign-in hint.
    pub account_password_hint: &'static str,
    /// Before the other accounts of the device.
    pub also_signed_in: &'static str,
    /// New app password, before its name.
    pub new_password_before: &'static str,
    /// New app password: privileged.
    pub new_password_privileged: &'static str,
    /// New app password, after its name.
    pub new_password_after: &'static str,
    /// Connected apps heading.
    pub connected_apps: &'static str,
    /// No connected apps.
    pub no_apps: &'static str,
    /// Badge of a loopback app on the account page.
    pub loopback_app_badge: &'static str,
    /// Before the first-use time.
    pub first_allowed: &'static str,
    /// Before the last-use time.
    pub last_used: &'static str,
    /// An app with a remembered consent and no session.
    pub not_signed_in_remembered: &'static str,
    /// Before the devices an app was allowed on.
    pub allowed_on: &'static str,
    /// Summary of the permission list.
    pub what_it_can_do: &'static str,
    /// Sign out of an app.
    pub sign_out_app: &'static str,
    /// Under the apps.
    pub sign_out_app_hint: &'static str,
    /// Devices heading.
    pub where_signed_in: &'static str,
    /// Badge of this device.
    pub this_device: &'static str,
    /// Before the last-seen time.
    pub last_seen: &'static str,
    /// Before the address.
    pub from: &'static str,
    /// Before the sign-in time.
    pub signed_in_at: &'static str,
    /// Sign out of this device.
    pub sign_out_this_device: &'static str,
    /// Sign out of another device.
    pub sign_out_that_device: &'static str,
    /// Under the devices.
    pub sign_out_device_hint: &'static str,
    /// Sign out everywhere.
    pub sign_out_everywhere: &'static str,
    /// Under "sign out everywhere".
    pub sign_out_everywhere_hint: &'static str,
    /// App passwords heading.
    pub app_passwords: &'static str,
    /// Under the heading.
    pub app_passwords_hint: &'static str,
    /// No app passwords.
    pub no_app_passwords: &'static str,
    /// Badge of a privileged app password.
    pub privileged: &'static str,
    /// Before the creation time.
    pub created: &'static str,
    /// Revoke an app password.
    pub revoke: &'static str,
    /// Label of the new password's name.
    pub new_password_name: &'static str,
    /// Placeholder of the new password's name.
    pub new_password_placeholder: &'static str,
    /// The "privileged" checkbox.
    pub privileged_check: &'static str,
    /// Create an app password.
    pub create_app_password: &'static str,
    /// "(this device)" after a device's name.
    pub this_device_suffix: &'static str,
    /// A browser without a `User-Agent`.
    pub unknown_browser: &'static str,

    // Notices and refusals.
    /// Notice after signing in on the account page.
    pub notice_signed_in: &'static str,
    /// Notice after creating an account from the account page's sign-up.
    pub notice_created: &'static str,
    /// Notice after signing out of an app.
    pub notice_app: &'static str,
    /// Notice after signing out of another device.
    pub notice_device: &'static str,
    /// Notice after revoking an app password.
    pub notice_revoked: &'static str,
    /// An app password name out of bounds.
    pub app_password_name_invalid: &'static str,
    /// An app password name in use.
    pub app_password_name_taken: &'static str,
    /// Sign-in without identifier or password.
    pub refuse_incomplete: &'static str,
    /// Wrong identifier or password.
    pub refuse_credentials: &'static str,
    /// The limit store is down.
    pub refuse_unavailable: &'static str,
    /// A taken-down account.
    pub refuse_taken_down: &'static str,
    /// A deactivated account, for an app.
    pub refuse_deactivated: &'static str,
    /// A deactivated account, on the account page.
    pub refuse_deactivated_account: &'static str,
    /// Not the `login_hint` account.
    pub refuse_other_account: &'static str,

    // Error pages.
    /// Before the error code.
    pub error_code: &'static str,
    /// The request is unknown, expired or used.
    pub err_expired: ErrorWords,
    /// Opened in another browser.
    pub err_device: ErrorWords,
    /// Client metadata failed.
    pub err_client: ErrorWords,
    /// The chosen account does not exist.
    pub err_account: ErrorWords,
    /// Not the hinted account.
    pub err_hint: ErrorWords,
    /// Granted scopes do not match.
    pub err_scope: ErrorWords,
    /// Any other bad link.
    pub err_link: ErrorWords,
    /// A malformed form.
    pub err_form: ErrorWords,
    /// No device cookie.
    pub err_session: ErrorWords,
    /// Bad CSRF token.
    pub err_csrf: ErrorWords,
    /// Cross-site form.
    pub err_cross: ErrorWords,
    /// Not signed in on this device.
    pub err_not_signed_in: ErrorWords,
    /// Sign-up is not offered here (no handle domains, or the request names an account).
    pub err_sign_up: ErrorWords,
    /// Internal failure.
    pub err_internal: ErrorWords,
    /// The second factor's words (the sign-in step and the account page's section).
    pub factor: &'static FactorText,
    /// The passkey words (the account page's section, the second-factor step).
    pub passkey: &'static PasskeyText,
}

/// The words of the second factor (issue 16): the sign-in step after the password, and the
/// account page's "Two-step verification" section.
#[derive(Debug)]
pub struct FactorText {
    /// Heading of the step and of the account page's section.
    pub heading: &'static str,
    /// Under the heading of the step, before the handle.
    pub lead: &'static str,
    /// Label of the code field.
    pub code_label: &'static str,
    /// Hint under the code field.
    pub code_hint: &'static str,
    /// The code form's button.
    pub verify: &'static str,
    /// The fold that holds the recovery-code form.
    pub use_recovery: &'static str,
    /// Label of the recovery-code field.
    pub recovery_label: &'static str,
    /// Hint under the recovery-code field.
    pub recovery_hint: &'static str,
    /// The recovery form's button.
    pub recovery_submit: &'static str,
    /// The link back to the sign-in form.
    pub restart: &'static str,
    /// A wrong, replayed or used-up code.
    pub refuse_code: &'static str,
    /// No code typed.
    pub refuse_empty: &'static str,
    /// The pending sign-in expired (five minutes) or is gone.
    pub refuse_expired: &'static str,
    /// Section text when the account has no factor.
    pub off: &'static str,
    /// Section text when it has one.
    pub on: &'static str,
    /// Heading of the list of authenticator apps.
    pub apps_heading: &'static str,
    /// "Added" before a date.
    pub added: &'static str,
    /// "Last used" before a date.
    pub last_used: &'static str,
    /// The button that starts setting up an authenticator app.
    pub setup: &'static str,
    /// What to do with the key.
    pub setup_steps: &'static str,
    /// Label of the base32 key.
    pub setup_key: &'static str,
    /// Label of the `otpauth://` link.
    pub setup_uri: &'static str,
    /// Label of the name field.
    pub name_label: &'static str,
    /// Hint under the name field.
    pub name_hint: &'static str,
    /// Label of the confirming code field.
    pub confirm_label: &'static str,
    /// The button that confirms the setup.
    pub confirm: &'static str,
    /// Label of the field that confirms a removal.
    pub remove_label: &'static str,
    /// Hint under it.
    pub remove_hint: &'static str,
    /// The removal button.
    pub remove: &'static str,
    /// Heading of the recovery-code part.
    pub recovery_heading: &'static str,
    /// The button that makes new recovery codes.
    pub regenerate: &'static str,
    /// Heading over new recovery codes.
    pub new_codes_heading: &'static str,
    /// What to do with them.
    pub new_codes_lead: &'static str,
    /// The setup's code did not match the key.
    pub refuse_setup_code: &'static str,
    /// The setup expired.
    pub refuse_setup_expired: &'static str,
    /// Name missing or too long.
    pub refuse_name: &'static str,
    /// Name in use.
    pub refuse_name_taken: &'static str,
    /// Too many authenticator apps.
    pub refuse_too_many: &'static str,
    /// Neither a current code nor the password confirmed the removal.
    pub refuse_remove: &'static str,
    /// Notice: an authenticator app was added.
    pub notice_added: &'static str,
    /// Notice: a factor was removed.
    pub notice_removed: &'static str,
}

impl FactorText {
    /// The second factor is locked after ten wrong codes; try again after `secs`.
    pub fn locked(&self, lang: Lang, secs: u64) -> String {
        let minutes = secs.div_ceil(60).max(1);
        match lang {
            Lang::En => format!(
                "Too many wrong codes. For your security, two-step verification for this account is locked: \
                 try again in {minutes} minutes."
            ),
            Lang::De => format!(
                "Zu viele falsche Codes. Zu Ihrer Sicherheit ist die Bestätigung in zwei Schritten für dieses \
                 Konto gesperrt: Versuchen Sie es in {minutes} Minuten erneut."
            ),
        }
    }

    /// How many recovery codes are left.
    pub fn codes_left(&self, lang: Lang, n: u64) -> String {
        match (lang, n) {
            (Lang::En, 1) => "1 unused recovery code left.".to_owned(),
            (Lang::En, n) => format!("{n} unused recovery codes left."),
            (Lang::De, 1) => "1 unbenutzter Wiederherstellungscode übrig.".to_owned(),
            (Lang::De, n) => format!("{n} unbenutzte Wiederherstellungscodes übrig."),
        }
    }
}

/// The second factor's words in English.
pub static FACTOR_EN: FactorText = FactorText {
    heading: "Two-step verification",
    lead: "Enter the code from your authenticator app to finish signing in as",
    code_label: "6-digit code",
    code_hint: "From your authenticator app. A new code appears every 30 seconds.",
    verify: "Verify",
    use_recovery: "Use a recovery code instead",
    recovery_label: "Recovery code",
    recovery_hint: "One of the codes you saved when you turned on two-step verification. Each works once.",
    recovery_submit: "Use recovery code",
    restart: "Sign in with another account",
    refuse_code: "That code is wrong or was already used. Enter the current code.",
    refuse_empty: "Enter the code.",
    refuse_expired: "Signing in took too long. Enter your password again.",
    off: "Off. Your password alone signs you in.",
    on: "On. Signing in needs your password and a code from your authenticator app (or a recovery code). \
         App passwords are not affected.",
    apps_heading: "Authenticator apps",
    added: "Added",
    last_used: "Last used",
    setup: "Set up an authenticator app",
    setup_steps: "Add this key to your authenticator app (its option to enter a setup key), or open the link \
                  on a device that has the app. Then enter the 6-digit code the app shows.",
    setup_key: "Setup key",
    setup_uri: "Setup link",
    name_label: "Name",
    name_hint: "To tell your authenticator apps apart, for example \"Phone\".",
    confirm_label: "6-digit code from the app",
    confirm: "Turn on",
    remove_label: "Current code or your password",
    remove_hint: "To confirm it is you.",
    remove: "Remove",
    recovery_heading: "Recovery codes",
    regenerate: "Make new recovery codes",
    new_codes_heading: "Your recovery codes",
    new_codes_lead: "Save these codes somewhere safe. Each one signs you in once when you cannot use your \
                     authenticator app. They are shown only now; any older codes no longer work.",
    refuse_setup_code: "That code does not match the new key. Check the key in your app and enter its current code.",
    refuse_setup_expired: "The setup took longer than five minutes. Start again.",
    refuse_name: "Give it a name of 1 to 100 characters.",
    refuse_name_taken: "You already have an authenticator app with this name.",
    refuse_too_many: "You already have the most authenticator apps an account may have.",
    refuse_remove: "That is neither a current code nor your password. Nothing was removed.",
    notice_added: "Two-step verification is on.",
    notice_removed: "Removed.",
};

/// The second factor's words in German.
pub static FACTOR_DE: FactorText = FactorText {
    heading: "Bestätigung in zwei Schritten",
    lead: "Geben Sie den Code aus Ihrer Authenticator-App ein, um die Anmeldung abzuschließen als",
    code_label: "6-stelliger Code",
    code_hint: "Aus Ihrer Authenticator-App. Alle 30 Sekunden erscheint ein neuer Code.",
    verify: "Bestätigen",
    use_recovery: "Stattdessen einen Wiederherstellungscode verwenden",
    recovery_label: "Wiederherstellungscode",
    recovery_hint: "Einer der Codes, die Sie beim Einschalten der Bestätigung in zwei Schritten gespeichert \
                    haben. Jeder funktioniert einmal.",
    recovery_submit: "Wiederherstellungscode verwenden",
    restart: "Mit einem anderen Konto anmelden",
    refuse_code: "Dieser Code ist falsch oder wurde schon verwendet. Geben Sie den aktuellen Code ein.",
    refuse_empty: "Geben Sie den Code ein.",
    refuse_expired: "Die Anmeldung hat zu lange gedauert. Geben Sie Ihr Passwort erneut ein.",
    off: "Aus. Ihr Passwort allein meldet Sie an.",
    on: "An. Zur Anmeldung brauchen Sie Ihr Passwort und einen Code aus Ihrer Authenticator-App (oder einen \
         Wiederherstellungscode). App-Passwörter sind nicht betroffen.",
    apps_heading: "Authenticator-Apps",
    added: "Hinzugefügt",
    last_used: "Zuletzt verwendet",
    setup: "Authenticator-App einrichten",
    setup_steps: "Fügen Sie diesen Schlüssel in Ihrer Authenticator-App hinzu (über die Eingabe eines \
                  Einrichtungsschlüssels) oder öffnen Sie den Link auf einem Gerät mit der App. Geben Sie dann \
                  den 6-stelligen Code ein, den die App anzeigt.",
    setup_key: "Einrichtungsschlüssel",
    setup_uri: "Einrichtungslink",
    name_label: "Name",
    name_hint: "Um Ihre Authenticator-Apps zu unterscheiden, zum Beispiel „Telefon“.",
    confirm_label: "6-stelliger Code aus der App",
    confirm: "Einschalten",
    remove_label: "Aktueller Code oder Ihr Passwort",
    remove_hint: "Zur Bestätigung, dass Sie es sind.",
    remove: "Entfernen",
    recovery_heading: "Wiederherstellungscodes",
    regenerate: "Neue Wiederherstellungscodes erstellen",
    new_codes_heading: "Ihre Wiederherstellungscodes",
    new_codes_lead: "Bewahren Sie diese Codes sicher auf. Jeder meldet Sie einmal an, wenn Sie Ihre \
                     Authenticator-App nicht verwenden können. Sie werden nur jetzt angezeigt; ältere Codes \
                     funktionieren nicht mehr.",
    refuse_setup_code: "Dieser Code passt nicht zum neuen Schlüssel. Prüfen Sie den Schlüssel in Ihrer App und \
                        geben Sie den aktuellen Code ein.",
    refuse_setup_expired: "Die Einrichtung hat länger als fünf Minuten gedauert. Beginnen Sie erneut.",
    refuse_name: "Geben Sie einen Namen mit 1 bis 100 Zeichen ein.",
    refuse_name_taken: "Sie haben bereits eine Authenticator-App mit diesem Namen.",
    refuse_too_many: "Sie haben bereits so viele Authenticator-Apps, wie ein Konto haben darf.",
    refuse_remove: "Das ist weder ein aktueller Code noch Ihr Passwort. Es wurde nichts entfernt.",
    notice_added: "Die Bestätigung in zwei Schritten ist eingeschaltet.",
    notice_removed: "Entfernt.",
};

impl Text {
    /// The BCP 47 tag of this language.
    pub fn tag(&self) -> &'static str {
        self.lang.tag()
    }

    /// Too many sign-in attempts; try again after `secs`.
    pub fn rate_limited(&self, secs: u64) -> String {
        let minutes = secs.div_ceil(60);
        match self.lang {
            Lang::En if secs <= 90 => {
                format!("Too many sign-in attempts. For your security, try again in {secs} seconds.")
            }
            Lang::En => {
                format!("Too many sign-in attempts. For your security, try again in {minutes} minutes.")
            }
            Lang::De if secs <= 90 => format!(
                "Zu viele Anmeldeversuche. Zu Ihrer Sicherheit versuchen Sie es in {secs} Sekunden erneut."
            ),
            Lang::De => format!(
                "Zu viele Anmeldeversuche. Zu Ihrer Sicherheit versuchen Sie es in {minutes} Minuten erneut."
            ),
        }
    }

    /// The folded list of what was granted before: "You already allowed 2 permissions on this device".
    pub fn already_allowed(&self, n: usize) -> String {
        match (self.lang, n) {
            (Lang::En, 1) => "You already allowed 1 permission on this device".to_owned(),
            (Lang::En, n) => format!("You already allowed {n} permissions on this device"),
            (Lang::De, 1) => "Sie haben auf diesem Gerät bereits 1 Berechtigung erlaubt".to_owned(),
            (Lang::De, n) => format!("Sie haben auf diesem Gerät bereits {n} Berechtigungen erlaubt"),
        }
    }

    /// The warning shown for a client this server has not verified.
    pub fn unverified_notice(&self, host: &str) -> String {
        match self.lang {
            Lang::En => format!(
                "This server has not verified this app. It is identified only by its address above: \
                 continue only if you trust {host}."
            ),
            Lang::De => format!(
                "Dieser Server hat diese App nicht überprüft. Sie ist nur an ihrer Adresse oben zu \
                 erkennen: Fahren Sie nur fort, wenn Sie {host} vertrauen."
            ),
        }
    }

    /// A browser on an operating system: "Firefox on Linux".
    pub fn browser_on(&self, browser: &str, os: &str) -> String {
        match self.lang {
            Lang::En => format!("{browser} on {os}"),
            Lang::De => format!("{browser} unter {os}"),
        }
    }
}

const AGAIN_EN: &str = "Go back to the app and start signing in again.";
const RELOAD_EN: &str = "Go back, reload the page and try again.";

/// The words of passkeys (issue 16): the account page's "Passkeys" section and "Use a passkey" at
/// the second-factor step. The `msg_*` words are read by the script (`passkey.js`) from the form's
/// `data-msg-*` attributes and put into its live region.
#[derive(Debug)]
pub struct PasskeyText {
    /// Heading of the account page's section.
    pub heading: &'static str,
    /// Under the second-factor step's heading, before the handle, when a passkey is the way.
    pub lead: &'static str,
    /// What a passkey does here.
    pub intro: &'static str,
    /// The section's state when the account has a passkey (instead of the authenticator-app
    /// wording of `factor.on`).
    pub on: &'static str,
    /// No passkey yet.
    pub none: &'static str,
    /// "Never used" (instead of a last-use date).
    pub never_used: &'static str,
    /// Label of the new passkey's name field.
    pub name_label: &'static str,
    /// Placeholder of that field.
    pub name_placeholder: &'static str,
    /// The button that adds one.
    pub add: &'static str,
    /// Shown instead of the form when the browser has no JavaScript or no WebAuthn.
    pub needs_script: &'static str,
    /// The button at the second-factor step.
    pub use_passkey: &'static str,
    /// Shown at the second-factor step when the browser cannot use passkeys.
    pub use_needs_script: &'static str,
    /// Live region: waiting for the authenticator.
    pub msg_waiting: &'static str,
    /// Live region: sending the answer.
    pub msg_sending: &'static str,
    /// Live region: the person closed the browser's prompt.
    pub msg_cancelled: &'static str,
    /// Live region: the browser could not do it.
    pub msg_failed: &'static str,
    /// Notice: a passkey was added.
    pub notice_added: &'static str,
    /// The passkey belongs to another account than the one signing in.
    pub refuse_other_account: &'static str,
    /// The passkey is not registered here.
    pub refuse_unknown: &'static str,
    /// The signature counter went back: a possible copy.
    pub refuse_cloned: &'static str,
    /// Any other failed check.
    pub refuse_invalid: &'static str,
    /// The ceremony's five minutes ran out (or it was answered already).
    pub refuse_expired: &'static str,
    /// The passkey is registered already.
    pub refuse_registered: &'static str,
    /// Name in use.
    pub refuse_name_taken: &'static str,
    /// Too many passkeys.
    pub refuse_too_many: &'static str,
}

/// The passkey words in English.
pub static PASSKEY_EN: PasskeyText = PasskeyText {
    heading: "Passkeys",
    lead: "Use your passkey to finish signing in as",
    on: "On. Signing in needs your password and one of your passkeys or a code from an authenticator app \
         (or a recovery code). App passwords are not affected.",
    intro: "A passkey on this device, your phone or a security key can confirm it is you after your password, \
            instead of a code.",
    none: "No passkeys yet.",
    never_used: "Not used yet",
    name_label: "Name of the new passkey",
    name_placeholder: "for example: Laptop",
    add: "Add a passkey",
    needs_script: "Adding a passkey needs JavaScript and a browser that supports passkeys.",
    use_passkey: "Use a passkey",
    use_needs_script: "To use a passkey, turn on JavaScript or use a browser that supports passkeys.",
    msg_waiting: "Follow your browser's prompt to use your passkey…",
    msg_sending: "Checking the passkey…",
    msg_cancelled: "The passkey prompt was closed. Try again when you are ready.",
    msg_failed: "This browser could not use a passkey. Try again, or use another way.",
    notice_added: "Passkey added.",
    refuse_other_account: "This passkey belongs to another account. Use a passkey of this account, or another way \
                           to confirm it is you. Nothing was changed.",
    refuse_unknown: "This passkey is not registered for this account (it may have been removed).",
    refuse_cloned: "This passkey was not accepted: its use counter went backwards, so it may have been copied. \
                    Use another way to confirm it is you, and check your passkeys on your account page.",
    refuse_invalid: "The passkey could not be verified. Try again.",
    refuse_expired: "The passkey prompt expired. Try again.",
    refuse_registered: "This passkey is already registered.",
    refuse_name_taken: "You already have a passkey with this name.",
    refuse_too_many: "You already have the most passkeys an account may have. Remove one first.",
};

/// The passkey words in German.
pub static PASSKEY_DE: PasskeyText = PasskeyText {
    heading: "Passkeys",
    lead: "Verwenden Sie Ihren Passkey, um die Anmeldung abzuschließen als",
    on: "An. Zur Anmeldung brauchen Sie Ihr Passwort und einen Ihrer Passkeys oder einen Code aus einer \
         Authenticator-App (oder einen Wiederherstellungscode). App-Passwörter sind nicht betroffen.",
    intro: "Ein Passkey auf diesem Gerät, Ihrem Telefon oder einem Sicherheitsschlüssel kann nach Ihrem Passwort \
            bestätigen, dass Sie es sind, statt eines Codes.",
    none: "Noch keine Passkeys.",
    never_used: "Noch nicht verwendet",
    name_label: "Name des neuen Passkeys",
    name_placeholder: "zum Beispiel: Laptop",
    add: "Passkey hinzufügen",
    needs_script: "Zum Hinzufügen eines Passkeys braucht es JavaScript und einen Browser, der Passkeys unterstützt.",
    use_passkey: "Passkey verwenden",
    use_needs_script: "Um einen Passkey zu verwenden, schalten Sie JavaScript ein oder verwenden Sie einen Browser, \
                       der Passkeys unterstützt.",
    msg_waiting: "Folgen Sie der Abfrage Ihres Browsers, um Ihren Passkey zu verwenden …",
    msg_sending: "Der Passkey wird geprüft …",
    msg_cancelled: "Die Passkey-Abfrage wurde geschlossen. Versuchen Sie es erneut, wenn Sie bereit sind.",
    msg_failed: "Dieser Browser konnte keinen Passkey verwenden. Versuchen Sie es erneut oder wählen Sie einen \
                 anderen Weg.",
    notice_added: "Passkey hinzugefügt.",
    refuse_other_account: "Dieser Passkey gehört zu einem anderen Konto. Verwenden Sie einen Passkey dieses Kontos \
                           oder einen anderen Weg, um zu bestätigen, dass Sie es sind. Es wurde nichts geändert.",
    refuse_unknown: "Dieser Passkey ist für dieses Konto nicht registriert (vielleicht wurde er entfernt).",
    refuse_cloned: "Dieser Passkey wurde nicht angenommen: Sein Nutzungszähler ging zurück, er könnte also kopiert \
                    worden sein. Bestätigen Sie auf einem anderen Weg, dass Sie es sind, und prüfen Sie Ihre \
                    Passkeys auf Ihrer Kontoseite.",
    refuse_invalid: "Der Passkey konnte nicht geprüft werden. Versuchen Sie es erneut.",
    refuse_expired: "Die Passkey-Abfrage ist abgelaufen. Versuchen Sie es erneut.",
    refuse_registered: "Dieser Passkey ist bereits registriert.",
    refuse_name_taken: "Sie haben bereits einen Passkey mit diesem Namen.",
    refuse_too_many: "Sie haben bereits die höchste erlaubte Zahl an Passkeys. Entfernen Sie zuerst einen.",
};

/// English.
pub static EN: Text = Text {
    lang: Lang::En,
    link_home: "Home",
    link_tos: "Terms of service",
    link_privacy: "Privacy policy",
    link_support: "Support",
    footer_label: "About this server",
    sign_in: "Sign in",
    to_continue_to: "to continue to",
    handle_or_email: "Handle or email",
    hinted_before: "This app asked to sign you in as ",
    hinted_after: ".",
    password: "Password",
    password_hint: "Your account password. App passwords can't be used here.",
    remember: "Remember this account on this device",
    choose_signed_in: "Choose an account that is already signed in",
    cancel: "Cancel and return to the app",
    choose_account: "Choose an account",
    use_another_account: "Use another account",
    loopback_title: "An app on this device",
    loopback_label: "an app on this device",
    loopback_badge: "Loopback client: runs on this computer",
    loopback_notice: "This app runs on this computer and is not registered anywhere: anyone can make one \
                      that looks like this. Allow it only if you started this sign-in yourself.",
    verified: "Verified by this server",
    unverified: "Unverified app",
    allow_access: "Allow access",
    allow_access_q: "Allow access to your account?",
    wants_to_use: " wants to use your account.",
    switch: "Switch",
    will_be_able: "It will be able to",
    also_asks: "New: it also asks to",
    always_included: "Always included.",
    untick_hint: "Untick what you don't want to allow; the app may then not work fully.",
    go_back_to: "Afterwards you go back to",
    deny: "Deny",
    allow: "Allow",
    your_account: "Your account",
    account_lead: "Sign in to see and manage the apps and devices that use your account.",
    account_password_hint: "Your account password. App passwords can't be used here. You stay signed in \
                            on this device until you sign out.",
    also_signed_in: "Also signed in on this device:",
    new_password_before: "Your new app password",
    new_password_privileged: "(privileged)",
    new_password_after: "Copy it now: it will not be shown again.",
    connected_apps: "Connected apps",
    no_apps: "No app can use your account right now.",
    loopback_app_badge: "Runs on a computer, not registered",
    first_allowed: "First allowed",
    last_used: "last used",
    not_signed_in_remembered: "not signed in (permission remembered)",
    allowed_on: "allowed on",
    what_it_can_do: "What it can do",
    sign_out_app: "Sign out of this app",
    sign_out_app_hint: "Signing out of an app ends its access at once and forgets what you allowed it: it \
                        has to ask you again.",
    where_signed_in: "Where you're signed in",
    this_device: "This device",
    last_seen: "Last seen",
    from: "from",
    signed_in_at: "signed in",
    sign_out_this_device: "Sign out of this device",
    sign_out_that_device: "Sign out of that device",
    sign_out_device_hint: "Signing out of a device also ends the access of the apps you allowed on it.",
    sign_out_everywhere: "Sign out everywhere",
    sign_out_everywhere_hint: "Ends every app's access and every session of this account, on every device. \
                               App passwords stay until you revoke them.",
    app_passwords: "App passwords",
    app_passwords_hint: "For apps that sign in with a password instead of this page. Each can be revoked on \
                         its own.",
    no_app_passwords: "You have no app passwords.",
    privileged: "Privileged",
    created: "Created",
    revoke: "Revoke",
    new_password_name: "Name of the new app password",
    new_password_placeholder: "My other app",
    privileged_check: "Privileged: may also read and send direct messages",
    create_app_password: "Create app password",
    this_device_suffix: "(this device)",
    unknown_browser: "Unknown browser",
    notice_signed_in: "You are signed in.",
    notice_created: "Your account is ready, and you are signed in on this device.",
    notice_app: "Signed out of the app. It has to ask you again before it can use your account.",
    notice_device: "Signed out of that device, and of the apps you allowed on it.",
    notice_revoked: "App password revoked. Apps using it are signed out.",
    app_password_name_invalid: "Give the app password a name of 1 to 100 characters.",
    app_password_name_taken: "You already have an app password with this name.",
    refuse_incomplete: "Enter your handle or email, and your password.",
    refuse_credentials: "Wrong handle, email or password.",
    refuse_unavailable: "Sign-in is temporarily unavailable. Please try again in a minute.",
    refuse_taken_down: "This account has been taken down and cannot sign in.",
    refuse_deactivated: "This account is deactivated. Reactivate it before signing in to apps.",
    refuse_deactivated_account: "This account is deactivated. Reactivate it before managing it here.",
    refuse_other_account: "The app asked for a different account. Sign in with that one.",
    error_code: "Error code:",
    err_expired: ErrorWords {
        heading: "This sign-in link has expired",
        message: "The app's sign-in request has expired or was already used.",
        hint: AGAIN_EN,
    },
    err_device: ErrorWords {
        heading: "This sign-in was started in another browser",
        message: "For your safety, a sign-in request can only be completed in the browser where it was opened.",
        hint: "Start again from the app in this browser, and make sure it allows cookies for this site.",
    },
    err_client: ErrorWords {
        heading: "This app could not be verified",
        message: "Its registration (client metadata) could not be loaded or is not valid.",
        hint: "Try again later, or tell the app's developer.",
    },
    err_account: ErrorWords {
        heading: "Account not found",
        message: "The account you chose does not exist on this server.",
        hint: AGAIN_EN,
    },
    err_hint: ErrorWords {
        heading: "Wrong account for this app",
        message: "The app asked to sign in with a different account.",
        hint: AGAIN_EN,
    },
    err_scope: ErrorWords {
        heading: "These permissions cannot be granted",
        message: "The permissions sent do not match what the app asked for. Identifying you is always required.",
        hint: RELOAD_EN,
    },
    err_link: ErrorWords {
        heading: "This sign-in link is not valid",
        message: "The link that brought you here is incomplete or was changed.",
        hint: AGAIN_EN,
    },
    err_form: ErrorWords {
        heading: "This form could not be read",
        message: "Some of its fields were missing or malformed, so nothing was changed.",
        hint: RELOAD_EN,
    },
    err_session: ErrorWords {
        heading: "Your session has expired",
        message: "This page keeps you signed in with a cookie, and it was missing or expired. Nothing was \
                  changed.",
        hint: "Make sure cookies are allowed for this site, then start again from the app.",
    },
    err_csrf: ErrorWords {
        heading: "This form has expired",
        message: "The form was sent without a valid security token, so nothing was changed.",
        hint: RELOAD_EN,
    },
    err_cross: ErrorWords {
        heading: "Request blocked",
        message: "This form was sent from another website, so nothing was changed.",
        hint: AGAIN_EN,
    },
    err_not_signed_in: ErrorWords {
        heading: "You are not signed in",
        message: "The account you chose is no longer signed in on this device. Nothing was changed.",
        hint: "Go back, reload the page and sign in again.",
    },
    err_sign_up: ErrorWords {
        heading: "New accounts can't be created here",
        message: "This server does not offer sign-up here, or the app asked to sign in with a particular account. Nothing was changed.",
        hint: "Sign in with an existing account, or go back to the app.",
    },
    err_internal: ErrorWords {
        heading: "Something went wrong on our side",
        message: "The server could not complete this step.",
        hint: "Try again in a moment.",
    },
    factor: &FACTOR_EN,
    passkey: &PASSKEY_EN,
};

const AGAIN_DE: &str = "Gehen Sie zurück zur App und beginnen Sie die Anmeldung erneut.";
const RELOAD_DE: &str = "Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal.";

/// German (formal address, as sign-in pages in German use).
pub static DE: Text = Text {
    lang: Lang::De,
    link_home: "Startseite",
    link_tos: "Nutzungsbedingungen",
    link_privacy: "Datenschutz",
    link_support: "Hilfe",
    footer_label: "Über diesen Server",
    sign_in: "Anmelden",
    to_continue_to: "weiter zu",
    handle_or_email: "Handle oder E-Mail-Adresse",
    hinted_before: "Diese App möchte Sie als ",
    hinted_after: " anmelden.",
    password: "Passwort",
    password_hint: "Das Passwort Ihres Kontos. App-Passwörter können hier nicht verwendet werden.",
    remember: "Dieses Konto auf diesem Gerät merken",
    choose_signed_in: "Ein bereits angemeldetes Konto wählen",
    cancel: "Abbrechen und zur App zurückkehren",
    choose_account: "Konto wählen",
    use_another_account: "Anderes Konto verwenden",
    loopback_title: "Eine App auf diesem Gerät",
    loopback_label: "einer App auf diesem Gerät",
    loopback_badge: "Loopback-Client: läuft auf diesem Computer",
    loopback_notice: "Diese App läuft auf diesem Computer und ist nirgends registriert: Jeder kann eine \
                      App bauen, die so aussieht. Erlauben Sie sie nur, wenn Sie diese Anmeldung selbst \
                      gestartet haben.",
    verified: "Von diesem Server überprüft",
    unverified: "Nicht überprüfte App",
    allow_access: "Zugriff erlauben",
    allow_access_q: "Zugriff auf Ihr Konto erlauben?",
    wants_to_use: " möchte Ihr Konto verwenden.",
    switch: "Wechseln",
    will_be_able: "Die App kann dann",
    also_asks: "Neu: Die App möchte außerdem",
    always_included: "Immer enthalten.",
    untick_hint: "Entfernen Sie das Häkchen bei allem, was Sie nicht erlauben möchten; die App funktioniert \
                  dann eventuell nicht vollständig.",
    go_back_to: "Danach kehren Sie zurück zu",
    deny: "Ablehnen",
    allow: "Erlauben",
    your_account: "Ihr Konto",
    account_lead: "Melden Sie sich an, um die Apps und Geräte zu sehen und zu verwalten, die Ihr Konto \
                   verwenden.",
    account_password_hint: "Das Passwort Ihres Kontos. App-Passwörter können hier nicht verwendet werden. \
                            Sie bleiben auf diesem Gerät angemeldet, bis Sie sich abmelden.",
    also_signed_in: "Auf diesem Gerät ebenfalls angemeldet:",
    new_password_before: "Ihr neues App-Passwort",
    new_password_privileged: "(privilegiert)",
    new_password_after: "Kopieren Sie es jetzt: Es wird nicht noch einmal angezeigt.",
    connected_apps: "Verbundene Apps",
    no_apps: "Zurzeit kann keine App Ihr Konto verwenden.",
    loopback_app_badge: "Läuft auf einem Computer, nicht registriert",
    first_allowed: "Zuerst erlaubt am",
    last_used: "zuletzt verwendet am",
    not_signed_in_remembered: "nicht angemeldet (Erlaubnis gespeichert)",
    allowed_on: "erlaubt auf",
    what_it_can_do: "Was sie darf",
    sign_out_app: "Von dieser App abmelden",
    sign_out_app_hint: "Die Abmeldung von einer App beendet ihren Zugriff sofort und vergisst, was Sie ihr \
                        erlaubt haben: Sie muss Sie erneut fragen.",
    where_signed_in: "Wo Sie angemeldet sind",
    this_device: "Dieses Gerät",
    last_seen: "Zuletzt aktiv am",
    from: "von",
    signed_in_at: "angemeldet am",
    sign_out_this_device: "Auf diesem Gerät abmelden",
    sign_out_that_device: "Auf jenem Gerät abmelden",
    sign_out_device_hint: "Die Abmeldung von einem Gerät beendet auch den Zugriff der Apps, die Sie dort \
                           erlaubt haben.",
    sign_out_everywhere: "Überall abmelden",
    sign_out_everywhere_hint: "Beendet den Zugriff aller Apps und jede Sitzung dieses Kontos auf allen \
                               Geräten. App-Passwörter bleiben, bis Sie sie widerrufen.",
    app_passwords: "App-Passwörter",
    app_passwords_hint: "Für Apps, die sich mit einem Passwort statt über diese Seite anmelden. Jedes kann \
                         einzeln widerrufen werden.",
    no_app_passwords: "Sie haben keine App-Passwörter.",
    privileged: "Privilegiert",
    created: "Erstellt am",
    revoke: "Widerrufen",
    new_password_name: "Name des neuen App-Passworts",
    new_password_placeholder: "Meine andere App",
    privileged_check: "Privilegiert: darf auch Direktnachrichten lesen und senden",
    create_app_password: "App-Passwort erstellen",
    this_device_suffix: "(dieses Gerät)",
    unknown_browser: "Unbekannter Browser",
    notice_signed_in: "Sie sind angemeldet.",
    notice_created: "Ihr Konto ist eingerichtet, und Sie sind auf diesem Gerät angemeldet.",
    notice_app: "Von der App abgemeldet. Sie muss Sie erneut fragen, bevor sie Ihr Konto verwenden kann.",
    notice_device: "Von jenem Gerät abgemeldet, und von den Apps, die Sie dort erlaubt haben.",
    notice_revoked: "App-Passwort widerrufen. Apps, die es verwenden, sind abgemeldet.",
    app_password_name_invalid: "Geben Sie dem App-Passwort einen Namen mit 1 bis 100 Zeichen.",
    app_password_name_taken: "Sie haben bereits ein App-Passwort mit diesem Namen.",
    refuse_incomplete: "Geben Sie Ihr Handle oder Ihre E-Mail-Adresse und Ihr Passwort ein.",
    refuse_credentials: "Handle, E-Mail-Adresse oder Passwort ist falsch.",
    refuse_unavailable: "Die Anmeldung ist vorübergehend nicht möglich. Bitte versuchen Sie es in einer \
                         Minute erneut.",
    refuse_taken_down: "Dieses Konto wurde gesperrt und kann sich nicht anmelden.",
    refuse_deactivated: "Dieses Konto ist deaktiviert. Reaktivieren Sie es, bevor Sie sich bei Apps anmelden.",
    refuse_deactivated_account: "Dieses Konto ist deaktiviert. Reaktivieren Sie es, bevor Sie es hier \
                                 verwalten.",
    refuse_other_account: "Die App hat nach einem anderen Konto gefragt. Melden Sie sich mit diesem an.",
    error_code: "Fehlercode:",
    err_expired: ErrorWords {
        heading: "Dieser Anmeldelink ist abgelaufen",
        message: "Die Anmeldeanfrage der App ist abgelaufen oder wurde bereits verwendet.",
        hint: AGAIN_DE,
    },
    err_device: ErrorWords {
        heading: "Diese Anmeldung wurde in einem anderen Browser begonnen",
        message: "Zu Ihrer Sicherheit kann eine Anmeldeanfrage nur in dem Browser abgeschlossen werden, in dem \
                  sie geöffnet wurde.",
        hint: "Beginnen Sie erneut in der App in diesem Browser, und erlauben Sie Cookies für diese Seite.",
    },
    err_client: ErrorWords {
        heading: "Diese App konnte nicht überprüft werden",
        message: "Ihre Registrierung (Client-Metadaten) konnte nicht geladen werden oder ist ungültig.",
        hint: "Versuchen Sie es später erneut, oder wenden Sie sich an die Entwickler der App.",
    },
    err_account: ErrorWords {
        heading: "Konto nicht gefunden",
        message: "Das gewählte Konto existiert auf diesem Server nicht.",
        hint: AGAIN_DE,
    },
    err_hint: ErrorWords {
        heading: "Falsches Konto für diese App",
        message: "Die App hat eine Anmeldung mit einem anderen Konto angefragt.",
        hint: AGAIN_DE,
    },
    err_scope: ErrorWords {
        heading: "Diese Berechtigungen können nicht erteilt werden",
        message: "Die gesendeten Berechtigungen passen nicht zu dem, was die App angefragt hat. Ihre \
                  Identifizierung ist immer erforderlich.",
        hint: RELOAD_DE,
    },
    err_link: ErrorWords {
        heading: "Dieser Anmeldelink ist ungültig",
        message: "Der Link, der Sie hierher geführt hat, ist unvollständig oder wurde verändert.",
        hint: AGAIN_DE,
    },
    err_form: ErrorWords {
        heading: "Dieses Formular konnte nicht gelesen werden",
        message: "Einige Felder fehlten oder waren fehlerhaft, daher wurde nichts geändert.",
        hint: RELOAD_DE,
    },
    err_session: ErrorWords {
        heading: "Ihre Sitzung ist abgelaufen",
        message: "Diese Seite hält Sie mit einem Cookie angemeldet, und es fehlte oder war abgelaufen. Es \
                  wurde nichts geändert.",
        hint: "Erlauben Sie Cookies für diese Seite und beginnen Sie dann erneut in der App.",
    },
    err_csrf: ErrorWords {
        heading: "Dieses Formular ist abgelaufen",
        message: "Das Formular wurde ohne gültiges Sicherheitstoken gesendet, daher wurde nichts geändert.",
        hint: RELOAD_DE,
    },
    err_cross: ErrorWords {
        heading: "Anfrage blockiert",
        message: "Dieses Formular wurde von einer anderen Website gesendet, daher wurde nichts geändert.",
        hint: AGAIN_DE,
    },
    err_not_signed_in: ErrorWords {
        heading: "Sie sind nicht angemeldet",
        message: "Das gewählte Konto ist auf diesem Gerät nicht mehr angemeldet. Es wurde nichts geändert.",
        hint: "Gehen Sie zurück, laden Sie die Seite neu und melden Sie sich erneut an.",
    },
    err_sign_up: ErrorWords {
        heading: "Hier können keine neuen Konten erstellt werden",
        message: "Dieser Server bietet hier keine Registrierung an, oder die App hat um die Anmeldung mit einem bestimmten Konto gebeten. Es wurde nichts geändert.",
        hint: "Melden Sie sich mit einem bestehenden Konto an, oder gehen Sie zurück zur App.",
    },
    err_internal: ErrorWords {
        heading: "Bei uns ist etwas schiefgelaufen",
        message: "Der Server konnte diesen Schritt nicht abschließen.",
        hint: "Versuchen Sie es gleich noch einmal.",
    },
    factor: &FACTOR_DE,
    passkey: &PASSKEY_DE,
};

// ------------------------------------------------------------------ permissions in plain words ---
// The words of [`super::scopes`], kept apart from the page chrome above: one [`ScopeText`] per
// language, the record types people know by name in [`CollectionWords`].

impl Lang {
    /// The permission descriptions' words in this language ([`super::scopes`]).
    pub fn scope_text(self) -> &'static ScopeText {
        match self {
            Self::En => &SCOPES_EN,
            Self::De => &SCOPES_DE,
        }
    }

    /// The sign-up page's words in this language.
    pub fn sign_up_text(self) -> &'static SignUpText {
        match self {
            Self::En => &SIGN_UP_EN,
            Self::De => &SIGN_UP_DE,
        }
    }
}

impl Text {
    /// The sign-up page's words in this language (the sign-in pages link to it).
    pub fn sign_up(&self) -> &'static SignUpText {
        self.lang.sign_up_text()
    }
}

/// A title and its sentence of detail.
#[derive(Debug, Clone, Copy)]
pub struct TitleDetail {
    /// What it allows, in a few words.
    pub title: &'static str,
    /// One sentence of detail.
    pub detail: &'static str,
}

/// The Bluesky record types named in words (others are named from their NSID).
#[derive(Debug)]
pub struct CollectionWords {
    /// `app.bsky.feed.post`.
    pub post: &'static str,
    /// `app.bsky.feed.like`.
    pub like: &'static str,
    /// `app.bsky.feed.repost`.
    pub repost: &'static str,
    /// `app.bsky.feed.threadgate`.
    pub threadgate: &'static str,
    /// `app.bsky.feed.postgate`.
    pub postgate: &'static str,
    /// `app.bsky.feed.generator`.
    pub generator: &'static str,
    /// `app.bsky.graph.follow`.
    pub follow: &'static str,
    /// `app.bsky.graph.block`.
    pub block: &'static str,
    /// `app.bsky.graph.list`.
    pub list: &'static str,
    /// `app.bsky.graph.listitem`.
    pub listitem: &'static str,
    /// `app.bsky.graph.starterpack`.
    pub starterpack: &'static str,
    /// `app.bsky.actor.profile`.
    pub profile: &'static str,
}

/// Every word of the permission descriptions ([`super::scopes`]) in one language. Phrases built
/// around names (record types, services, MIME types) are methods.
#[derive(Debug)]
pub struct ScopeText {
    /// This language.
    pub lang: Lang,
    /// "and" in a list.
    pub and: &'static str,
    /// A scope this server does not describe.
    pub unknown: TitleDetail,
    /// `atproto`.
    pub atproto: TitleDetail,
    /// `transition:generic`.
    pub generic: TitleDetail,
    /// `transition:chat.bsky`.
    pub chat: TitleDetail,
    /// `transition:email` and `account:email`.
    pub email_read: TitleDetail,
    /// `account:email?action=manage`.
    pub email_manage: TitleDetail,
    /// `account:repo`.
    pub repo_read: TitleDetail,
    /// `account:repo?action=manage`.
    pub repo_manage: TitleDetail,
    /// `account:status`.
    pub status_read: TitleDetail,
    /// `account:status?action=manage`.
    pub status_manage: TitleDetail,
    /// `identity:handle`.
    pub identity_handle: TitleDetail,
    /// `identity:*`.
    pub identity_any: TitleDetail,
    /// Detail of an unresolved `include:`.
    pub include_detail: &'static str,
    /// Detail of a `repo` permission for records of any type.
    pub repo_any_detail: &'static str,
    /// Detail of a `repo` permission for named types.
    pub repo_named_detail: &'static str,
    /// The verb of `action=create`.
    pub create: &'static str,
    /// The verb of `action=update`.
    pub update: &'static str,
    /// The verb of `action=delete`.
    pub delete: &'static str,
    /// Records of every type.
    pub any_records: &'static str,
    /// The record types known by name.
    pub collections: CollectionWords,
    /// `rpc` at any service: the service's name in a title.
    pub any_service: &'static str,
    /// `rpc` with any method: the methods in a title.
    pub any_request: &'static str,
    /// The Bluesky app view by name.
    pub bsky_appview: &'static str,
    /// Bluesky chat by name.
    pub bsky_chat: &'static str,
    /// Before what a resolved permission set grants.
    pub it_allows: &'static str,
}

impl ScopeText {
    /// `a`, `a and b`, `a, b and c`.
    pub fn and_list<S: AsRef<str>>(&self, items: &[S]) -> String {
        match items {
            [] => String::new(),
            [one] => one.as_ref().to_owned(),
            [init @ .., last] => {
                let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
                format!("{} {} {}", init.join(", "), self.and, last.as_ref())
            }
        }
    }

    /// The title of a `repo` permission: what may be done (`verbs`, already a list) to which records.
    pub fn repo_title(&self, verbs: &str, records: &str) -> String {
        match self.lang {
            Lang::En => format!("{} {records}", capitalized(verbs)),
            Lang::De => format!("{} {verbs}", capitalized(records)),
        }
    }

    /// Records of a type people do not know by name, named from its NSID (`recipe card`).
    pub fn records_named(&self, words: &str) -> String {
        match self.lang {
            Lang::En => format!("{words} records"),
            Lang::De => format!("Datensätze vom Typ „{words}“"),
        }
    }

    /// A `repo` title inside a sentence (what a permission set grants).
    pub fn in_sentence(&self, title: String) -> String {
        match self.lang {
            // The title starts with its verb, lowercased inside the sentence.
            Lang::En => match title.get(..1) {
                Some(first) => first.to_lowercase() + &title[1..],
                None => title,
            },
            // It starts with a noun, which stays capitalised.
            Lang::De => title,
        }
    }

    /// A service by name, as the detail of an `rpc` permission names it: `name` (`None` when only
    /// the DID names it) and `full`, the DID with its fragment.
    pub fn service(&self, name: Option<&str>, full: &str) -> String {
        match (self.lang, name) {
            (Lang::En, Some(n)) if n.starts_with("Bluesky") => format!("the {n} ({full})"),
            (Lang::En, Some(n)) => format!("{n} ({full})"),
            (Lang::En, None) => full.to_owned(),
            (Lang::De, Some(n)) => format!("den Dienst {n} ({full})"),
            (Lang::De, None) => format!("den Dienst {full}"),
        }
    }

    /// Any service, as the detail of an `rpc` permission names it.
    pub fn any_service_detail(&self) -> &'static str {
        match self.lang {
            Lang::En => "any service, not only the ones you know",
            Lang::De => "jeden beliebigen Dienst (auch solche, die Sie nicht kennen)",
        }
    }

    /// The detail of an `rpc` permission: requests to `service` ([`Self::service`]), of any kind
    /// when `any_method`.
    pub fn rpc_detail(&self, service: &str, any_method: bool) -> String {
        match (self.lang, any_method) {
            (Lang::En, false) => format!("Requests the app makes in your name to {service}."),
            (Lang::En, true) => format!("Any request the app makes in your name to {service}, of any kind."),
            (Lang::De, false) => format!("Anfragen, die die App in Ihrem Namen an {service} stellt."),
            (Lang::De, true) => {
                format!("Beliebige Anfragen jeder Art, die die App in Ihrem Namen an {service} stellt.")
            }
        }
    }

    /// Whole MIME families in words (`image/*` → images), `None` for anything else.
    pub fn media_family(&self, mime: &str) -> Option<&'static str> {
        Some(match (self.lang, mime) {
            (Lang::En, "image/*") => "images",
            (Lang::En, "video/*") => "videos",
            (Lang::En, "audio/*") => "audio",
            (Lang::En, "text/*") => "text files",
            (Lang::De, "image/*") => "Bilder",
            (Lang::De, "video/*") => "Videos",
            (Lang::De, "audio/*") => "Audiodateien",
            (Lang::De, "text/*") => "Textdateien",
            _ => return None,
        })
    }

    /// The title of a `blob` permission: `Some(families)` in words, or `None` for files in general;
    /// `any` for `*/*`.
    pub fn upload(&self, families: Option<&str>, any: bool) -> String {
        match (self.lang, families, any) {
            (Lang::En, _, true) => "Upload files of any type".to_owned(),
            (Lang::En, Some(f), false) => format!("Upload {f}"),
            (Lang::En, None, false) => "Upload files".to_owned(),
            (Lang::De, _, true) => "Dateien jeder Art hochladen".to_owned(),
            (Lang::De, Some(f), false) => format!("{f} hochladen"),
            (Lang::De, None, false) => "Dateien hochladen".to_owned(),
        }
    }

    /// The detail of a `blob` permission for these MIME `types`.
    pub fn upload_detail(&self, types: &str) -> String {
        match self.lang {
            Lang::En => format!("Files kept in your account for the app to use in records: {types}."),
            Lang::De => format!(
                "Dateien, die in Ihrem Konto gespeichert werden, damit die App sie in Datensätzen verwenden \
                 kann: {types}."
            ),
        }
    }

    /// The title of an `include:` permission set known only by its NSID.
    pub fn permissions_of(&self, nsid: &str) -> String {
        match self.lang {
            Lang::En => format!("Permissions of “{nsid}”"),
            Lang::De => format!("Berechtigungen von „{nsid}“"),
        }
    }
}

/// `s` with its first character in upper case.
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// English permissions.
pub static SCOPES_EN: ScopeText = ScopeText {
    lang: Lang::En,
    and: "and",
    unknown: TitleDetail {
        title: "Another permission",
        detail: "A permission this server does not describe.",
    },
    atproto: TitleDetail {
        title: "Know who you are",
        detail: "See your account's identifier (DID) and handle. Every app that signs you in needs this.",
    },
    generic: TitleDetail {
        title: "Read and change your account data",
        detail: "Post, like, follow and edit or delete your records, upload images and videos, change \
                 preferences, and call other services for you. Not your direct messages, your email \
                 address or account settings such as your password and handle.",
    },
    chat: TitleDetail {
        title: "Read and send your direct messages",
        detail: "Use Bluesky chat on your behalf.",
    },
    email_read: TitleDetail {
        title: "See your email address",
        detail: "Your email address and whether it is confirmed.",
    },
    email_manage: TitleDetail {
        title: "Change your email address",
        detail: "Read and update the email address of your account.",
    },
    repo_read: TitleDetail {
        title: "See your repository's status",
        detail: "Whether your repository is ready and how large it is.",
    },
    repo_manage: TitleDetail {
        title: "Replace your repository",
        detail: "Import a whole repository into your account, as when moving from another server.",
    },
    status_read: TitleDetail {
        title: "See your account's status",
        detail: "Whether your account is active or deactivated.",
    },
    status_manage: TitleDetail {
        title: "Deactivate or reactivate your account",
        detail: "Change whether your account is active.",
    },
    identity_handle: TitleDetail {
        title: "Change your handle",
        detail: "Set a new handle for your account.",
    },
    identity_any: TitleDetail {
        title: "Control your identity",
        detail: "Change your handle and your DID document: full control over who your account is and where \
                 it is hosted.",
    },
    include_detail: "A named set of permissions published by the app's developer.",
    repo_any_detail: "Any record in your repository, where your posts, likes, follows and profile are kept in \
                      public.",
    repo_named_detail: "These records are public and kept in your repository.",
    create: "create",
    update: "update",
    delete: "delete",
    any_records: "records of any type",
    collections: CollectionWords {
        post: "Bluesky posts",
        like: "Bluesky likes",
        repost: "Bluesky reposts",
        threadgate: "who may reply to your Bluesky posts",
        postgate: "who may quote your Bluesky posts",
        generator: "Bluesky custom feeds",
        follow: "Bluesky follows",
        block: "Bluesky blocks",
        list: "Bluesky lists",
        listitem: "Bluesky list members",
        starterpack: "Bluesky starter packs",
        profile: "your Bluesky profile",
    },
    any_service: "Any service",
    any_request: "any request",
    bsky_appview: "Bluesky app view",
    bsky_chat: "Bluesky chat",
    it_allows: "It allows: ",
};

/// German permissions (formal address, like the pages).
pub static SCOPES_DE: ScopeText = ScopeText {
    lang: Lang::De,
    and: "und",
    unknown: TitleDetail {
        title: "Eine andere Berechtigung",
        detail: "Eine Berechtigung, die dieser Server nicht beschreibt.",
    },
    atproto: TitleDetail {
        title: "Wissen, wer Sie sind",
        detail: "Die Kennung (DID) und das Handle Ihres Kontos sehen. Jede App, die Sie anmeldet, braucht das.",
    },
    generic: TitleDetail {
        title: "Ihre Kontodaten lesen und ändern",
        detail: "Beiträge verfassen, liken, folgen und Ihre Datensätze bearbeiten oder löschen, Bilder und \
                 Videos hochladen, Einstellungen ändern und andere Dienste für Sie aufrufen. Nicht Ihre \
                 Direktnachrichten, Ihre E-Mail-Adresse oder Kontoeinstellungen wie Passwort und Handle.",
    },
    chat: TitleDetail {
        title: "Ihre Direktnachrichten lesen und senden",
        detail: "Den Bluesky-Chat in Ihrem Namen verwenden.",
    },
    email_read: TitleDetail {
        title: "Ihre E-Mail-Adresse sehen",
        detail: "Ihre E-Mail-Adresse und ob sie bestätigt ist.",
    },
    email_manage: TitleDetail {
        title: "Ihre E-Mail-Adresse ändern",
        detail: "Die E-Mail-Adresse Ihres Kontos lesen und ändern.",
    },
    repo_read: TitleDetail {
        title: "Den Status Ihres Repositorys sehen",
        detail: "Ob Ihr Repository bereit ist und wie groß es ist.",
    },
    repo_manage: TitleDetail {
        title: "Ihr Repository ersetzen",
        detail: "Ein ganzes Repository in Ihr Konto importieren, etwa beim Umzug von einem anderen Server.",
    },
    status_read: TitleDetail {
        title: "Den Status Ihres Kontos sehen",
        detail: "Ob Ihr Konto aktiv oder deaktiviert ist.",
    },
    status_manage: TitleDetail {
        title: "Ihr Konto deaktivieren oder reaktivieren",
        detail: "Ändern, ob Ihr Konto aktiv ist.",
    },
    identity_handle: TitleDetail {
        title: "Ihr Handle ändern",
        detail: "Ein neues Handle für Ihr Konto festlegen.",
    },
    identity_any: TitleDetail {
        title: "Ihre Identität kontrollieren",
        detail: "Ihr Handle und Ihr DID-Dokument ändern: volle Kontrolle darüber, wer Ihr Konto ist und wo es \
                 gehostet wird.",
    },
    include_detail: "Eine benannte Gruppe von Berechtigungen, veröffentlicht von den Entwicklern der App.",
    repo_any_detail: "Jeder Datensatz in Ihrem Repository, in dem Ihre Beiträge, Likes, Follows und Ihr Profil \
                      öffentlich gespeichert sind.",
    repo_named_detail: "Diese Datensätze sind öffentlich und werden in Ihrem Repository gespeichert.",
    create: "erstellen",
    update: "ändern",
    delete: "löschen",
    any_records: "Datensätze jeder Art",
    collections: CollectionWords {
        post: "Bluesky-Beiträge",
        like: "Bluesky-Likes",
        repost: "Bluesky-Reposts",
        threadgate: "Antwortregeln Ihrer Bluesky-Beiträge",
        postgate: "Zitierregeln Ihrer Bluesky-Beiträge",
        generator: "eigene Bluesky-Feeds",
        follow: "Bluesky-Follows",
        block: "Bluesky-Blockierungen",
        list: "Bluesky-Listen",
        listitem: "Mitglieder von Bluesky-Listen",
        starterpack: "Bluesky-Starterpakete",
        profile: "Ihr Bluesky-Profil",
    },
    any_service: "Jeder Dienst",
    any_request: "beliebige Anfragen",
    bsky_appview: "Bluesky-App-View",
    bsky_chat: "Bluesky-Chat",
    it_allows: "Sie erlaubt: ",
};

// ------------------------------------------------------------------------------- sign-up page ---
// The sign-up form and its refusals (docs/SIGN-UP.md), kept apart from the page chrome above: one
// [`SignUpText`] per language.

/// Every word of the sign-up form and its refusals in one language. Messages with a value are
/// methods.
#[derive(Debug)]
pub struct SignUpText {
    /// This language.
    pub lang: Lang,
    /// Heading, title and the sign-in pages' link.
    pub create_account: &'static str,
    /// Before the sign-in pages' link.
    pub new_here: &'static str,
    /// The page on its own: before the server's name.
    pub on_before: &'static str,
    /// The page on its own: after the server's name.
    pub on_after: &'static str,
    /// Handle field label.
    pub handle: &'static str,
    /// Label of the handle domain list.
    pub handle_domain: &'static str,
    /// Handle hint, before the example.
    pub handle_hint_before: &'static str,
    /// Handle hint, after the example.
    pub handle_hint_after: &'static str,
    /// Email field label.
    pub email: &'static str,
    /// Email placeholder.
    pub email_placeholder: &'static str,
    /// The password rules under the field.
    pub password_rules: [&'static str; 3],
    /// Invite code field label.
    pub invite_code: &'static str,
    /// After an optional field's label.
    pub optional: &'static str,
    /// Under the invite code of an invite-only server.
    pub invite_hint: &'static str,
    /// The submit button.
    pub submit: &'static str,
    /// Before the link to the sign-in page.
    pub have_account: &'static str,

    // Refusals.
    /// No handle.
    pub choose_handle: &'static str,
    /// Invalid handle syntax.
    pub handle_invalid: &'static str,
    /// The name part's length.
    pub handle_name_length: &'static str,
    /// Handle taken.
    pub handle_taken: &'static str,
    /// No email.
    pub email_required: &'static str,
    /// Malformed email.
    pub email_invalid: &'static str,
    /// Email taken.
    pub email_taken: &'static str,
    /// Password out of bounds.
    pub password_invalid: &'static str,
    /// Password shorter than 8 characters.
    pub weak_too_short: &'static str,
    /// Password longer than 256 characters.
    pub weak_too_long: &'static str,
    /// Fewer than 5 different characters.
    pub weak_repetitive: &'static str,
    /// A run of consecutive characters.
    pub weak_sequence: &'static str,
    /// A common password.
    pub weak_common: &'static str,
    /// Contains the handle or email.
    pub weak_identity: &'static str,
    /// Invite-only server, no code.
    pub invite_required: &'static str,
    /// Unknown code.
    pub invite_unknown: &'static str,
    /// Code used up.
    pub invite_used: &'static str,
    /// Code disabled.
    pub invite_disabled: &'static str,
    /// The limit store is down.
    pub unavailable: &'static str,
    /// The PLC directory refused.
    pub plc_failed: &'static str,
}

impl SignUpText {
    /// A handle under none of the server's `domains`.
    pub fn unsupported_domain(&self, domains: &[String]) -> String {
        match self.lang {
            Lang::En => format!("Handles on this server end with {}.", domains.join(" or ")),
            Lang::De => format!("Handles auf diesem Server enden auf {}.", domains.join(" oder ")),
        }
    }

    /// Too many sign-ups from the address; try again in `minutes`.
    pub fn rate_limited(&self, minutes: u64) -> String {
        match (self.lang, minutes) {
            (Lang::En, 1) => "Too many sign-up attempts from your network. Try again in 1 minute.".to_owned(),
            (Lang::En, n) => {
                format!("Too many sign-up attempts from your network. Try again in {n} minutes.")
            }
            (Lang::De, 1) => {
                "Zu viele Registrierungsversuche aus Ihrem Netzwerk. Versuchen Sie es in 1 Minute erneut."
                    .to_owned()
            }
            (Lang::De, n) => {
                format!(
                    "Zu viele Registrierungsversuche aus Ihrem Netzwerk. Versuchen Sie es in {n} Minuten erneut."
                )
            }
        }
    }

    /// The message of a refused password.
    pub fn weak_password(&self, w: crate::signup::WeakPassword) -> &'static str {
        use crate::signup::WeakPassword as W;
        match w {
            W::TooShort => self.weak_too_short,
            W::TooLong => self.weak_too_long,
            W::TooRepetitive => self.weak_repetitive,
            W::Sequence => self.weak_sequence,
            W::Common => self.weak_common,
            W::ContainsIdentity => self.weak_identity,
        }
    }
}

/// The English sign-up form.
pub static SIGN_UP_EN: SignUpText = SignUpText {
    lang: Lang::En,
    create_account: "Create an account",
    new_here: "New here?",
    on_before: "on",
    on_after: ". You can then sign in to apps with it.",
    handle: "Handle",
    handle_domain: "Handle domain",
    handle_hint_before: "Your name on the network, for example",
    handle_hint_after: ": 3 to 18 letters, digits or hyphens.",
    email: "Email",
    email_placeholder: "you@example.com",
    password_rules: [
        "At least 8 characters, at least 5 of them different",
        "Not a common password or a sequence like 12345678",
        "Not containing your handle or email",
    ],
    invite_code: "Invite code",
    optional: "(optional)",
    invite_hint: "This server is invite-only. Ask its operator for a code.",
    submit: "Create account",
    have_account: "Already have an account?",
    choose_handle: "Choose a handle.",
    handle_invalid: "This handle is not valid. Use letters, digits and hyphens, not starting or ending with a \
                     hyphen.",
    handle_name_length: "The name in your handle must be 3 to 18 characters, without dots.",
    handle_taken: "This handle is already taken. Try another one.",
    email_required: "Enter your email address.",
    email_invalid: "Enter a valid email address, like name@example.com.",
    email_taken: "This email address is already used by another account. Sign in with it instead.",
    password_invalid: "Enter a password of 8 to 256 characters.",
    weak_too_short: "Use at least 8 characters for your password.",
    weak_too_long: "Use at most 256 characters for your password.",
    weak_repetitive: "Use at least 5 different characters in your password.",
    weak_sequence: "Your password is a simple sequence. Choose something harder to guess.",
    weak_common: "This password is one of the most common ones. Choose something harder to guess.",
    weak_identity: "Do not use your handle or email address in your password.",
    invite_required: "This server is invite-only. Enter your invite code.",
    invite_unknown: "This invite code is not valid. Check it and try again.",
    invite_used: "This invite code has already been used.",
    invite_disabled: "This invite code is no longer valid.",
    unavailable: "Sign-up is temporarily unavailable. Please try again in a minute.",
    plc_failed: "Your account's identity (DID) could not be registered right now, so no account was created. \
                 Please try again in a minute.",
};

/// The German sign-up form.
pub static SIGN_UP_DE: SignUpText = SignUpText {
    lang: Lang::De,
    create_account: "Konto erstellen",
    new_here: "Neu hier?",
    on_before: "bei",
    on_after: ". Damit können Sie sich dann bei Apps anmelden.",
    handle: "Handle",
    handle_domain: "Domain des Handles",
    handle_hint_before: "Ihr Name im Netzwerk, zum Beispiel",
    handle_hint_after: ": 3 bis 18 Buchstaben, Ziffern oder Bindestriche.",
    email: "E-Mail-Adresse",
    email_placeholder: "sie@example.com",
    password_rules: [
        "Mindestens 8 Zeichen, davon mindestens 5 verschiedene",
        "Kein häufiges Passwort und keine Folge wie 12345678",
        "Ohne Ihr Handle oder Ihre E-Mail-Adresse",
    ],
    invite_code: "Einladungscode",
    optional: "(optional)",
    invite_hint: "Dieser Server ist nur mit Einladung nutzbar. Fragen Sie den Betreiber nach einem Code.",
    submit: "Konto erstellen",
    have_account: "Sie haben schon ein Konto?",
    choose_handle: "Wählen Sie ein Handle.",
    handle_invalid: "Dieses Handle ist ungültig. Verwenden Sie Buchstaben, Ziffern und Bindestriche, aber \
                     keinen Bindestrich am Anfang oder Ende.",
    handle_name_length: "Der Name in Ihrem Handle muss 3 bis 18 Zeichen lang sein, ohne Punkte.",
    handle_taken: "Dieses Handle ist bereits vergeben. Versuchen Sie ein anderes.",
    email_required: "Geben Sie Ihre E-Mail-Adresse ein.",
    email_invalid: "Geben Sie eine gültige E-Mail-Adresse ein, etwa name@example.com.",
    email_taken: "Diese E-Mail-Adresse wird bereits von einem anderen Konto verwendet. Melden Sie sich \
                  stattdessen damit an.",
    password_invalid: "Geben Sie ein Passwort mit 8 bis 256 Zeichen ein.",
    weak_too_short: "Verwenden Sie mindestens 8 Zeichen für Ihr Passwort.",
    weak_too_long: "Verwenden Sie höchstens 256 Zeichen für Ihr Passwort.",
    weak_repetitive: "Verwenden Sie mindestens 5 verschiedene Zeichen in Ihrem Passwort.",
    weak_sequence: "Ihr Passwort ist eine einfache Zeichenfolge. Wählen Sie etwas, das schwerer zu erraten ist.",
    weak_common: "Dieses Passwort gehört zu den häufigsten. Wählen Sie etwas, das schwerer zu erraten ist.",
    weak_identity: "Verwenden Sie Ihr Handle oder Ihre E-Mail-Adresse nicht in Ihrem Passwort.",
    invite_required: "Dieser Server ist nur mit Einladung nutzbar. Geben Sie Ihren Einladungscode ein.",
    invite_unknown: "Dieser Einladungscode ist ungültig. Prüfen Sie ihn und versuchen Sie es erneut.",
    invite_used: "Dieser Einladungscode wurde bereits verwendet.",
    invite_disabled: "Dieser Einladungscode ist nicht mehr gültig.",
    unavailable: "Die Registrierung ist vorübergehend nicht möglich. Bitte versuchen Sie es in einer Minute \
                  erneut.",
    plc_failed: "Die Identität Ihres Kontos (DID) konnte gerade nicht registriert werden, daher wurde kein \
                 Konto erstellt. Bitte versuchen Sie es in einer Minute erneut.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_rfc_9110_weights() {
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(Lang::negotiate(Some("de-CH, en;q=0.5")), Lang::De);
        assert_eq!(Lang::negotiate(Some("en-GB,en;q=0.9,de;q=0.8")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr-FR, de;q=0.3, en;q=0.2")), Lang::De);
        assert_eq!(Lang::negotiate(Some("fr, ja")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de;q=0, en;q=0.1")), Lang::En);
        assert_eq!(Lang::negotiate(Some("de;q=0")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en;q=0, *")), Lang::De);
        assert_eq!(Lang::negotiate(Some("DE")), Lang::De);
        assert_eq!(Lang::negotiate(Some("de;q=1.5")), Lang::En, "an invalid weight is no preference");
        assert_eq!(Lang::negotiate(Some("en;q=0.5, de;q=0.5")), Lang::En, "ties go to the earlier");
        assert_eq!(Lang::negotiate(Some("de ; q=0.500, en;q=0.499")), Lang::De);
        assert_eq!(Lang::negotiate(Some("deutsch")), Lang::En, "primary subtags match whole");
        assert_eq!(Lang::negotiate(Some(",,;")), Lang::En);
    }

    #[test]
    fn qvalues_parse_as_the_grammar_says() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.8"), Some(800));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("1.1"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("-1"), None);
    }
}
