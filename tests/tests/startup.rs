//! Start-up checks: a Redis that may evict keys is refused with a clear
//! message, and so is one that wants a password the URL lacks.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use spool_tests::handlers::{with_fixtures, Recorder};
use spool_tests::TestEnv;

/// With `maxmemory-policy allkeys-lru` the worker refuses to start and says
/// why and how to fix it; with `noeviction` it starts.
#[tokio::test]
async fn evicting_redis_is_refused_at_start_up() {
    let env = TestEnv::start().await;
    let mut raw = env.raw().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut raw)
        .await
        .unwrap();
    let worker = with_fixtures(env.worker(), &Recorder::default())
        .build()
        .unwrap();
    let err = worker
        .run_until(std::future::pending())
        .await
        .expect_err("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("allkeys-lru") && msg.contains("noeviction"),
        "{msg}"
    );

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query_async(&mut raw)
        .await
        .unwrap();
    let worker = with_fixtures(env.worker(), &Recorder::default())
        .build()
        .unwrap();
    worker
        .run_until(async {})
        .await
        .expect("starts and stops cleanly");
    let check = env.client.check_server().await.unwrap();
    assert!(
        check.persistence_off(),
        "test redis runs without persistence: {check:?}"
    );
}

/// A worker without handlers or with a bad queue name does not build.
#[tokio::test]
async fn bad_worker_configuration_is_refused_at_build() {
    let env = TestEnv::start().await;
    let err = env.worker().build().expect_err("no handlers");
    assert!(err.to_string().contains("no job handlers"), "{err}");
    let err = with_fixtures(env.worker().queue("bad queue", 1), &Recorder::default())
        .build()
        .expect_err("bad name");
    assert!(err.to_string().contains("invalid queue name"), "{err}");
}

/// A Redis that wants a password the URL does not give: `connect` fails at
/// once, naming the server and what to put in the URL (not at the first
/// enqueue with a bare `NOAUTH`); the `spool` CLI and the dashboard exit 1
/// with that message, said once.
#[tokio::test]
async fn a_password_the_url_lacks_fails_at_connect_with_a_clear_error() {
    let redis = spool_tests::TestRedis::builder()
        .requirepass("the-password")
        .start();
    let url = format!("redis://127.0.0.1:{}", redis.port());
    let err = spool_client::Client::connect(&url)
        .await
        .expect_err("no password");
    let msg = err.to_string();
    assert!(
        msg.contains(&url)
            && msg.contains("requires a password")
            && msg.contains("redis://:PASSWORD@"),
        "{msg}"
    );
    for (bin, args) in [
        ("spool", vec!["--redis-url", url.as_str(), "stats"]),
        (
            "spool-dashboard",
            vec!["--redis-url", url.as_str(), "--bind", "127.0.0.1:0"],
        ),
    ] {
        let out = std::process::Command::new(spool_tests::dashboard::fresh_binary(bin))
            .args(&args)
            .env_remove("REDIS_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bin}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{bin}: {stderr}"));
        assert!(line.contains("requires a password"), "{bin}: {line}");
        assert_eq!(
            line.matches("NOAUTH").count(),
            1,
            "{bin} says it once: {line}"
        );
    }
}
