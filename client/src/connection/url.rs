//! Parsing of the one `REDIS_URL` string into a [`Target`]: which topology
//! (single node, Sentinel, Cluster), which hosts, TLS or not, and the
//! credentials. Single-node URLs are parsed by the redis crate itself;
//! the multi-host forms (`redis+sentinel://`, `redis+cluster://`) are not
//! URLs the redis crate (or the `url` crate) accepts, so they are split here.
//! Errors name the part that is wrong and never contain the password.

use percent_encoding::percent_decode_str;

/// Default port of a Sentinel when a host has none.
const SENTINEL_PORT_DEFAULT: u16 = 26379;
/// Default port of a Redis node when a host has none.
const REDIS_PORT_DEFAULT: u16 = 6379;

/// What a connection string names.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// One server (`redis://`, `rediss://`, `unix://`): the redis crate's
    /// own connection info.
    Single(redis::ConnectionInfo),
    /// A primary found through Sentinels.
    Sentinel(SentinelTarget),
    /// A Redis Cluster reached through any of its seed nodes.
    Cluster(ClusterTarget),
}

/// `redis+sentinel://[user:pass@]host:port[,host:port…]/MASTER[/DB][?sentinel_username=…&sentinel_password=…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelTarget {
    /// Sentinel addresses.
    pub(crate) sentinels: Vec<(String, u16)>,
    /// The monitored master's name.
    pub(crate) master: String,
    /// Database number on the primary.
    pub(crate) db: i64,
    /// TLS to the Sentinels and to the data nodes (`rediss+sentinel`).
    pub(crate) tls: bool,
    /// Credentials for the data nodes.
    pub(crate) auth: Credentials,
    /// Credentials for the Sentinels themselves (often none).
    pub(crate) sentinel_auth: Credentials,
}

/// `redis+cluster://[user:pass@]host:port[,host:port…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterTarget {
    /// Seed nodes; the rest of the topology is discovered.
    pub(crate) nodes: Vec<(String, u16)>,
    /// TLS to every node (`rediss+cluster`).
    pub(crate) tls: bool,
    /// Credentials for every node.
    pub(crate) auth: Credentials,
}

/// A username and password, either optional.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The schemes accepted, for error messages.
pub(crate) const SCHEMES: &str = "redis, rediss, unix, redis+sentinel, rediss+sentinel, \
                                  redis+cluster or rediss+cluster";

/// Parses a connection string. The error says which part is wrong and never
/// quotes the password (callers add the redacted URL).
pub(crate) fn parse(url: &str) -> Result<Target, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "missing scheme: expected {SCHEMES}, as in redis://host:6379"
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "redis" | "rediss" | "unix" | "redis+unix" => single(url),
        "redis+sentinel" => sentinel(rest, false),
        "rediss+sentinel" => sentinel(rest, true),
        "redis+cluster" => cluster(rest, false),
        "rediss+cluster" => cluster(rest, true),
        other => Err(format!(
            "unknown scheme {:?}: expected {SCHEMES}",
            other.chars().take(32).collect::<String>()
        )),
    }
}

fn single(url: &str) -> Result<Target, String> {
    use redis::IntoConnectionInfo;
    url.into_connection_info().map(Target::Single).map_err(|e| {
        // The crate's message may quote the URL: keep only its reason.
        let text = e.to_string();
        if text.contains(url) || url.contains('@') && text.contains('@') {
            "not a valid redis:// or rediss:// URL (host, port or database is malformed)".to_owned()
        } else {
            text
        }
    })
}

/// The pieces of a multi-host URL after the scheme.
struct Parts<'a> {
    auth: Credentials,
    hosts: &'a str,
    path: &'a str,
    query: &'a str,
}

fn split(rest: &str) -> Result<Parts<'_>, String> {
    // A password may contain '/', '?' or '@': the userinfo ends at the last
    // '@' before the host list, and hosts never contain '@'.
    let (userinfo, after) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (before_query, query) = after.split_once('?').unwrap_or((after, ""));
    let (hosts, path) = match before_query.find('/') {
        Some(slash) => (&before_query[..slash], &before_query[slash..]),
        None => (before_query, ""),
    };
    let auth = match userinfo {
        None => Credentials::default(),
        Some(info) => {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            Credentials {
                username: non_empty(decode(user, "username")?),
                password: pass.map(|p| decode(p, "password")).transpose()?,
            }
        }
    };
    Ok(Parts {
        auth,
        hosts,
        path,
        query,
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn decode(s: &str, what: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| format!("the {what} is not valid UTF-8 after percent-decoding"))
}

fn hosts(list: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    if list.is_empty() {
        return Err("no host given: list host:port pairs separated by commas".to_owned());
    }
    list.split(',')
        .enumerate()
        .map(|(i, h)| host(h, default_port).map_err(|e| format!("host {} ({h:?}): {e}", i + 1)))
        .collect()
}

fn host(h: &str, default_port: u16) -> Result<(String, u16), String> {
    let (name, port) = if let Some(v6) = h.strip_prefix('[') {
        let (addr, tail) = v6
            .split_once(']')
            .ok_or_else(|| "an IPv6 address needs a closing ']'".to_owned())?;
        (addr, tail.strip_prefix(':'))
    } else {
        match h.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        }
    };
    if name.is_empty() {
        return Err("empty host name".to_owned());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        return Err("the host name has characters a host name cannot have".to_owned());
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("port {p:?} is not a number from 1 to 65535")),
        },
    };
    Ok((name.to_owned(), port))
}

fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

fn sentinel(rest: &str, tls: bool) -> Result<Target, String> {
    let parts = split(rest)?;
    let sentinels = hosts(parts.hosts, SENTINEL_PORT_DEFAULT)?;
    let mut segments = parts.path.trim_start_matches('/').split('/');
    let master = segments.next().unwrap_or_default();
    if master.is_empty() {
        return Err(
            "no master name: a Sentinel URL names the monitored master after the hosts, \
             as in redis+sentinel://host:26379/mymaster"
                .to_owned(),
        );
    }
    let master = decode(master, "master name")?;
    let db = match segments.next() {
        None | Some("") => 0,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| *d >= 0)
            .ok_or_else(|| format!("database {d:?} after the master name is not a number"))?,
    };
    if segments.next().is_some() {
        return Err("the path has more than /MASTER/DB".to_owned());
    }
    let mut sentinel_auth = Credentials::default();
    for (key, value) in query_pairs(parts.query) {
        match key.as_str() {
            "sentinel_username" => sentinel_auth.username = non_empty(value),
            "sentinel_password" => sentinel_auth.password = Some(value),
            other => {
                return Err(format!(
                    "unknown option {other:?}: a Sentinel URL accepts sentinel_username and \
                     sentinel_password"
                ))
            }
        }
    }
    Ok(Target::Sentinel(SentinelTarget {
        sentinels,
        master,
        db,
        tls,
        auth: parts.auth,
        sentinel_auth,
    }))
}

fn cluster(rest: &str, tls: bool) -> Result<Target, String> {
    let parts = split(rest)?;
    let nodes = hosts(parts.hosts, REDIS_PORT_DEFAULT)?;
    match parts.path.trim_matches('/') {
        "" | "0" => {}
        _ => return Err("Redis Cluster has only database 0: drop the path after the hosts".into()),
    }
    if let Some((key, _)) = query_pairs(parts.query).next() {
        return Err(format!(
            "unknown option {key:?}: a Cluster URL takes no options"
        ));
    }
    Ok(Target::Cluster(ClusterTarget {
        nodes,
        tls,
        auth: parts.auth,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_urls_go_to_the_redis_crate() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://u:p@h:1/2",
            "rediss://h:6380",
            "unix:///tmp/r.sock",
        ] {
            assert!(matches!(parse(url), Ok(Target::Single(_))), "{url}");
        }
    }

    #[test]
    fn sentinel_urls_name_hosts_master_db_and_credentials() {
        let Ok(Target::Sentinel(s)) = parse(
            "rediss+sentinel://app:p%40ss%2Fw@10.0.0.1:26380,h2,[::1]:1/mymaster/3?sentinel_password=x",
        ) else {
            panic!("not a sentinel target");
        };
        assert_eq!(
            s.sentinels,
            vec![
                ("10.0.0.1".to_owned(), 26380),
                ("h2".to_owned(), 26379),
                ("::1".to_owned(), 1)
            ]
        );
        assert_eq!(s.master, "mymaster");
        assert_eq!(s.db, 3);
        assert!(s.tls);
        assert_eq!(s.auth.username.as_deref(), Some("app"));
        assert_eq!(s.auth.password.as_deref(), Some("p@ss/w"));
        assert_eq!(s.sentinel_auth.password.as_deref(), Some("x"));
    }

    #[test]
    fn cluster_urls_list_seed_nodes() {
        let Ok(Target::Cluster(c)) = parse("redis+cluster://:pw@a:7000,b:7001") else {
            panic!("not a cluster target");
        };
        assert_eq!(
            c.nodes,
            vec![("a".to_owned(), 7000), ("b".to_owned(), 7001)]
        );
        assert!(!c.tls);
        assert_eq!(c.auth.username, None);
        assert_eq!(c.auth.password.as_deref(), Some("pw"));
    }

    #[test]
    fn bad_strings_name_the_wrong_part_without_the_password() {
        for (url, part) in [
            ("http://h", "unknown scheme \"http\""),
            ("localhost:6379", "missing scheme"),
            ("redis+sentinel://:hunter2@h:26379", "no master name"),
            (
                "redis+sentinel://:hunter2@h:x/m",
                "host 1 (\"h:x\"): port \"x\"",
            ),
            ("redis+cluster://:hunter2@a:1,,b:2", "host 2 (\"\")"),
            ("redis+cluster://:hunter2@a:1/3", "only database 0"),
            ("redis+cluster://:hunter2@a:99999", "port \"99999\""),
            (
                "redis+sentinel://:hunter2@a/m?pasword=1",
                "unknown option \"pasword\"",
            ),
            ("redis+cluster://:hunter2@", "no host given"),
        ] {
            let err = parse(url).expect_err(url);
            assert!(err.contains(part), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }
}
