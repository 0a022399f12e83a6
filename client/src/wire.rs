//! Wire formats shared by Rust and the Lua scripts, in one place: the
//! record's script-owned head, the `token|worker` lease value, the stats hash
//! field names, the args nesting limit and the stored error-text cap.
//!
//! Everything here reads **bytes** and never panics: any producer in any
//! language may have written what Redis holds. `docs/PROTOCOL.md` is the
//! normative description; `scripts/prelude.lua` is the Lua side of the same
//! formats (a unit test below checks that the two agree).

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// The script-owned leading fields of a record:
/// `{"id":"…","attempt":N,"max_attempts":N,"enqueued_ms":N,` (always first,
/// in this order; see `spool_head` in `prelude.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHead<'a> {
    /// The job id (no quote or backslash, never empty).
    pub(crate) id: &'a str,
    /// The stored attempt count: runs finished so far. A leased job's run in
    /// progress is not counted yet; see [`attempt_while_leased`].
    pub(crate) attempt: u32,
    /// Runs allowed in total.
    pub(crate) max_attempts: u32,
    /// When the job last became ready (Redis ms).
    pub(crate) enqueued_ms: i64,
}

/// Reads the script-owned head of a record; `None` when `raw` does not start
/// with it (an entry that is not a Spool record). Looks only at the head, so
/// the rest may be cut off, not UTF-8 or not JSON.
pub(crate) fn record_head(raw: &[u8]) -> Option<RecordHead<'_>> {
    let id = record_id(raw)?;
    let rest = raw[ID_AT + id.len()..].strip_prefix(b"\",\"attempt\":")?;
    let (attempt, rest) = leading_int(rest)?;
    let rest = rest.strip_prefix(b",\"max_attempts\":")?;
    let (max_attempts, rest) = leading_int(rest)?;
    let rest = rest.strip_prefix(b",\"enqueued_ms\":")?;
    let (enqueued_ms, rest) = leading_int(rest)?;
    rest.strip_prefix(b",")?;
    Some(RecordHead {
        id,
        attempt: u32::try_from(attempt).ok()?,
        max_attempts: u32::try_from(max_attempts).ok()?,
        enqueued_ms: i64::try_from(enqueued_ms).ok()?,
    })
}

/// Where a record's id starts: after `{"id":"` (7 bytes).
const ID_AT: usize = b"{\"id\":\"".len();

/// The id of a record, read as `fetch.lua` reads it (`spool_record_id`):
/// `{"id":"<id>"` with no `\` in the id. `None` for anything else.
pub(crate) fn record_id(raw: &[u8]) -> Option<&str> {
    let rest = raw.strip_prefix(b"{\"id\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let id = &rest[..end];
    if id.is_empty() || id.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(id).ok()
}

/// Why a leased entry whose head is not Spool's goes to the dead set (the
/// same words `fetch.lua` uses for an entry without a readable id).
pub(crate) const NOT_A_RECORD: &str = "unparsable payload: the ready list held an entry that \
    is not a Spool job record (a JSON object starting with \
    {\"id\":..,\"attempt\":..,\"max_attempts\":..,\"enqueued_ms\":..}); it was moved here unchanged";

/// Digits at the start of `b` (as Lua's `%d+`) read as a u64 (`None` when
/// there are none or they overflow), and what follows them. One pass: the
/// worker reads four numbers of every record fetched.
pub(crate) fn leading_int(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut n = 0u64;
    let mut len = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        len += 1;
    }
    (len > 0).then(|| (n, &b[len..]))
}

/// The attempt a leased job is on: the stored count plus the run in
/// progress (the script that ends the run stores the new count). The one
/// place this adjustment is made.
pub(crate) fn attempt_while_leased(stored: u32) -> u32 {
    stored.saturating_add(1)
}

/// Separator of a lease value `token|worker id|start ms` in the leases hash.
pub(crate) const LEASE_SEPARATOR: char = '|';

/// A lease value as `fetch.lua` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease<'a> {
    pub(crate) token: &'a str,
    pub(crate) worker: &'a str,
    /// When the lease was taken (Redis ms); `None` for leases written
    /// before the start was recorded (`token|worker id`).
    pub(crate) started_ms: Option<i64>,
}

impl Lease<'_> {
    /// The claim this lease belongs to (`worker|start_ms`, the member of
    /// `active` that holds its deadline: `scripts/prelude.lua`, "Claims"),
    /// or `None` for a lease from before leases had a start.
    pub(crate) fn claim(&self) -> Option<String> {
        self.started_ms
            .map(|start| format!("{}{LEASE_SEPARATOR}{start}", self.worker))
    }
}

