//! The worker's fast path for decoding a job record: a reader for the exact
//! layout Spool's own producers write (`JobBody` after the scripts' head,
//! fields in that order, no whitespace, strings without escapes), in one
//! pass and with no per-field dispatch.
//!
//! Why hand-written: `serde_json`'s derived decoder spent about a quarter of
//! the worker's instructions per no-op job (about 4,900 of 20,000: a key
//! match per field, a visitor per lenient field); this reader takes about
//! 3,000, with the same copies into the record's own strings. It decides
//! nothing serde would decide differently: it accepts a strict subset of
//! what [`JobRecord`]'s `Deserialize` accepts and builds the same value
//! (a unit test compares the two over records and their mutations), and
//! returns `None` for everything else (another field order, an escape,
//! whitespace, a field it does not know, a value of another type), which
//! then goes to `serde_json` as before, errors and all.

use serde_json::value::RawValue;

use crate::job::{JobId, JobRecord, PRIORITY_MAX};

/// `text` decoded as Spool's producers write a record, or `None` when it
/// has any other shape (`serde_json` then decides).
pub(crate) fn decode(text: &str) -> Option<JobRecord> {
    let mut r = Reader { text, at: 0 };
    r.literal("{\"id\":")?;
    let id = r.string()?;
    r.literal(",\"attempt\":")?;
    let attempt = u32::try_from(r.unsigned()?).ok()?;
    r.literal(",\"max_attempts\":")?;
    let max_attempts = u32::try_from(r.unsigned()?).ok()?;
    r.literal(",\"enqueued_ms\":")?;
    let enqueued_ms = r.signed()?;
    let priority = match r.optional("priority", Reader::signed)? {
        // serde reads a level out of range as 0; here it is left to serde.
        Some(level) => i8::try_from(level)
            .ok()
            .filter(|p| (-PRIORITY_MAX..=PRIORITY_MAX).contains(p))?,
        None => 0,
    };
    let rate_key = r.optional("rate_key", Reader::string)?;
    let group = r.optional("group", Reader::string)?;
    let keep_outcome_ms = r.optional("keep_outcome_ms", Reader::unsigned)?;
    r.literal(",\"type\":")?;
    let job_type = r.string()?;
    r.literal(",\"queue\":")?;
    let queue = r.string()?;
    r.literal(",\"args\":")?;
    let args = r.value()?;
    r.literal(",\"created_ms\":")?;
    let created_ms = r.signed()?;
    let timeout_ms = r.optional("timeout_ms", Reader::unsigned)?;
    let idempotency_key = r.optional("idempotency_key", Reader::string)?;
    let followups = r.optional("followups", Reader::boolean)?;
    r.literal("}")?;
    if r.at != text.len() {
        return None;
    }
    Some(JobRecord {
        id: JobId::from(id),
        attempt,
        max_attempts,
        enqueued_ms,
        job_type: job_type.to_owned(),
        queue: queue.to_owned(),
        // RawValue checks that the span is JSON, as serde would.
        args: RawValue::from_string(args.to_owned()).ok()?,
        created_ms,
        timeout_ms,
        idempotency_key: idempotency_key.map(str::to_owned),
        trace: None,
        cron: None,
        priority,
        rate_key: rate_key.map(str::to_owned),
        group: group.map(str::to_owned),
        keep_outcome_ms,
        followups: followups.unwrap_or(false),
        parent: None,
        batch: None,
        batch_callback: None,
    })
}

