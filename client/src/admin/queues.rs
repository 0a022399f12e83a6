//! Queues: depth, latency, paused flag; pause and resume; clearing ready jobs.

use std::time::Duration;

use serde::Serialize;

use super::Admin;
use crate::error::{Error, Result};
use crate::keys::QueueKeys;

/// One queue at a glance.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Jobs in the ready list.
    pub ready: u64,
    /// Jobs leased by workers.
    pub active: u64,
    /// Jobs waiting for their time.
    pub scheduled: u64,
    /// Jobs waiting for a retry.
    pub retry: u64,
    /// Dead jobs.
    pub dead: u64,
    /// Whether fetching is paused.
    pub paused: bool,
    /// Age of the oldest ready job (zero when empty), by Redis's clock.
    #[serde(serialize_with = "ser_ms")]
    pub latency: Duration,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reads `enqueued_ms` from a record's script-owned prefix.
fn enqueued_ms(record: &str) -> Option<i64> {
    let at = record.find("\"enqueued_ms\":")? + "\"enqueued_ms\":".len();
    let digits: String = record[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl Admin {
    /// Names of every known queue, sorted.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn queue_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&self.client.global_keys().queues)
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("SMEMBERS queues"))?;
        names.sort();
        Ok(names)
    }

    /// Every known queue with its counts, in one round trip.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let names = self.queue_names().await?;
        self.queue_infos(&names).await
    }

    /// One queue (which need not be registered yet).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn queue(&self, name: &str) -> Result<QueueInfo> {
        self.client.queue_keys(name)?;
        let mut infos = self.queue_infos(&[name.to_owned()]).await?;
        infos
            .pop()
            .ok_or_else(|| Error::InvalidArgument("no such queue".to_owned()))
    }

    async fn queue_infos(&self, names: &[String]) -> Result<Vec<QueueInfo>> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        let all_keys: Vec<QueueKeys> = names
            .iter()
            .map(|n| QueueKeys::new(self.client.namespace(), n))
            .collect();
        for k in &all_keys {
            pipe.cmd("LLEN").arg(&k.ready);
            pipe.cmd("LINDEX").arg(&k.ready).arg(-1);
            pipe.cmd("EXISTS").arg(&k.paused);
            pipe.cmd("ZCARD").arg(&k.active);
            pipe.cmd("ZCARD").arg(&k.scheduled);
            pipe.cmd("ZCARD").arg(&k.retry);
            pipe.cmd("ZCARD").arg(&k.dead);
        }
        let mut replies: Vec<redis::Value> = pipe
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("queues"))?;
        let mut it = replies.drain(..);
        let (secs, micros): (i64, i64) =
            redis::from_redis_value(it.next().unwrap_or(redis::Value::Nil))
                .map_err(Error::parse("TIME"))?;
        let now = secs * 1000 + micros / 1000;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let mut next = || -> Result<redis::Value> {
                it.next()
                    .ok_or_else(|| Error::InvalidArgument("short pipeline reply".to_owned()))
            };
            let ready: u64 = redis::from_redis_value(next()?).map_err(Error::parse("LLEN"))?;
            let oldest: Option<String> =
                redis::from_redis_value(next()?).map_err(Error::parse("LINDEX"))?;
            let paused: bool = redis::from_redis_value(next()?).map_err(Error::parse("EXISTS"))?;
            let active: u64 = redis::from_redis_value(next()?).map_err(Error::parse("ZCARD"))?;
            let scheduled: u64 = redis::from_redis_value(next()?).map_err(Error::parse("ZCARD"))?;
            let retry: u64 = redis::from_redis_value(next()?).map_err(Error::parse("ZCARD"))?;
            let dead: u64 = redis::from_redis_value(next()?).map_err(Error::parse("ZCARD"))?;
            let latency = oldest
                .as_deref()
                .and_then(enqueued_ms)
                .map_or(Duration::ZERO, |at| {
                    Duration::from_millis(u64::try_from(now - at).unwrap_or(0))
                });
            out.push(QueueInfo {
                name: name.clone(),
                ready,
                active,
                scheduled,
                retry,
                dead,
                paused,
                latency,
            });
        }
        Ok(out)
    }

    /// Adds queues to the registry of known queues (workers do this at
    /// start-up so empty queues show up too).
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn register_queues(&self, names: &[&str]) -> Result<()> {
        for n in names {
            crate::keys::validate_queue_name(n)?;
        }
        if names.is_empty() {
            return Ok(());
        }
        redis::cmd("SADD")
            .arg(&self.client.global_keys().queues)
            .arg(names)
            .exec_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("SADD queues"))
    }

    /// Pauses a queue: workers stop fetching from it; enqueues still land.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn pause(&self, queue: &str) -> Result<()> {
        let k = self.client.queue_keys(queue)?;
        redis::pipe()
            .cmd("SET")
            .arg(&k.paused)
            .arg(1)
            .ignore()
            .cmd("SADD")
            .arg(&self.client.global_keys().queues)
            .arg(queue)
            .ignore()
            .exec_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("pause"))
    }

    /// Resumes a paused queue and wakes its fetchers.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn resume(&self, queue: &str) -> Result<()> {
        let k = self.client.queue_keys(queue)?;
        redis::pipe()
            .cmd("DEL")
            .arg(&k.paused)
            .ignore()
            .cmd("LPUSH")
            .arg(&k.wake)
            .arg(1)
            .ignore()
            .cmd("LTRIM")
            .arg(&k.wake)
            .arg(0)
            .arg(0)
            .ignore()
            .exec_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("resume"))
    }

    /// Deletes every ready job of a queue; returns how many there were.
    ///
    /// # Errors
    /// [`Error::InvalidQueueName`], [`Error::Redis`].
    pub async fn clear_ready(&self, queue: &str) -> Result<u64> {
        let k = self.client.queue_keys(queue)?;
        let (len, _): (u64, u64) = redis::pipe()
            .atomic()
            .cmd("LLEN")
            .arg(&k.ready)
            .cmd("DEL")
            .arg(&k.ready)
            .query_async(&mut self.client.conn())
            .await
            .map_err(Error::redis("clear ready"))?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn enqueued_ms_is_read_from_the_prefix() {
        let r = r#"{"id":"a","attempt":0,"max_attempts":1,"enqueued_ms":1234,"type":"t"}"#;
        assert_eq!(super::enqueued_ms(r), Some(1234));
        assert_eq!(super::enqueued_ms("junk"), None);
    }
}
