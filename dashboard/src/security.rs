//! The middleware every dashboard request passes, in this order:
//!
//! 1. **Host** (`host`): a `Host` this dashboard does not serve → 421. This
//!    is the DNS-rebinding defence; it runs first so a rebound page learns
//!    nothing, not even whether auth is on.
//! 2. **Authentication** (when configured): HTTP basic or a bearer token,
//!    compared in constant time. Failure → 401.
//! 3. **CSRF cookie** (`csrf`): the nonce cookie, planted when missing.
//!    Then the query string: a parameter that is not UTF-8 → 400.
//! 4. **POST gate**: every state change is a POST (GET and HEAD only read);
//!    a POST is refused with 403 in read-only mode, unless it is same-origin
//!    (`Sec-Fetch-Site: same-origin`, or an `Origin` the host rule accepts, or
//!    an allowed origin), and unless it carries the CSRF token (form field
//!    `csrf` or header `X-CSRF-Token`). A `Content-Length` over
//!    [`POST_BODY_MAX`] is refused with 413 before any byte is read; the body
//!    is then buffered (at most [`POST_BODY_MAX`]) to read the field, and
//!    handed on unchanged.
//!
//! Response headers (CSP and friends) are set on everything, errors
//! included, by the tower-http layers from [`header_layers`].
//!
//! It also works out the base path links are built from (the `Router::nest`
//! prefix, or [`DashboardConfig::base_path`](crate::DashboardConfig)).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{NestedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::csrf::{self, secret_eq};
use crate::error::{AppError, AppResult, ErrorNote};
use crate::host::HostPolicy;
use crate::state::{Ctx, Shared};

/// Largest POST body accepted (a bulk form with 500 selected ids is ~25 KiB).
pub(crate) const POST_BODY_MAX: usize = 256 * 1024;
/// The Content-Security-Policy of every response: only our own script and
/// stylesheet, no inline code, no framing, forms post only to us.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The response-header layers, outermost around the router so that errors
/// of the middleware get them too. `Cache-Control: no-store` only where the
/// handler set no policy of its own (assets are cacheable).
pub(crate) fn header_layers() -> [SetResponseHeaderLayer<HeaderValue>; 5] {
    let fixed =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    [
        fixed(header::CONTENT_SECURITY_POLICY, CSP),
        fixed(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        fixed(header::X_FRAME_OPTIONS, "DENY"),
        fixed(header::REFERRER_POLICY, "same-origin"),
        SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ),
    ]
}

/// The middleware; see the module docs for the order of checks.
/// An error answers a browser with a styled page (`views::error_page`),
/// anything else in plain text.
pub(crate) async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let page_base = wants_page(&req).then(|| base_of(&shared.config, &req));
    let resp = match guarded(&shared, req, next).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    let note = resp.extensions().get::<ErrorNote>().cloned();
    match (page_base, note) {
        (Some(base), Some(note)) => {
            crate::views::error_page(resp, &base, shared.config.read_only, &note)
        }
        _ => resp,
    }
}

/// Whether an error for this request is shown as a page: a browser's
/// request (it accepts HTML) for anything but the JSON API, raw records
/// and metrics, whose clients read the plain text.
fn wants_page(req: &Request) -> bool {
    let html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let path = req.uri().path();
    html && !path.starts_with("/api/") && !path.ends_with("/raw") && path != "/metrics"
}

/// The prefix of every link: the configured base path, else the
/// `Router::nest` prefix, without a trailing slash.
fn base_of(config: &crate::DashboardConfig, req: &Request) -> String {
    config
        .base_path
        .clone()
        .or_else(|| {
            req.extensions()
                .get::<NestedPath>()
                .map(|p| p.as_str().to_owned())
        })
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned()
}

/// The `Host` of a request (HTTP/1.1 header, or the HTTP/2 authority).
fn host_of(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            req.uri()
                .authority()
                .map(axum::http::uri::Authority::as_str)
        })
}