/// A cursor over the record's text.
struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.text.as_bytes()[self.at..]
    }

    /// Skips `lit` when the text goes on with it.
    fn literal(&mut self, lit: &str) -> Option<()> {
        self.rest().starts_with(lit.as_bytes()).then(|| {
            self.at += lit.len();
        })
    }

    /// The value of the next field when it is `name` (`Some(None)` when
    /// the next field is another; `None` when its value does not `read`).
    #[expect(
        clippy::option_option,
        reason = "the outer None is this reader's `not the layout`, as everywhere here"
    )]
    fn optional<T>(&mut self, name: &str, read: fn(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.field(name) {
            read(self).map(Some)
        } else {
            Some(None)
        }
    }

    /// Skips `,"name":` and says so when the next field is `name`.
    fn field(&mut self, name: &str) -> bool {
        let rest = self.rest();
        let n = name.len();
        let found = rest.len() > n + 4
            && rest[0] == b','
            && rest[1] == b'"'
            && &rest[2..2 + n] == name.as_bytes()
            && rest[2 + n] == b'"'
            && rest[3 + n] == b':';
        if found {
            self.at += n + 4;
        }
        found
    }

    /// A string without escapes or control characters (anything else is
    /// left to serde).
    fn string(&mut self) -> Option<&'a str> {
        let rest = self.rest().strip_prefix(b"\"")?;
        let len = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[len] != b'"' || rest[..len].iter().any(|&b| b < 0x20) {
            return None;
        }
        let start = self.at + 1;
        self.at = start + len + 1;
        // `"` is ASCII, so both ends are character boundaries.
        self.text.get(start..start + len)
    }

    /// An integer as JSON writes it (no leading zero, no fraction or
    /// exponent), within u64.
    fn unsigned(&mut self) -> Option<u64> {
        let rest = self.rest();
        let (n, after) = crate::wire::leading_int(rest)?;
        let len = rest.len() - after.len();
        if (len > 1 && rest[0] == b'0') || matches!(after.first(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.at += len;
        Some(n)
    }

    /// As [`Reader::unsigned`], with an optional minus sign, within i64.
    fn signed(&mut self) -> Option<i64> {
        let negative = self.rest().first() == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let n = i64::try_from(self.unsigned()?).ok()?;
        // serde_json reads `-0` as a float, which no field here takes.
        match (negative, n) {
            (true, 0) => None,
            (true, n) => Some(-n),
            (false, n) => Some(n),
        }
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.literal("true").is_some() {
            Some(true)
        } else {
            self.literal("false").map(|()| false)
        }
    }

    /// The span of one JSON value (an object, array, string or scalar):
    /// brackets balanced outside strings. Whether it is valid JSON is for
    /// the caller to check.
    fn value(&mut self) -> Option<&'a str> {
        let mut depth = 0usize;
        let (mut in_string, mut escaped) = (false, false);
        for (i, &b) in self.rest().iter().enumerate() {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') if depth == 0 => return self.take(i + 1),
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                // The end of the enclosing record, or the comma after a
                // scalar: the value ends before it.
                b'}' | b']' | b',' if depth == 0 => return self.take(i),
                b'}' | b']' if depth == 1 => return self.take(i + 1),
                b'}' | b']' => depth -= 1,
                _ => {}
            }
        }
        None
    }

    /// The next `len` bytes, skipped.
    fn take(&mut self, len: usize) -> Option<&'a str> {
        let start = self.at;
        self.at += len;
        self.text.get(start..self.at)
    }
}

/// What the fast path's tests (here and in `runtime/lease.rs`) feed it.
#[cfg(test)]
pub(crate) mod samples {
    pub(crate) const HEAD: &str =
        r#"{"id":"0190-ab","attempt":2,"max_attempts":25,"enqueued_ms":1700000000000,"#;

