//! Server-rendered SVG history charts: processed (green) stacked on failed
//! (red) per bucket, with a `<title>` tooltip per bucket. Only numbers and
//! escaped text reach the template; there is no script.

use spool_client::admin::MinuteStats;

/// Drawing area of a chart, in SVG user units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 120.0;

/// One bucket's bars, ready for the template.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub(crate) x: String,
    pub(crate) w: String,
    pub(crate) processed_y: String,
    pub(crate) processed_h: String,
    pub(crate) failed_y: String,
    pub(crate) failed_h: String,
    pub(crate) title: String,
}

/// A whole chart.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bars: Vec<Bar>,
    pub(crate) max_label: String,
    /// First and last bucket, `01-02 03:04 UTC` (dates too: a 24 h chart
    /// crosses midnight), and as RFC 3339 for the viewer's zone.
    pub(crate) start_label: String,
    pub(crate) start_iso: String,
    pub(crate) end_label: String,
    pub(crate) end_iso: String,
    pub(crate) processed: u64,
    pub(crate) failed: u64,
}

/// Builds a chart of `minutes` grouped into buckets of `per_bucket` minutes.
pub(crate) fn chart(minutes: &[MinuteStats], per_bucket: usize) -> Chart {
    let per_bucket = per_bucket.max(1);
    let buckets: Vec<(i64, u64, u64)> = minutes
        .chunks(per_bucket)
        .map(|c| {
            let p = c.iter().map(|m| m.processed).sum();
            let f = c.iter().map(|m| m.failed).sum();
            (c.first().map_or(0, |m| m.minute_ms), p, f)
        })
        .collect();
    let max = buckets
        .iter()
        .map(|(_, p, f)| p + f)
        .max()
        .unwrap_or(0)
        .max(1);
    #[allow(clippy::cast_precision_loss)]
    let (n, maxf) = (buckets.len().max(1) as f64, max as f64);
    let slot = WIDTH / n;
    let bars = buckets
        .iter()
        .enumerate()
        .map(|(i, &(at, p, f))| {
            #[allow(clippy::cast_precision_loss)]
            let (i, pf, ff) = (i as f64, p as f64, f as f64);
            let fh = ff / maxf * HEIGHT;
            let ph = pf / maxf * HEIGHT;
            Bar {
                x: format!("{:.2}", i * slot),
                w: format!("{:.2}", (slot - 1.0).max(0.5)),
                failed_y: format!("{:.2}", HEIGHT - fh),
                failed_h: format!("{fh:.2}"),
                processed_y: format!("{:.2}", HEIGHT - fh - ph),
                processed_h: format!("{ph:.2}"),
                title: format!("{}: {p} processed, {f} failed", clock(at)),
            }
        })
        .collect();
    Chart {
        width: 720,
        height: 120,
        bars,
        max_label: max.to_string(),
        start_label: buckets.first().map(|b| clock(b.0)).unwrap_or_default(),
        start_iso: buckets
            .first()
            .map(|b| crate::views::iso(b.0))
            .unwrap_or_default(),
        end_label: buckets.last().map(|b| clock(b.0)).unwrap_or_default(),
        end_iso: buckets
            .last()
            .map(|b| crate::views::iso(b.0))
            .unwrap_or_default(),
        processed: buckets.iter().map(|b| b.1).sum(),
        failed: buckets.iter().map(|b| b.2).sum(),
    }
}

fn clock(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sum_their_minutes_and_scale_to_the_tallest() {
        let m = |i: i64, p, f| MinuteStats {
            minute_ms: i * 60_000,
            processed: p,
            failed: f,
            ..MinuteStats::default()
        };
        let c = chart(&[m(0, 1, 0), m(1, 2, 1), m(2, 4, 0), m(3, 0, 0)], 2);
        assert_eq!(c.bars.len(), 2);
        assert_eq!((c.processed, c.failed), (7, 1));
        assert_eq!(c.max_label, "4");
        assert_eq!(c.bars[0].title, "01-01 00:00 UTC: 3 processed, 1 failed");
        assert_eq!(c.start_iso, "1970-01-01T00:00:00.000Z");
        assert_eq!(c.bars[1].processed_h, "120.00");
    }
}
