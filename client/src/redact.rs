//! Redaction of credentials in connection URLs, for anything that logs or
//! prints a URL (dashboard, CLI, worker): `redis://user:secret@host` →
//! `redis://user:***@host`.

/// Replaces the password of a URL's user-info with `***` (the whole
/// user-info when it has no `:`, since some clients take a lone user-info as
/// the password), and the value of every query option whose name ends in
/// `password` (`?sentinel_password=…`). Works on strings that do not parse
/// as URLs too: anything between the scheme (or the start) and the last `@`
/// before the host part is treated as user-info. A string with neither
/// comes back unchanged.
///
/// ```
/// use spool_client::redact_url;
/// assert_eq!(redact_url("redis://:s3cret@db:6379/0"), "redis://:***@db:6379/0");
/// assert_eq!(redact_url("rediss://ops:s3cret@db"), "rediss://ops:***@db");
/// assert_eq!(redact_url("redis://s3cret@db"), "redis://***@db");
/// assert_eq!(redact_url("redis://db:6379"), "redis://db:6379");
/// assert_eq!(redact_url("not a url :s3cret@x"), "***@x");
/// assert_eq!(
///     redact_url("redis+sentinel://:a@h:1/m?sentinel_password=p@ss&x=1"),
///     "redis+sentinel://:***@h:1/m?sentinel_password=***&x=1"
/// );
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    redact_userinfo(&redact_query(url))
}

/// Hides the values of `…password=` query options (first, so that an `@`
/// in such a value is not taken for the end of the user-info).
fn redact_query(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(sep) = rest.find(['?', '&']) {
        out.push_str(&rest[..=sep]);
        rest = &rest[sep + 1..];
        let end = rest.find(['&', '#']).unwrap_or(rest.len());
        match rest[..end].split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().ends_with("password") => {
                out.push_str(key);
                out.push_str("=***");
                rest = &rest[end..];
            }
            _ => {}
        }
    }
    out.push_str(rest);
    out
}

fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    // The authority ends at the first '/', '?' or '#' after the last '@'
    // that precedes it; a password may itself contain '/', so look for the
    // last '@' first.
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let redacted = match userinfo.split_once(':') {
        Some((user, _)) if start > 0 && !user.contains(['/', ' ']) => format!("{user}:***"),
        _ => "***".to_owned(),
    };
    format!("{}{redacted}{}", &url[..start], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_with_odd_characters_are_hidden() {
        for (url, want) in [
            ("redis://:p@ss/w?rd#@h:1/2", "redis://:***@h:1/2"),
            ("redis://u:@h", "redis://u:***@h"),
            ("unix://:pw@/tmp/sock", "unix://:***@/tmp/sock"),
            ("", ""),
            (
                "rediss+sentinel://u:pw@h:1,h:2/m/0?sentinel_username=s&sentinel_password=pw",
                "rediss+sentinel://u:***@h:1,h:2/m/0?sentinel_username=s&sentinel_password=***",
            ),
            (
                "redis+sentinel://h/m?sentinel_password=pw#x",
                "redis+sentinel://h/m?sentinel_password=***#x",
            ),
            (
                "redis+sentinel://h/m?SENTINEL_PASSWORD=pw@h",
                "redis+sentinel://h/m?SENTINEL_PASSWORD=***",
            ),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
            assert!(!redact_url(url).contains("pw"));
        }
    }
}
