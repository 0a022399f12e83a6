//! The middleware every dashboard request passes, in this order:
//!
//! 1. **Authentication** (when configured): HTTP basic or a bearer token,
//!    compared in constant time (both sides are hashed first, so neither
//!    content nor length leaks through timing). Failure → 401.
//! 2. **CSRF cookie**: a random nonce in an `HttpOnly`, `SameSite=Strict`
//!    cookie; the form token is an HMAC of that nonce under a per-process key
//!    (signed double submit), so a sibling site that can plant cookies still
//!    cannot produce a matching token.
//! 3. **POST gate**: every state change is a POST (GET and HEAD only read);
//!    a POST is refused with 403 in read-only mode, unless it is same-origin
//!    (`Sec-Fetch-Site: same-origin`, or an `Origin` equal to the Host or an
//!    allowed origin), and unless it carries the CSRF token (form field
//!    `csrf` or header `X-CSRF-Token`). The body is buffered (at most
//!    [`POST_BODY_MAX`]) to read the field, then handed on unchanged.
//! 4. **Response headers** on everything, errors included: a CSP without
//!    `unsafe-inline` and with `frame-ancestors 'none'`, `nosniff`,
//!    `X-Frame-Options`, `Referrer-Policy`, `Cache-Control: no-store`.
//!
//! It also works out the base path links are built from (the `Router::nest`
//! prefix, or [`DashboardConfig::base_path`](crate::DashboardConfig)).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{NestedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::routes::Shared;

/// Largest POST body accepted (a bulk form with 500 selected ids is ~25 KiB).
pub(crate) const POST_BODY_MAX: usize = 256 * 1024;
/// Name of the CSRF nonce cookie.
const CSRF_COOKIE: &str = "spool_csrf";
/// The Content-Security-Policy of every response: only our own script and
/// stylesheet, no inline code, no framing, forms post only to us.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Per-request facts the pages need, inserted by [`guard`].
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Prefix of every link, without trailing slash ("" at the root).
    pub(crate) base: String,
    /// The CSRF token forms carry.
    pub(crate) csrf: String,
    /// Whether actions are hidden and refused.
    pub(crate) read_only: bool,
}

/// The per-process secret the CSRF tokens are signed with.
pub(crate) struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub(crate) fn random() -> Self {
        Self(rand::random())
    }

    fn token(&self, nonce: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(nonce.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Constant-time equality of two secrets of any length.
pub(crate) fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let (ha, hb) = (Sha256::digest(a), Sha256::digest(b));
    ha.ct_eq(&hb).into()
}

/// The middleware; see the module docs for the order of checks.
pub(crate) async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let mut resp = guarded(&shared, req, next).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn guarded(shared: &Shared, req: Request, next: Next) -> Response {
    let config = &shared.config;
    if config.auth.is_enabled() && !authorized(req.headers(), &config.auth) {
        let challenge = if config.auth.basic.is_some() {
            "Basic realm=\"Spool\", charset=\"UTF-8\""
        } else {
            "Bearer realm=\"Spool\""
        };
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            "authentication required",
        )
            .into_response();
    }

    let base = config
        .base_path
        .clone()
        .or_else(|| {
            req.extensions()
                .get::<NestedPath>()
                .map(|p| p.as_str().to_owned())
        })
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();

    let (nonce, fresh) = match cookie(req.headers(), CSRF_COOKIE) {
        Some(n) if n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()) => (n, false),
        _ => (hex(&rand::random::<[u8; 16]>()), true),
    };
    let csrf = shared.csrf_key.token(&nonce);

    let req = if req.method() == Method::POST {
        if config.read_only {
            return (StatusCode::FORBIDDEN, "the dashboard is read-only").into_response();
        }
        if !same_origin(req.headers(), &config.allowed_origins) {
            return (StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
        }
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, POST_BODY_MAX).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        };
        let given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| form_field(&bytes, "csrf"));
        let valid = !fresh && given.is_some_and(|g| secret_eq(g.as_bytes(), csrf.as_bytes()));
        if !valid {
            return (
                StatusCode::FORBIDDEN,
                "missing or invalid CSRF token; reload the page",
            )
                .into_response();
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };

    let secure = req
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie_path = if base.is_empty() {
        "/".to_owned()
    } else {
        base.clone()
    };
    let mut req = req;
    req.extensions_mut().insert(Ctx {
        base,
        csrf,
        read_only: config.read_only,
    });
    let mut resp = next.run(req).await;
    if fresh {
        let cookie = format!(
            "{CSRF_COOKIE}={nonce}; Path={cookie_path}; HttpOnly; SameSite=Strict{}",
            if secure { "; Secure" } else { "" }
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn authorized(headers: &HeaderMap, auth: &crate::Auth) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let Some((user, pass)) = &auth.basic else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        let expected = format!("{user}:{pass}");
        return secret_eq(&decoded, expected.as_bytes());
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return auth
            .bearer
            .as_ref()
            .is_some_and(|t| secret_eq(rest.as_bytes(), t.as_bytes()));
    }
    false
}

/// Whether a POST comes from a page of this dashboard. `Sec-Fetch-Site`
/// (set by the browser, not by page script) decides when present; otherwise
/// `Origin` must name this host or an allowed origin; with neither, refuse.
fn same_origin(headers: &HeaderMap, allowed: &[String]) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// First value of `name` in a urlencoded body.
pub(crate) fn form_field(body: &Bytes, name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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
    fn origin_must_match_host_without_fetch_metadata() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7420"));
        assert!(!same_origin(&h, &[]));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7420"),
        );
        assert!(same_origin(&h, &[]));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h, &[]));
        assert!(same_origin(&h, &["http://evil.example".to_owned()]));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h, &["http://evil.example".to_owned()]));
    }

    #[test]
    fn tokens_depend_on_key_and_nonce() {
        let k = CsrfKey::random();
        assert_eq!(k.token("a"), k.token("a"));
        assert_ne!(k.token("a"), k.token("b"));
        assert_ne!(k.token("a"), CsrfKey::random().token("a"));
    }
}