    /// Records in Spool's own layout and in shapes it is not (the first
    /// nine take the fast path).
    pub(crate) fn records() -> Vec<String> {
        let bodies = [
            r#""type":"email","queue":"default","args":{"to":"a@b"},"created_ms":1700000000000}"#,
            r#""type":"noop","queue":"bench","args":{},"created_ms":-5}"#,
            r#""type":"t","queue":"q","args":[1,[2,{"a":"}]"}],3],"created_ms":0,"timeout_ms":5000}"#,
            r#""type":"t","queue":"q","args":"x\"y","created_ms":1,"idempotency_key":"k","followups":true}"#,
            r#""type":"t","queue":"q","args":12.5e3,"created_ms":1,"followups":false}"#,
            r#""type":"t","queue":"q","args":null,"created_ms":1}"#,
            r#""priority":3,"rate_key":"tenant-1","group":"acct-9","keep_outcome_ms":60000,"type":"t","queue":"q","args":{"n":[]},"created_ms":1}"#,
            r#""priority":-9,"type":"t","queue":"q","args":{},"created_ms":1}"#,
            r#""group":"g","type":"ü","queue":"q","args":{"s":"ü\u00e9"},"created_ms":1}"#,
            r#""type":"t","queue":"q","args":{},"created_ms":1,"trace":{"traceparent":"00-1"}}"#,
            r#""type":"t","queue":"q","args":{},"created_ms":1,"batch":"b1"}"#,
            r#""type":"t","queue":"q","args":{},"created_ms":1,"unknown":1}"#,
            r#""type":"t","queue":"q","args":{"a":1},"created_ms":1} "#,
            r#""type":"t","queue":"q","args":{"a":01},"created_ms":1}"#,
            r#""type":"t","queue":"q","args":{"a":1,},"created_ms":1}"#,
            r#""priority":12,"type":"t","queue":"q","args":{},"created_ms":1}"#,
            r#""priority":"high","type":"t","queue":"q","args":{},"created_ms":1}"#,
            r#""group":7,"type":"t","queue":"q","args":{},"created_ms":1}"#,
            r#""type":"a\nb","queue":"q","args":{},"created_ms":1}"#,
            r#""type":"t","queue":"q","args":{},"created_ms":1.0}"#,
            r#""type":"t","queue":"q","args":{},"created_ms":99999999999999999999}"#,
            r#""type":"t","queue":"q","args":{} ,"created_ms":1}"#,
            r#""type":"t","queue":"q","args":tru,"created_ms":1}"#,
        ];
        bodies.iter().map(|b| format!("{HEAD}{b}")).collect()
    }

    /// `text`, every prefix of it and every one-byte change of it.
    pub(crate) fn variants(text: &str) -> Vec<String> {
        let mut variants = vec![text.to_owned()];
        for cut in 0..text.len() {
            if text.is_char_boundary(cut) {
                variants.push(text[..cut].to_owned());
            }
        }
        for (i, _) in text.char_indices() {
            for with in [
                "\"", "\\", "{", "}", "[", "]", ",", ":", " ", "0", "-", "a", "\u{1}",
            ] {
                let mut changed = text.to_owned();
                let len = changed[i..].chars().next().map_or(0, char::len_utf8);
                changed.replace_range(i..i + len, with);
                variants.push(changed);
            }
        }
        variants
    }
}

#[cfg(test)]
mod tests {
    use super::decode;
    use super::samples::{records, variants};
    use crate::job::JobRecord;

    /// `serde_json`'s reading of `text`, for comparison.
    fn by_serde(text: &str) -> Option<JobRecord> {
        serde_json::from_str(text).ok()
    }

    fn same(a: &JobRecord, b: &JobRecord) -> bool {
        serde_json::to_string(a).ok() == serde_json::to_string(b).ok()
    }

    #[test]
    fn what_it_accepts_serde_reads_the_same() {
        let mut accepted = 0;
        for text in records() {
            for v in &variants(&text) {
                if let Some(fast) = decode(v) {
                    accepted += 1;
                    let slow = by_serde(v)
                        .unwrap_or_else(|| panic!("serde refuses what the fast path read: {v}"));
                    assert!(same(&fast, &slow), "they differ on {v}");
                }
            }
        }
        assert!(accepted > 50, "the fast path read only {accepted} records");
    }

    #[test]
    fn the_common_layouts_take_the_fast_path() {
        let all = records();
        for text in &all[..9] {
            assert!(decode(text).is_some(), "not on the fast path: {text}");
        }
        for text in &all[9..] {
            assert!(decode(text).is_none(), "on the fast path: {text}");
        }
    }
}