/// Parses a lease value `token|worker id|start ms`, with `|group` after it
/// when the job holds a turn of its ordered group (or the older
/// `token|worker id`); `None` when it does not have that shape. The worker
/// id never holds the separator ([`lease_worker_id`]).
pub(crate) fn parse_lease(raw: &[u8]) -> Option<Lease<'_>> {
    let text = std::str::from_utf8(raw).ok()?;
    let (token, rest) = text.split_once(LEASE_SEPARATOR)?;
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let start_of = |tail: &'_ str| {
        let start = tail
            .split_once(LEASE_SEPARATOR)
            .map_or(tail, |(start, _group)| start);
        (!start.is_empty() && start.bytes().all(|b| b.is_ascii_digit()))
            .then(|| start.parse().ok())
            .flatten()
    };
    let (worker, started_ms) = match rest.split_once(LEASE_SEPARATOR) {
        Some((worker, tail)) if start_of(tail).is_some() => (worker, start_of(tail)),
        _ => (rest, None),
    };
    Some(Lease {
        token,
        worker,
        started_ms,
    })
}

/// A worker id as `fetch.lua` stores it in a lease value: the separator
/// cannot occur in it, so it is replaced by `_`.
pub(crate) fn lease_worker_id(worker: &str) -> String {
    worker.replace(LEASE_SEPARATOR, "_")
}

/// Field names of a queue's stats hash. The scripts write them through
/// `spool_count` in `scripts/prelude.lua` (`'p'` in `ack.lua`, `'f'` in
/// `fail.lua`/`reap.lua`/`fetch.lua`, `'fc'` and `'fl'` in `fetch.lua`); a
/// unit test checks the names agree. Per-minute fields are `<name>:<minute>`
/// with the minute number on Redis's clock (ms / 60,000).
pub(crate) mod stats_field {
    /// Jobs that succeeded (total, and per minute).
    pub(crate) const PROCESSED: &str = "p";
    /// Failed runs (total, and per minute).
    pub(crate) const FAILED: &str = "f";
    /// Jobs fetched (per minute only).
    pub(crate) const FETCHED: &str = "fc";
    /// Sum of ready-to-fetched latencies in ms (per minute only).
    pub(crate) const FETCH_LATENCY: &str = "fl";
    /// Jobs cancelled (total, and per minute).
    #[allow(dead_code, reason = "written by the scripts; no reader shows it yet")]
    pub(crate) const CANCELLED: &str = "c";

    /// The per-minute field of `name`.
    pub(crate) fn minute(name: &str, minute: i64) -> String {
        format!("{name}:{minute}")
    }
}

/// Deepest nesting of arrays and objects allowed in a job's args (the args
/// value itself is level 1). `serde_json` refuses input nested more than 128
/// levels, so deeper args could be stored but never read back; enqueue
/// refuses them and the worker's decoder applies the same check.
pub const MAX_ARGS_DEPTH: usize = 64;

/// Checks that the JSON in `json` nests arrays and objects at most
/// [`MAX_ARGS_DEPTH`] levels deep. A flat scan (no recursion, no allocation),
/// so it is safe on any input; it does not validate the JSON otherwise.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the limit.
pub fn check_args_depth(json: &[u8]) -> Result<()> {
    let depth = json_depth(json);
    if depth > MAX_ARGS_DEPTH {
        return Err(Error::InvalidArgument(format!(
            "args nest more than {MAX_ARGS_DEPTH} levels of arrays and objects \
             (the limit is {MAX_ARGS_DEPTH}, so every reader can decode them)"
        )));
    }
    Ok(())
}

/// Greatest nesting depth of `[`/`{` outside strings.
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Longest error text stored in a job's error history, in bytes. The scripts
/// cut longer texts (`spool_push_error` in `prelude.lua`, at a UTF-8
/// character boundary); the worker cuts with [`truncate_utf8`] before sending.
pub const ERROR_TEXT_MAX_BYTES: usize = 8 * 1024;

/// `s` cut to at most `max` bytes, at a character boundary.
#[must_use]
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Stored bytes as text when they are UTF-8, else `None`: for values that
/// only mean something as text (settings, cursors, states), another
/// writer's bytes read as unset instead of failing the whole reply.
pub(crate) fn utf8(raw: Vec<u8>) -> Option<String> {
    String::from_utf8(raw).ok()
}

/// A hash read whole (`HGETALL`) as text pairs, leaving out the fields or
/// values that are not UTF-8 (see [`utf8`]).
pub(crate) fn utf8_pairs<M: FromIterator<(String, String)>>(raw: Vec<(Vec<u8>, Vec<u8>)>) -> M {
    raw.into_iter()
        .filter_map(|(k, v)| Some((utf8(k)?, utf8(v)?)))
        .collect()
}

