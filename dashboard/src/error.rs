//! Errors of `spool-dashboard`: configuration errors ([`Error`]) and the one
//! response error every handler and middleware returns (`AppError`: it
//! carries its HTTP status, logs 500s once, and answers in plain text).
//! A browser (a request that accepts `text/html`, outside `/api/`) gets the
//! same message as a styled page with a way back instead: the response
//! carries an [`ErrorNote`] that `security::guard`, which knows the base
//! path, turns into that page.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Configuration and start-up errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The dashboard would listen beyond loopback with no credentials.
    #[error("refusing to listen on non-loopback address {addr} without credentials: set --basic-auth or --bearer-token (or bind 127.0.0.1)")]
    PublicWithoutAuth {
        /// The address asked for.
        addr: std::net::SocketAddr,
    },
    /// A credential given on the command line or in the environment is malformed.
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    /// Another configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// A request failure with the status it answers with.
#[derive(Debug)]
pub(crate) enum AppError {
    /// 400: the request is malformed or out of range.
    BadRequest(String),
    /// 401: credentials missing or wrong; the value is the challenge
    /// (`WWW-Authenticate`).
    Unauthorized(&'static str),
    /// 403: refused (read-only, cross-origin, CSRF).
    Forbidden(String),
    /// 404: nothing there.
    NotFound(String),
    /// 413: the body is larger than the limit.
    PayloadTooLarge(String),
    /// 421: the `Host` header names a host this dashboard does not serve
    /// (DNS rebinding defence).
    MisdirectedHost(String),
    /// 503: Redis cannot be reached (the message says so, without the
    /// password).
    Unavailable(String),
    /// 500: Redis, a template or another dependency failed (logged, not
    /// shown).
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

/// What an error response said, kept in its extensions so the middleware
/// can show it as a page: the status's title and the message.
#[derive(Debug, Clone)]
pub(crate) struct ErrorNote {
    pub(crate) title: &'static str,
    pub(crate) message: String,
}

impl AppError {
    /// The status this error answers with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The heading of this error's page.
    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "Bad request",
            Self::Unauthorized(_) => "Sign-in required",
            Self::Forbidden(_) => "Not allowed",
            Self::NotFound(_) => "Not found",
            Self::PayloadTooLarge(_) => "Request too large",
            Self::MisdirectedHost(_) => "Unknown host name",
            Self::Unavailable(_) => "Redis is not reachable",
            Self::Internal(_) => "Something went wrong",
        }
    }
}

impl From<spool_client::Error> for AppError {
    fn from(e: spool_client::Error) -> Self {
        match e {
            spool_client::Error::InvalidQueueName { .. }
            | spool_client::Error::InvalidArgument(_) => Self::BadRequest(e.to_string()),
            spool_client::Error::UnknownCronEntry(name) => {
                Self::NotFound(format!("no live cron entry {name}"))
            }
            e @ spool_client::Error::Connect { .. } => Self::Unavailable(e.to_string()),
            e if e.is_connection_error() => {
                tracing::warn!(error = %e, "redis not reachable");
                Self::Unavailable(format!("{e}. The page works again once Redis is back."))
            }
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let title = self.title();
        let mut challenge = None;
        let msg = match self {
            Self::BadRequest(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::PayloadTooLarge(m)
            | Self::MisdirectedHost(m)
            | Self::Unavailable(m) => m,
            Self::Unauthorized(c) => {
                challenge = Some(c);
                "authentication required".to_owned()
            }
            Self::Internal(e) => {
                tracing::error!(error = %e, "dashboard request failed");
                "internal error (see the dashboard log)".to_owned()
            }
        };
        // Plain text: error messages may echo user input and are never HTML.
        let note = ErrorNote {
            title,
            message: msg.clone(),
        };
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg,
        )
            .into_response();
        resp.extensions_mut().insert(note);
        if let Some(c) = challenge {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(c),
            );
        }
        resp
    }
}

/// `Result` of handlers and middleware.
pub(crate) type AppResult<T> = Result<T, AppError>;
