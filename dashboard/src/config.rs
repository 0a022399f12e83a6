//! Dashboard configuration: who may see it (auth), whether it may change
//! anything (read-only), which hosts it answers to and which origins may
//! POST, and how far a filter scans.

use std::net::SocketAddr;

use crate::error::Error;

/// Set entries a filtered page examines by default before it stops and says so.
pub const FILTER_WINDOW_DEFAULT: u64 = 10_000;

/// Credentials the dashboard accepts. Either one is enough when both are set.
#[derive(Clone, Default)]
pub struct Auth {
    /// HTTP basic auth user and password.
    pub basic: Option<(String, String)>,
    /// A bearer token (`Authorization: Bearer …`), for scrapers and scripts.
    pub bearer: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        f.debug_struct("Auth")
            .field("basic", &self.basic.as_ref().map(|(u, _)| u))
            .field("bearer", &self.bearer.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Auth {
    /// Basic auth with one user.
    #[must_use]
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            basic: Some((user.into(), password.into())),
            bearer: None,
        }
    }

    /// A bearer token.
    #[must_use]
    pub fn bearer(token: impl Into<String>) -> Self {
        Self {
            basic: None,
            bearer: Some(token.into()),
        }
    }

    /// Parses `user:pass` as given to `--basic-auth`.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] without a colon, or with an empty user or password.
    pub fn parse_basic(s: &str) -> Result<(String, String), Error> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok((u.to_owned(), p.to_owned())),
            _ => Err(Error::InvalidCredentials(
                "basic auth must be USER:PASSWORD, both non-empty".to_owned(),
            )),
        }
    }

    /// True when some credential is configured.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.basic.is_some() || self.bearer.is_some()
    }
}

/// How the dashboard behaves. `Default` is: no auth, actions enabled,
/// answers to IP literals and `localhost` only, same-origin POSTs only,
/// links relative to where it is mounted.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Credentials; none by default (fine on loopback, see [`check_bind`]).
    pub auth: Auth,
    /// Show everything, hide every action, refuse every POST.
    pub read_only: bool,
    /// Extra origins (`https://ops.example.com`) allowed to POST besides the
    /// dashboard's own, for a proxy that rewrites the Host header.
    pub allowed_origins: Vec<String>,
    /// Host names (`ops.example.com`, or `ops.example.com:8443` for one port)
    /// the dashboard answers to besides IP literals and `localhost`; any
    /// other `Host` gets 421 (the DNS-rebinding defence). `"*"` turns the
    /// check off, for an application that checks `Host` itself. Empty by
    /// default: reachable by IP address and `localhost` only.
    pub allowed_hosts: Vec<String>,
    /// The address the dashboard listens on, when known (the binary sets
    /// it): a port in the `Host` of an IP literal or `localhost` must then
    /// be this one. `None` (the default when mounted): any port.
    pub listen_addr: Option<SocketAddr>,
    /// Path prefix links are built with, when a proxy strips it before the
    /// request reaches the app. Without it, the prefix of `Router::nest` is used.
    pub base_path: Option<String>,
    /// Set entries a filtered page scans at most ([`FILTER_WINDOW_DEFAULT`]).
    pub filter_window: u64,
    /// Set entries a "to all matching" action scans at most.
    pub action_window: u64,
    /// Seconds between auto-refreshes of live pages (0 disables).
    pub refresh_secs: u32,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            auth: Auth::default(),
            read_only: false,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            listen_addr: None,
            base_path: None,
            filter_window: FILTER_WINDOW_DEFAULT,
            action_window: spool_client::admin::SCAN_WINDOW_MAX,
            refresh_secs: 5,
        }
    }
}

impl DashboardConfig {
    /// Sets the credentials.
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets read-only mode.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Adds host names the dashboard answers to (see
    /// [`allowed_hosts`](Self::allowed_hosts)).
    #[must_use]
    pub fn allow_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Sets the link prefix explicitly (`/ops/jobs`).
    #[must_use]
    pub fn base_path(mut self, base: impl Into<String>) -> Self {
        self.base_path = Some(base.into());
        self
    }
}

/// Refuses a non-loopback listen address when no credential is configured:
/// an open dashboard can delete every job.
///
/// ```
/// use spool_dashboard::{check_bind, Auth, DashboardConfig};
/// let open = DashboardConfig::default();
/// assert!(check_bind("127.0.0.1:7420".parse().unwrap(), &open).is_ok());
/// assert!(check_bind("0.0.0.0:7420".parse().unwrap(), &open).is_err());
/// let locked = DashboardConfig::default().auth(Auth::bearer("t0ken"));
/// assert!(check_bind("0.0.0.0:7420".parse().unwrap(), &locked).is_ok());
/// ```
///
/// # Errors
/// [`Error::PublicWithoutAuth`].
pub fn check_bind(addr: SocketAddr, config: &DashboardConfig) -> Result<(), Error> {
    if addr.ip().is_loopback() || config.auth.is_enabled() {
        Ok(())
    } else {
        Err(Error::PublicWithoutAuth { addr })
    }
}
