//! event-consumer: a member of an event consumer group that the events
//! tests SIGKILL mid-batch.
//!
//! Reads batches of `--batch` events through group `--group` as consumer
//! `--consumer`; for each event sleeps `--sleep-ms`, appends `<queue>
//! <event id> <consumer>` to the file named by `--record` (one `write` with
//! `O_APPEND`, so a SIGKILL never leaves half a line), then acknowledges
//! it. Runs until killed.
//!
//! Usage: event-consumer --redis-url URL --record FILE --group G
//!        --consumer C [--batch N] [--sleep-ms MS]

use std::io::Write;
use std::time::Duration;

use spool_client::Client;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let need = |name: &str| {
        spool_tests::flag_value(&args, name).ok_or_else(|| anyhow::anyhow!("{name} is required"))
    };
    let url = need("--redis-url")?;
    let record = need("--record")?;
    let group = need("--group")?;
    let consumer = need("--consumer")?;
    let batch: usize = spool_tests::flag_value(&args, "--batch").map_or(Ok(50), |v| v.parse())?;
    let sleep_ms: u64 =
        spool_tests::flag_value(&args, "--sleep-ms").map_or(Ok(5), |v| v.parse())?;

    let client = Client::connect(&url).await?;
    let mut events = client
        .events()
        .from_start()
        .batch(batch)
        .group(&group, &consumer)?;
    loop {
        for event in events.next_batch().await? {
            tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&record)?
                .write_all(format!("{} {} {consumer}\n", event.queue, event.id).as_bytes())?;
            events.ack(std::slice::from_ref(&event)).await?;
        }
    }
}
