//! Errors of `spool-dashboard`: configuration errors ([`Error`]) and the
//! response error of handlers (`AppError`: 400, 403, 404 or 500, logged once).

use axum::http::StatusCode;
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

/// A handler failure, turned into a plain-text error response.
#[derive(Debug)]
pub(crate) enum AppError {
    /// The request is malformed or out of range.
    BadRequest(String),
    /// Nothing there.
    NotFound(String),
    /// Redis or another dependency failed.
    Internal(spool_client::Error),
}

impl From<spool_client::Error> for AppError {
    fn from(e: spool_client::Error) -> Self {
        match e {
            spool_client::Error::InvalidQueueName { .. }
            | spool_client::Error::InvalidArgument(_) => Self::BadRequest(e.to_string()),
            spool_client::Error::UnknownCronEntry(name) => {
                Self::NotFound(format!("no live cron entry {name}"))
            }
            other => Self::Internal(other),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Self::Internal(e) => {
                tracing::error!(error = %e, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the dashboard log)".to_owned(),
                )
            }
        };
        // Plain text: error messages may echo user input and are never HTML.
        (status, [("content-type", "text/plain; charset=utf-8")], msg).into_response()
    }
}

/// `Result` of handlers.
pub(crate) type AppResult<T> = Result<T, AppError>;
