//! Signed webhooks against a real Redis and a real HTTP receiver on
//! loopback: the receiver verifies the signature (with the `hmac` crate,
//! not the worker's `ring`) over the exact body; answers of 500, 500, 200
//! give exactly three deliveries with one delivery id; bad URLs are refused
//! at enqueue; a host outside the worker's allow-list is never called.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use spool_client::{Client, EnqueueOptions, FixedDelay, JobSet};
use spool_tests::dashboard::DashboardServer;
use spool_tests::handlers::{with_fixtures, Noop, Recorder, Scripted};
use spool_tests::{wait_for, RunningWorker, TestEnv};
use spool_worker::WebhookConfig;

const SECRET: &str = "whsec-test-5b1f";

/// One request the receiver got: its headers and exact body.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver that answers 500 to the first `fail_first` requests, then 200.
async fn receiver(fail_first: usize) -> (DashboardServer, Received) {
    let got = Received::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                move |State(got): State<Received>, headers: HeaderMap, body: Bytes| async move {
                    let mut got = got.lock().unwrap();
                    got.push((headers, body));
                    if got.len() <= fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        )
        .with_state(got.clone());
    (DashboardServer::start(app).await, got)
}

/// What a receiver does with `Spool-Signature: t=…,v1=…`: HMAC-SHA256 of
/// `"<t>.<body>"` with the shared secret, compared with `v1`.
fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(sig) = headers.get("spool-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .concat();
    expected == v1
}

fn webhook_worker(env: &TestEnv, rec: &Recorder, config: WebhookConfig) -> RunningWorker {
    let w = with_fixtures(env.worker(), rec)
        .webhooks(config.retry_policy(FixedDelay(Duration::from_millis(100))))
        .build()
        .unwrap();
    RunningWorker::start(w)
}

/// A job with a webhook: the receiver gets the signed outcome; two 500s
/// then a 200 make exactly three deliveries, all with the same delivery id.
#[tokio::test]
async fn deliveries_are_signed_and_retried_until_a_2xx() {
    let env = TestEnv::start().await;
    let (server, got) = receiver(2).await;
    let url = format!("{}/hook", server.url());
    let rec = Recorder::default();
    let worker = webhook_worker(&env, &rec, WebhookConfig::new(SECRET));
    let id = env
        .client
        .enqueue_with(&Noop { n: 1 }, EnqueueOptions::new().webhook(&url))
        .await
        .unwrap()
        .id;
    wait_for("three deliveries", Duration::from_secs(20), || async {
        got.lock().unwrap().len() >= 3
    })
    .await;
    // No fourth: the third answer was a 200.
    tokio::time::sleep(Duration::from_millis(800)).await;
    worker.stop().await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let delivery: Vec<&str> = got
        .iter()
        .map(|(h, _)| h.get("spool-delivery").unwrap().to_str().unwrap())
        .collect();
    assert!(delivery.iter().all(|d| *d == delivery[0]), "{delivery:?}");
    for (headers, body) in &got {
        assert!(verify(headers, body), "signature does not verify");
        assert_eq!(headers.get("content-type").unwrap(), "application/json");
    }
    // The exact body: the tampered one does not verify.
    let (headers, body) = &got[0];
    let mut tampered = body.to_vec();
    tampered[0] = b' ';
    assert!(!verify(headers, &tampered));
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["delivery_id"], delivery[0]);
    assert_eq!(json["job"]["id"], id.as_str());
    assert_eq!(json["job"]["type"], "noop");
    assert_eq!(json["job"]["queue"], "default");
    assert_eq!(json["job"]["state"], "done");
    assert_eq!(json["job"]["attempts"], 1);
    assert!(json["job"]["finished_ms"].as_i64().unwrap() > 0);
    assert!(json["job"]["result"].is_null() && json["job"]["error"].is_null());
    server.stop().await;
}

/// A dead job's webhook says so, with its error; a job type's webhook
/// (`JobOptions::webhook`) is delivered like an enqueue's.
#[tokio::test]
async fn a_dead_job_is_reported_with_its_error() {
    let env = TestEnv::start().await;
    let (server, got) = receiver(0).await;
    let url = format!("{}/hook", server.url());
    let rec = Recorder::default();
    let worker = webhook_worker(&env, &rec, WebhookConfig::new(SECRET));
    let doomed = Scripted {
        fail_times: u32::MAX,
        permanent: true,
        ..Scripted::ok("doomed")
    };
    env.client
        .enqueue_with(&doomed, EnqueueOptions::new().webhook(&url))
        .await
        .unwrap();
    wait_for("one delivery", Duration::from_secs(20), || async {
        !got.lock().unwrap().is_empty()
    })
    .await;
    worker.stop().await;
    let (headers, body) = got.lock().unwrap()[0].clone();
    assert!(verify(&headers, &body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["job"]["state"], "dead");
    assert_eq!(json["job"]["type"], "scripted");
    assert_eq!(json["job"]["error"], "scripted failure on run 1");
    server.stop().await;
}

/// Bad URLs fail the enqueue with a clear error and create nothing; a
/// client's host list refuses other hosts; a worker's allow-list sends a
/// delivery to another host to the dead set without calling it.
#[tokio::test]
async fn bad_urls_are_refused_and_allow_lists_hold() {
    let env = TestEnv::start().await;
    for bad in [
        "not a url",
        "ftp://127.0.0.1/hook",
        "http://user:pw@127.0.0.1/hook",
        "file:///etc/passwd",
    ] {
        let err = env
            .client
            .enqueue_with(&Noop { n: 1 }, EnqueueOptions::new().webhook(bad))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("webhook URL"), "{bad}: {err}");
    }
    assert_eq!(env.client.admin().queue("default").await.unwrap().ready, 0);
    let strict = Client::builder(&env.redis.url())
        .webhook_hosts(["hooks.example.com"])
        .connect()
        .await
        .unwrap();
    let err = strict
        .enqueue_with(
            &Noop { n: 1 },
            EnqueueOptions::new().webhook("http://127.0.0.1:9/hook"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allowed webhook hosts"), "{err}");

    let (server, got) = receiver(0).await;
    let rec = Recorder::default();
    let worker = webhook_worker(
        &env,
        &rec,
        WebhookConfig::new(SECRET).allow_hosts(["hooks.example.com"]),
    );
    env.client
        .enqueue_with(
            &Noop { n: 2 },
            EnqueueOptions::new().webhook(format!("{}/hook", server.url())),
        )
        .await
        .unwrap();
    let admin = env.client.admin();
    wait_for("the delivery dead", Duration::from_secs(20), || async {
        admin.queue("webhooks").await.unwrap().dead == 1
    })
    .await;
    worker.stop().await;
    assert!(
        got.lock().unwrap().is_empty(),
        "the refused host was called"
    );
    let dead = admin
        .list_set("webhooks", JobSet::Dead, 0, 1)
        .await
        .unwrap();
    let error = &dead.items[0].last_error().unwrap().error;
    assert!(error.contains("allowed webhook hosts"), "{error}");
    assert!(with_fixtures(env.worker(), &rec)
        .webhooks(WebhookConfig::new(""))
        .build()
        .is_err());
    server.stop().await;
}
