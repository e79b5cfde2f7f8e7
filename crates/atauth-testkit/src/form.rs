//! `application/x-www-form-urlencoded` as tests write it (request bodies, parameter lists with one
//! value changed) and read it (the query of a redirect `Location`), and the hidden inputs of an
//! HTML form.

/// Encodes `pairs` as a form body or query string.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The query parameters of a redirect target (`Location`), in order; empty without a query.
pub fn redirect_params(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The first value of `key` in decoded parameters.
pub fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// `params` with `key` replaced by `value` (appended last), or removed with `None`.
pub fn with_param(
    params: &[(&'static str, String)],
    key: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut out: Vec<_> = params.iter().filter(|(k, _)| *k != key).cloned().collect();
    if let Some(v) = value {
        out.push((key, v.to_owned()));
    }
    out
}

/// The value of the first `<input … name="NAME" value="…">` in `html`, with `&` entities decoded.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let rest = html.split_once(&marker)?.1;
    Some(rest.split_once('"')?.0.replace("&#38;", "&").replace("&amp;", "&"))
}
