//! OpenTelemetry trace context across the queue (feature `otel`): the
//! producer's current span goes into each job it enqueues as W3C trace
//! context (`traceparent`, `tracestate`) in the job's trace map, and the
//! worker makes it the parent of the job's span, so the request that
//! enqueued a job and every run of that job (retries included) share one
//! trace. Follow-ups and batch members are enqueued with the producer's
//! context too, so a workflow stays in the trace of the request that
//! started it.
//!
//! Both sides use `tracing`: install a `tracing_opentelemetry` layer in
//! the producer and in the worker (with the exporter of your choice), and
//! Spool does the rest. The propagator is W3C Trace Context
//! (`opentelemetry_sdk::propagation::TraceContextPropagator`), whatever
//! global propagator the application set, so producers in other languages
//! can write `traceparent` themselves (docs/PROTOCOL.md, "trace").
//!
//! A trace map the caller set (`EnqueueOptions::trace`) is kept; the
//! current context is added only where it has no `traceparent`. With no
//! OpenTelemetry layer installed the current span has no valid context and
//! nothing is added.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header that carries the parent span.
pub const TRACEPARENT: &str = "traceparent";

struct Carrier<'a>(&'a mut BTreeMap<String, String>);

impl Injector for Carrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct Reader<'a>(&'a BTreeMap<String, String>);

impl Extractor for Reader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// `trace` with the current span's context added (when it has none and
/// the current span is sampled into a trace); `None` when there is nothing
/// to add.
#[must_use]
pub fn with_current_context(
    trace: Option<&BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    if trace.is_some_and(|t| t.contains_key(TRACEPARENT)) {
        return None;
    }
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut out = trace.cloned().unwrap_or_default();
    TraceContextPropagator::new().inject_context(&cx, &mut Carrier(&mut out));
    Some(out)
}

/// Makes the context in `trace` (a job's trace map) the parent of `span`.
/// Must run before `span` is first entered. A map without a valid
/// `traceparent`, or a subscriber without an OpenTelemetry layer, leaves
/// `span` as it is.
pub fn adopt_parent(span: &tracing::Span, trace: &BTreeMap<String, String>) {
    if !trace.contains_key(TRACEPARENT) {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Reader(trace));
    if cx.span().span_context().is_valid() {
        // Err: no OpenTelemetry layer, or the span is disabled: nothing to link.
        let _ = span.set_parent(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_or_broken_traceparent_is_ignored() {
        let span = tracing::Span::none();
        for bad in [
            "",
            "00-xyz",
            "ff-00000000000000000000000000000000-0000000000000000-01",
        ] {
            let trace = BTreeMap::from([(TRACEPARENT.to_owned(), bad.to_owned())]);
            adopt_parent(&span, &trace);
        }
        // Without a layer there is no current context to add.
        assert_eq!(with_current_context(None), None);
        let set = BTreeMap::from([(TRACEPARENT.to_owned(), "x".to_owned())]);
        assert_eq!(
            with_current_context(Some(&set)),
            None,
            "the caller's is kept"
        );
    }
}