/// Stored bytes as text: valid UTF-8 unchanged, every byte of an invalid
/// sequence as `\xNN` (a sequence cut off at the very end, as in a prefix,
/// is dropped), so bytes from any producer can be shown and searched.
pub(crate) fn escape_bytes(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                // `None`: a character cut off at the end (listings read a
                // prefix of each record); it is dropped, not escaped.
                let Some(len) = e.error_len() else {
                    return out;
                };
                for b in &bad[..len] {
                    let _ = write!(out, "\\x{b:02X}");
                }
                rest = &bad[len..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_head_reads_the_script_owned_fields() {
        let raw = br#"{"id":"j1","attempt":2,"max_attempts":25,"enqueued_ms":10,"type":"t"}"#;
        let h = record_head(raw).expect("head");
        assert_eq!(
            h,
            RecordHead {
                id: "j1",
                attempt: 2,
                max_attempts: 25,
                enqueued_ms: 10
            }
        );
        assert_eq!(attempt_while_leased(h.attempt), 3);
        // A non-UTF-8 body does not matter; a cut head does.
        let mut bytes = raw[..60].to_vec();
        bytes.extend_from_slice(b"\xff\xfe");
        assert!(record_head(&bytes).is_some());
        for bad in [
            &b""[..],
            b"garbage",
            br#"{"id":"","attempt":1,"max_attempts":1,"enqueued_ms":1,"#,
            br#"{"id":"a\"b","attempt":1,"max_attempts":1,"enqueued_ms":1,"#,
            br#"{"id":"a","attempt":99999999999,"max_attempts":1,"enqueued_ms":1,"#,
            br#"{"id":"a","attempt":1,"max_attempts":1,"enqueued_ms":1"#,
            br#"{"id":"\xff","attempt":1"#,
        ] {
            assert_eq!(record_head(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn lease_values_parse() {
        let lease = |token, worker, started_ms| {
            Some(Lease {
                token,
                worker,
                started_ms,
            })
        };
        assert_eq!(parse_lease(b"42|host:1:x"), lease("42", "host:1:x", None));
        assert_eq!(
            parse_lease(b"42|host:1:x|1700"),
            lease("42", "host:1:x", Some(1700))
        );
        assert_eq!(parse_lease(b"42|a|b"), lease("42", "a|b", None));
        assert_eq!(
            parse_lease(b"42|host:1:x|1700|acct|7"),
            lease("42", "host:1:x", Some(1700)),
            "a job holding a turn of group `acct|7`"
        );
        assert_eq!(parse_lease(b"x|w"), None);
        assert_eq!(parse_lease(b"42"), None);
        assert_eq!(parse_lease(b"4\xff|w"), None);
        assert_eq!(lease_worker_id("a|b"), "a_b");
    }

    #[test]
    fn stats_field_names_agree_with_the_scripts() {
        let prelude = include_str!("scripts/prelude.lua");
        assert!(prelude.contains("if field == 'p' or field == 'f' or field == 'c' then"));
        assert!(prelude.contains(&format!(
            "spool_count(q.stats, '{}', now, 1)",
            stats_field::CANCELLED
        )));
        let uses = [
            (include_str!("scripts/ack.lua"), stats_field::PROCESSED),
            (include_str!("scripts/fail.lua"), stats_field::FAILED),
            (include_str!("scripts/reap.lua"), stats_field::FAILED),
            (include_str!("scripts/fetch.lua"), stats_field::FETCHED),
            (
                include_str!("scripts/fetch.lua"),
                stats_field::FETCH_LATENCY,
            ),
            (include_str!("scripts/fetch.lua"), stats_field::FAILED),
        ];
        for (source, name) in uses {
            assert!(
                source.lines().any(|l| l.contains("spool_count(KEYS[")
                    && l.contains(&format!("], '{name}', now,"))),
                "a script no longer writes stats field {name:?}"
            );
        }
        assert_eq!(stats_field::minute(stats_field::FETCHED, 7), "fc:7");
    }

    #[test]
    fn error_text_cap_agrees_with_the_scripts() {
        let prelude = include_str!("scripts/prelude.lua");
        assert!(prelude.contains(&format!(
            "local SPOOL_ERROR_TEXT_MAX = {ERROR_TEXT_MAX_BYTES}\n"
        )));
    }

    #[test]
    fn depth_scan_counts_nesting_outside_strings() {
        assert_eq!(json_depth(b"1"), 0);
        assert_eq!(json_depth(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(json_depth(br#"["[[[[\"[[[", "\\"]"#), 1);
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(check_args_depth(deep.as_bytes()).is_err());
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_ARGS_DEPTH),
            "]".repeat(MAX_ARGS_DEPTH)
        );
        assert!(check_args_depth(ok.as_bytes()).is_ok());
        // Stray closers and bytes that are not UTF-8 do not panic.
        assert_eq!(json_depth(b"]]]}\xff["), 1);
    }

    #[test]
    fn truncation_keeps_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("abc", 10), "abc");
        assert_eq!(truncate_utf8("", 0), "");
    }

    #[test]
    fn bytes_are_escaped_not_lost() {
        assert_eq!(escape_bytes(b"ok"), "ok");
        assert_eq!(escape_bytes(b"a\xffb\xc3\xa9"), "a\\xFFb\u{e9}");
        // A character cut off by a prefix read is dropped, not escaped.
        assert_eq!(escape_bytes(b"a\xc3"), "a");
    }
}
