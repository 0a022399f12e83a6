//! The Prometheus text format's one escaping rule that exporters must
//! apply themselves: `prometheus-client` writes label values verbatim, and
//! a job type or queue name may come from any producer. Shared by the
//! worker's metrics and the dashboard's `/metrics`.

use std::borrow::Cow;

/// `value` with `\`, `"` and newlines escaped for a label value.
///
/// ```
/// assert_eq!(spool_client::metrics_text::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
/// assert_eq!(spool_client::metrics_text::escape_label_value("emails"), "emails");
/// ```
#[must_use]
pub fn escape_label_value(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}
