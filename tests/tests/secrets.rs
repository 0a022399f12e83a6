//! The Redis password never reaches any output of the real binaries
//! (`spool`, `spool-dashboard`): not on a wrong password (a private Redis
//! with `requirepass`), not on an unreachable port, not for a URL that does
//! not parse, not in `--help` (where clap would print `REDIS_URL`'s value),
//! at any log level.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use spool_tests::dashboard::fresh_binary;
use spool_tests::TestEnv;

const SECRET: &str = "Sup3rS3cretPassw0rd";

/// Runs `bin` with `args` (and `REDIS_URL` when given), killing it after
/// 20 s; returns its output.
fn run(bin: &str, args: &[&str], env_url: Option<&str>) -> Output {
    let mut cmd = Command::new(fresh_binary(bin));
    cmd.args(args)
        .env("RUST_LOG", "trace")
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(u) = env_url {
        cmd.env("REDIS_URL", u);
    }
    let mut child = cmd.spawn().expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn assert_hidden(what: &str, out: &Output) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(SECRET), "{what} printed the password:\n{all}");
    assert!(!all.is_empty(), "{what} printed nothing");
}

#[tokio::test]
async fn binaries_never_print_the_redis_password() {
    let mut env = TestEnv::start().await;
    let mut raw = env.raw().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("the-right-one")
        .query_async(&mut raw)
        .await
        .unwrap();
    let port = env.redis.port();
    let urls = [
        format!("redis://:{SECRET}@127.0.0.1:{port}"),
        format!("redis://ops:{SECRET}@127.0.0.1:1"),
        format!("redis://:{SECRET}@127.0.0.1:notaport"),
        format!("redis//:{SECRET}@@nope"),
        format!("rediss://:{SECRET}@127.0.0.1:1"),
        format!("redis+sentinel://:{SECRET}@127.0.0.1:1,127.0.0.1:2/mymaster"),
        format!("redis+sentinel://127.0.0.1:1/mymaster?sentinel_password={SECRET}"),
        format!("redis+cluster://app:{SECRET}@127.0.0.1:1,127.0.0.1:x"),
        format!("rediss+cluster://app:{SECRET}@127.0.0.1:1"),
    ];
    for url in &urls {
        // The CLI: flag, `--flag=value` and environment forms.
        let flag = format!("--redis-url={url}");
        for (what, args, env_url) in [
            (
                "spool --redis-url URL stats",
                vec!["--redis-url", url, "stats"],
                None,
            ),
            (
                "spool --redis-url=URL queues",
                vec![flag.as_str(), "queues"],
                None,
            ),
            (
                "REDIS_URL spool dead list",
                vec!["dead", "list"],
                Some(url.as_str()),
            ),
            ("REDIS_URL spool --help", vec!["--help"], Some(url.as_str())),
            (
                "spool --redis-url URL --bogus",
                vec!["--redis-url", url, "--bogus"],
                None,
            ),
        ] {
            let out = run("spool", &args, env_url);
            assert_ne!(out.status.code(), Some(101), "{what}: panicked");
            assert_hidden(&format!("{what} ({url})"), &out);
        }
        let out = run(
            "spool-dashboard",
            &["--bind", "127.0.0.1:0", "--redis-url", url],
            None,
        );
        assert_eq!(out.status.code(), Some(1), "spool-dashboard with {url}");
        assert_hidden(&format!("spool-dashboard ({url})"), &out);
        let out = run("spool-dashboard", &["--bind", "127.0.0.1:0"], Some(url));
        assert_hidden(&format!("REDIS_URL spool-dashboard ({url})"), &out);
        let out = run("spool-dashboard", &["--help"], Some(url));
        assert_eq!(out.status.code(), Some(0));
        assert_hidden(&format!("REDIS_URL spool-dashboard --help ({url})"), &out);
    }
}