async fn guarded(shared: &Shared, req: Request, next: Next) -> AppResult<Response> {
    let config = &shared.config;
    if !host_of(&req).is_some_and(|h| shared.hosts.allows(h)) {
        return Err(AppError::MisdirectedHost(
            "this dashboard does not answer to that Host name; add it to the allowed hosts \
             (--allowed-host / DashboardConfig::allowed_hosts) if it is yours"
                .to_owned(),
        ));
    }
    let actor = if config.auth.is_enabled() {
        let Some(who) = authorized(req.headers(), &config.auth) else {
            return Err(AppError::Unauthorized(if config.auth.basic.is_some() {
                "Basic realm=\"Spool\", charset=\"UTF-8\""
            } else {
                "Bearer realm=\"Spool\""
            }));
        };
        format!("dashboard:{who}")
    } else {
        "dashboard".to_owned()
    };

    let base = base_of(config, &req);

    // Every route: a query parameter that is not UTF-8 is a 400 naming it,
    // whether or not the handler reads it.
    crate::params::utf8_pairs(req.uri().query().unwrap_or_default().as_bytes())?;
    let (nonce, fresh) = csrf::nonce(req.headers());
    let token = shared.csrf_key.token(&nonce);
    let mut req = if req.method() == Method::POST {
        post_gate(shared, req, fresh, &token).await?
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
    req.extensions_mut().insert(Ctx {
        base,
        csrf: token,
        read_only: config.read_only,
        actor,
    });
    let mut resp = next.run(req).await;
    if fresh {
        if let Ok(v) = HeaderValue::from_str(&csrf::set_cookie(nonce, cookie_path, secure)) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// Read-only, same-origin, size and CSRF checks of a POST; returns the
/// request with its (buffered) body.
async fn post_gate(shared: &Shared, req: Request, fresh: bool, token: &str) -> AppResult<Request> {
    if shared.config.read_only {
        return Err(AppError::Forbidden("the dashboard is read-only".to_owned()));
    }
    if !same_origin(req.headers(), &shared.hosts, &shared.config.allowed_origins) {
        return Err(AppError::Forbidden(
            "cross-origin request refused".to_owned(),
        ));
    }
    let too_large = || {
        AppError::PayloadTooLarge(format!(
            "request body too large (at most {POST_BODY_MAX} bytes)"
        ))
    };
    // Refuse an announced oversize body before reading a byte of it.
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH) {
        let len = len.to_str().ok().and_then(|l| l.parse::<u64>().ok());
        match len {
            Some(n) if n <= POST_BODY_MAX as u64 => {}
            Some(_) => return Err(too_large()),
            None => return Err(AppError::BadRequest("malformed Content-Length".to_owned())),
        }
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, POST_BODY_MAX)
        .await
        .map_err(|_| too_large())?;
    let given = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_field(&bytes, "csrf"));
    let valid = !fresh && given.is_some_and(|g| secret_eq(g.as_bytes(), token.as_bytes()));
    if !valid {
        return Err(AppError::Forbidden(
            "missing or invalid CSRF token; reload the page".to_owned(),
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Who the request authenticates as: the basic-auth user, or `token` for
/// the bearer token; `None` when it does not.
fn authorized<'a>(headers: &HeaderMap, auth: &'a crate::Auth) -> Option<&'a str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let (user, pass) = auth.basic.as_ref()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let expected = format!("{user}:{pass}");
        return secret_eq(&decoded, expected.as_bytes()).then_some(user.as_str());
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return auth
            .bearer
            .as_ref()
            .is_some_and(|t| secret_eq(rest.as_bytes(), t.as_bytes()))
            .then_some("token");
    }
    None
}

/// Whether a POST comes from a page of this dashboard. `Sec-Fetch-Site`
/// (set by the browser, not by page script) decides when present; otherwise
/// `Origin` must be an allowed origin or pass the host rule; with neither,
/// refuse.
fn same_origin(headers: &HeaderMap, hosts: &HostPolicy, allowed: &[String]) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    hosts.allows_origin(origin, host)
}

/// First value of `name` in a urlencoded body.
fn form_field(body: &Bytes, name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_pass_the_host_rule_without_fetch_metadata() {
        let hosts = HostPolicy::new(&[], None);
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7420"));
        assert!(!same_origin(&h, &hosts, &[]));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7420"),
        );
        assert!(same_origin(&h, &hosts, &[]));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h, &hosts, &[]));
        assert!(same_origin(&h, &hosts, &["http://evil.example".to_owned()]));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(
            &h,
            &hosts,
            &["http://evil.example".to_owned()]
        ));
    }
}
