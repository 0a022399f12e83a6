//! Redaction of credentials in connection URLs, for anything that logs or
//! prints a URL (dashboard, CLI, worker): `redis://user:secret@host` →
//! `redis://user:***@host`.

/// Replaces the password of a URL's user-info with `***` (the whole
/// user-info when it has no `:`, since some clients take a lone user-info as
/// the password). Works on strings that do not parse as URLs too: anything
/// between the scheme (or the start) and the last `@` before the host part
/// is treated as user-info. A string without `@` comes back unchanged.
///
/// ```
/// use spool_client::redact_url;
/// assert_eq!(redact_url("redis://:s3cret@db:6379/0"), "redis://:***@db:6379/0");
/// assert_eq!(redact_url("rediss://ops:s3cret@db"), "rediss://ops:***@db");
/// assert_eq!(redact_url("redis://s3cret@db"), "redis://***@db");
/// assert_eq!(redact_url("redis://db:6379"), "redis://db:6379");
/// assert_eq!(redact_url("not a url :s3cret@x"), "***@x");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
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
        ] {
            assert_eq!(redact_url(url), want, "{url}");
            assert!(!redact_url(url).contains("pw"));
        }
    }
}
