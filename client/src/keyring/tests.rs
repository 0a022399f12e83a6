use super::*;

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid JSON")
}

fn ring() -> Keyring {
    Keyring::new("k2", [2; 32])
        .and_then(|k| k.with_key("k1", [1; 32]))
        .expect("valid keyring")
}

fn record(args: &str) -> JobRecord {
    JobRecord::from_json(&format!(
        r#"{{"id":"j1","attempt":0,"max_attempts":3,"enqueued_ms":1,"type":"t","queue":"q","args":{args},"created_ms":1}}"#
    ))
    .expect("record decodes")
}

#[test]
fn args_round_trip_bound_to_type_and_id() {
    let k = ring();
    let sealed = k
        .encrypt_args("t", "j1", &raw(r#"{"secret":"MARKER"}"#))
        .expect("seals");
    assert!(sealed.get().starts_with("\"spool:enc:v1:k2:"));
    assert!(!sealed.get().contains("MARKER"));
    let env = Envelope::parse(sealed.get())
        .expect("envelope")
        .expect("valid");
    assert_eq!(env.key_id, "k2");
    assert_eq!(
        k.decrypt_args("t", "j1", &env).expect("opens").get(),
        r#"{"secret":"MARKER"}"#
    );
    // Swapped to another job, another type, or read as a result: no.
    for (ty, id) in [("t", "j2"), ("u", "j1")] {
        assert!(matches!(
            k.decrypt_args(ty, id, &env),
            Err(DecryptError::Authentication { .. })
        ));
    }
    assert!(k.decrypt_result("t", "j1", &env).is_err());
    let mut rec = record(sealed.get());
    assert_eq!(rec.encrypted_key_id().as_deref(), Some("k2"));
    assert_eq!(rec.decrypt_args(Some(&k)), Ok(true));
    assert_eq!(rec.args.get(), r#"{"secret":"MARKER"}"#);
    assert_eq!(
        rec.decrypt_args(Some(&k)),
        Ok(false),
        "plain args are left alone"
    );
}

#[test]
fn nonces_differ_per_seal() {
    let k = ring();
    let a = k.encrypt_args("t", "j", &raw("1")).expect("seals");
    let b = k.encrypt_args("t", "j", &raw("1")).expect("seals");
    assert_ne!(a.get(), b.get());
}

#[test]
fn rotation_old_keys_open_new_key_seals() {
    let old = Keyring::new("k1", [1; 32]).expect("keyring");
    let sealed = old.encrypt_args("t", "j1", &raw("[1]")).expect("seals");
    let rotated = ring();
    let mut rec = record(sealed.get());
    assert_eq!(rec.decrypt_args(Some(&rotated)), Ok(true));
    let new = rotated.encrypt_args("t", "j1", &raw("[1]")).expect("seals");
    assert_eq!(record(new.get()).encrypted_key_id().as_deref(), Some("k2"));
}

#[test]
fn wrong_or_missing_key_is_a_clear_error_and_keeps_the_record() {
    let sealed = ring().encrypt_args("t", "j1", &raw("[1]")).expect("seals");
    let mut rec = record(sealed.get());
    let wrong = Keyring::new("k2", [9; 32]).expect("keyring");
    let e = rec.decrypt_args(Some(&wrong)).expect_err("wrong key");
    assert_eq!(
        e.to_string(),
        "authentication failed with key id 'k2': wrong key or tampered data"
    );
    let other = Keyring::new("k3", [3; 32]).expect("keyring");
    let e = rec.decrypt_args(Some(&other)).expect_err("missing key");
    assert_eq!(e.to_string(), "key id 'k2' not in this keyring");
    assert!(matches!(
        rec.decrypt_args(None),
        Err(DecryptError::NoKeyring { .. })
    ));
    assert_eq!(rec.args.get(), sealed.get(), "record unchanged");
}

#[test]
fn hostile_envelopes_are_errors_not_panics() {
    let valid_b64 = STANDARD.encode([0u8; 40]);
    let cases = [
        r#""spool:enc:""#.to_owned(),
        r#""spool:enc:v2:k1:AAAA""#.to_owned(),
        r#""spool:enc:v1:""#.to_owned(),
        r#""spool:enc:v1:k1""#.to_owned(),
        r#""spool:enc:v1::AAAA""#.to_owned(),
        format!(r#""spool:enc:v1:{}:{valid_b64}""#, "k".repeat(65)),
        r#""spool:enc:v1:k 1:AAAA""#.to_owned(),
        r#""spool:enc:v1:k1:not base64!""#.to_owned(),
        r#""spool:enc:v1:k1:AAAA""#.to_owned(),
        r#""spool:enc:v1:k1:\u0000\u00ff""#.to_owned(),
        format!(r#""spool:enc:v1:k1:{}""#, STANDARD.encode([0u8; 27])),
    ];
    for case in &cases {
        let parsed = Envelope::parse(case).expect("looks like an envelope");
        assert!(matches!(parsed, Err(DecryptError::Malformed(_))), "{case}");
        let mut rec = record(case);
        assert!(rec.decrypt_args(Some(&ring())).is_err(), "{case}");
    }
    // Well-formed but garbage ciphertext: authentication fails.
    let mut rec = record(&format!(r#""spool:enc:v1:k1:{valid_b64}""#));
    assert!(matches!(
        rec.decrypt_args(Some(&ring())),
        Err(DecryptError::Authentication { .. })
    ));
    // Not envelopes at all.
    for json in [
        r#""spool:encrypted""#,
        "{}",
        "[]",
        "12",
        r#""plain""#,
        "\"unterminated",
        "",
        " ",
    ] {
        assert!(Envelope::parse(json).is_none(), "{json}");
    }
    // An escaped prefix is still an envelope (JSON decides, not bytes).
    let escaped = format!(r#""\u0073pool:enc:v1:k1:{valid_b64}""#);
    assert!(matches!(Envelope::parse(&escaped), Some(Ok(_))));
    assert_eq!(envelope_key_id(r#""spool:enc:v1:k1:AAA"#), Some("k1"));
    assert_eq!(envelope_key_id(r#""spool:enc:v1:k1"#), None);
    assert_eq!(envelope_key_id(r#""spool:enc:v1:k/1:AA"#), None);
}

#[test]
fn keyring_text_parses_first_key_active_and_never_prints_keys() {
    let text = format!(
        " k2 = {} , k1={}",
        Keyring::encode_key(&[2; 32]),
        Keyring::encode_key(&[1; 32])
    );
    let k = Keyring::parse(&text).expect("parses");
    assert_eq!(k.active_key_id(), "k2");
    assert_eq!(k.key_ids(), vec!["k1", "k2"]);
    let debug = format!("{k:?}");
    assert!(!debug.contains(&Keyring::encode_key(&[2; 32])));
    let short = Keyring::encode_key(&[1; 32]).replace("AQE", "");
    for bad in [
        String::new(),
        "k1".to_owned(),
        format!("k1={short}"),
        "k1=%%%".to_owned(),
    ] {
        assert!(Keyring::parse(&bad).is_err(), "{bad}");
    }
    let twice = format!("k1={0},k1={0}", Keyring::encode_key(&[1; 32]));
    assert!(Keyring::parse(&twice).is_err());
    assert!(Keyring::new("bad id", [0; 32]).is_err());
}

/// The cost of encryption per job with 1 KiB args: one seal (enqueue) and
/// one open (worker). Prints jobs/s; run it in release:
/// `cargo test --release -p spool-client --lib keyring::tests::seal_and_open_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
#[allow(clippy::print_stdout)] // a measurement prints its number
fn seal_and_open_cost() {
    let k = ring();
    let args = raw(&format!(r#"{{"blob":"{}"}}"#, "x".repeat(1013)));
    assert_eq!(args.get().len(), 1024);
    let n = 100_000_u32;
    let started = std::time::Instant::now();
    for i in 0..n {
        let id = format!("job-{i}");
        let sealed = k.encrypt_args("t", &id, &args).expect("seals");
        let env = Envelope::parse(sealed.get())
            .expect("envelope")
            .expect("valid");
        let opened = k.decrypt_args("t", &id, &env).expect("opens");
        assert_eq!(opened.get().len(), 1024);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seal+open of 1 KiB args: {:.1} µs per job, {:.0} jobs/s on one core",
        secs * 1e6 / f64::from(n),
        f64::from(n) / secs
    );
}
