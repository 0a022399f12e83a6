//! CSRF tokens (signed double submit) and constant-time secret comparison.
//!
//! A random nonce lives in an `HttpOnly`, `SameSite=Strict` cookie; the form
//! token is an HMAC of that nonce under a per-process key, so a sibling site
//! that can plant cookies still cannot produce a matching token.

use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Name of the CSRF nonce cookie.
const CSRF_COOKIE: &str = "spool_csrf";

/// The per-process secret the CSRF tokens are signed with.
pub(crate) struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub(crate) fn random() -> Self {
        Self(rand::random())
    }

    pub(crate) fn token(&self, nonce: &str) -> String {
        // HMAC-SHA256 takes a key of any length: `new_from_slice` cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes a key of any length")
        };
        mac.update(nonce.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Constant-time equality of two secrets of any length (both hashed first,
/// so neither content nor length leaks through timing).
pub(crate) fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.ct_eq(&hb).into()
}

/// The request's nonce, or a fresh one (`true`) when it has none or a
/// malformed one.
pub(crate) fn nonce(headers: &HeaderMap) -> (String, bool) {
    let jar = CookieJar::from_headers(headers);
    match jar.get(CSRF_COOKIE).map(Cookie::value) {
        Some(n) if n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (n.to_owned(), false)
        }
        _ => (hex::encode(rand::random::<[u8; 16]>()), true),
    }
}

/// The `Set-Cookie` value that plants a fresh nonce.
pub(crate) fn set_cookie(nonce: String, path: String, secure: bool) -> String {
    Cookie::build((CSRF_COOKIE, nonce))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_content() {
        assert!(secret_eq(b"abc", b"abc"));
        assert!(!secret_eq(b"abc", b"abd"));
        assert!(!secret_eq(b"abc", b"abcd"));
    }

    #[test]
    fn tokens_depend_on_key_and_nonce() {
        let k = CsrfKey::random();
        assert_eq!(k.token("a"), k.token("a"));
        assert_ne!(k.token("a"), k.token("b"));
        assert_ne!(k.token("a"), CsrfKey::random().token("a"));
    }

    #[test]
    fn cookie_is_http_only_and_strict() {
        let c = set_cookie("ab".into(), "/x".into(), true);
        for part in [
            "spool_csrf=ab",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/x",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
    }
}
