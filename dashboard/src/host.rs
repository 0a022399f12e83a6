//! The `Host` allow-list: the DNS-rebinding defence.
//!
//! A page on `evil.example` whose name the attacker re-points at 127.0.0.1
//! reaches a loopback dashboard from the victim's browser *as a same-origin
//! page*: cookies, CSRF token and `Sec-Fetch-Site: same-origin` all look
//! right. What gives it away is the `Host` header, which names the
//! attacker's domain. So every request's `Host` must be one the dashboard
//! serves:
//!
//! - an IP literal (`127.0.0.1`, `10.0.0.5`, `[::1]`) or `localhost`: a
//!   rebinding attack needs a *name* the attacker controls, so these are
//!   always safe. When the listen address is known (the binary), a port in
//!   the header must be the one listened on;
//! - a name in [`DashboardConfig::allowed_hosts`](crate::DashboardConfig)
//!   (`ops.example.com` any port, or `ops.example.com:8443` exactly), for a
//!   proxy or a DNS name;
//! - anything, when `allowed_hosts` contains `*` (the check is then the
//!   embedding application's job).
//!
//! The same rule decides which `Origin` may POST (see `security`), so a proxy
//! that rewrites `Host` does not need the origin to equal the header.

use std::net::{IpAddr, SocketAddr};

/// Who the dashboard answers to; built once from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct HostPolicy {
    /// Configured names, lower-case, each with an optional port.
    allowed: Vec<(String, Option<u16>)>,
    /// `*` was configured: no check.
    any: bool,
    /// The listen address, when known.
    bind: Option<SocketAddr>,
}

impl HostPolicy {
    pub(crate) fn new(allowed_hosts: &[String], bind: Option<SocketAddr>) -> Self {
        let any = allowed_hosts.iter().any(|h| h.trim() == "*");
        let allowed = allowed_hosts
            .iter()
            .filter_map(|h| split_host(h.trim()))
            .map(|(name, port)| (name.to_ascii_lowercase(), port))
            .collect();
        Self { allowed, any, bind }
    }

    /// Whether `authority` (`name[:port]`, as in `Host`) is served here.
    pub(crate) fn allows(&self, authority: &str) -> bool {
        if self.any {
            return true;
        }
        let Some((name, port)) = split_host(authority) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        if self
            .allowed
            .iter()
            .any(|(n, p)| *n == name && (p.is_none() || *p == port))
        {
            return true;
        }
        let literal = name == "localhost" || ip_literal(&name).is_some();
        let port_ok = match (self.bind, port) {
            (Some(bind), Some(port)) => bind.port() == port,
            _ => true,
        };
        literal && port_ok
    }

    /// Whether an `Origin` (`scheme://authority`) may POST, given the
    /// request's own `Host`: its authority must be served here, and be the
    /// `Host` itself or a configured name (a proxy rewriting `Host`).
    pub(crate) fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        if !self.allows(authority) {
            return false;
        }
        if host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return true;
        }
        split_host(authority).is_some_and(|(name, port)| {
            let name = name.to_ascii_lowercase();
            self.allowed
                .iter()
                .any(|(n, p)| *n == name && (p.is_none() || *p == port))
        })
    }
}

/// Splits `name[:port]` or `[v6][:port]`; `None` when malformed.
fn split_host(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (&authority[..end + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|_| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?,
        ),
        None => None,
    };
    (!name.is_empty()).then_some((name, port))
}

/// The address of an IP literal host (`10.0.0.5`, `[::1]`).
fn ip_literal(name: &str) -> Option<IpAddr> {
    let inner = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    inner.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost_pass_names_need_configuring() {
        let lib = HostPolicy::new(&[], None);
        for ok in [
            "127.0.0.1:7420",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "10.1.2.3",
        ] {
            assert!(lib.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7420",
            "",
            "127.0.0.1:x",
            "a@b",
            "[::1",
        ] {
            assert!(!lib.allows(bad), "{bad}");
        }
        let bound = HostPolicy::new(&[], Some("127.0.0.1:7420".parse().unwrap()));
        assert!(bound.allows("localhost:7420"));
        assert!(!bound.allows("localhost:7421"));
        let proxy = HostPolicy::new(&["Ops.Example.com".into(), "x.test:8443".into()], None);
        assert!(proxy.allows("ops.example.com:443"));
        assert!(proxy.allows("x.test:8443") && !proxy.allows("x.test:8444"));
        assert!(HostPolicy::new(&["*".into()], None).allows("anything.example"));
    }

    #[test]
    fn origins_follow_the_host_rule() {
        let p = HostPolicy::new(&["ops.example.com".into()], None);
        let host = Some("127.0.0.1:7420");
        assert!(p.allows_origin("http://127.0.0.1:7420", host));
        assert!(!p.allows_origin("http://127.0.0.1:9999", host));
        assert!(p.allows_origin("https://ops.example.com", host));
        assert!(!p.allows_origin("http://evil.example", Some("evil.example")));
        assert!(!p.allows_origin("null", host));
    }
}
