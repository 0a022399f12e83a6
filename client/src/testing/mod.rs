//! Test helpers for applications (the `testing` feature): a
//! [`FakeClient`] that records enqueues instead of sending them to Redis,
//! so code that holds a [`Client`](crate::Client) can be unit-tested
//! without a server, and a [`RedisServer`] that starts a private
//! `redis-server` for integration tests.
//!
//! `spool-worker`'s `testing` feature adds the inline runner that drains a
//! fake client's jobs through real handlers.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use spool_client::{testing::FakeClient, Client, Job};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct SendEmail { to: String }
//! impl Job for SendEmail { const TYPE: &'static str = "send_email"; }
//!
//! // The code under test takes a plain Client.
//! async fn sign_up(client: &Client, email: &str) -> spool_client::Result<()> {
//!     client.enqueue(&SendEmail { to: email.to_owned() }).await?;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let fake = FakeClient::new();
//! sign_up(&fake.client(), "ada@example.com").await.unwrap();
//! assert_eq!(fake.jobs::<SendEmail>(), [SendEmail { to: "ada@example.com".into() }]);
//! assert_eq!(fake.enqueued()[0].queue(), "default");
//! # }
//! ```

mod fake_client;
mod redis_server;

pub(crate) use fake_client::Recorder;
pub use fake_client::{FakeClient, RecordedJob};
pub use redis_server::{
    answers_ping, free_port, redis_server_binary, RedisProcess, RedisServer, REDIS_SERVER_ENV,
};

#[cfg(test)]
mod tests;
