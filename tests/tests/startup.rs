//! Start-up checks: a Redis that may evict keys is refused with a clear message.

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
