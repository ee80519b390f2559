//! Secrets: credential files are private (and a wider mode is reported),
//! every type holding a token redacts it in `Debug`/`Display`, and `-vvv`
//! output never shows a token or the client id.

use nemo_core::api::{self, Api, Attribution};
use nemo_core::machine::{Config, Credential, Event};
use nemo_core::secret::{redact, Secret, MASK};
use nemo_core::wire::{Header, HeaderValue, Response};
use nemo_http::{HttpConfig, HttpTransport};

use crate::support::{leaks, Sim};

const TOKEN: &str = "nmv_usr_0123456789abcdef0123456789abcdef";

fn assert_hidden(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} shows the token: {text}");
    assert!(
        !text.contains("0123456789abcdef"),
        "{what} shows part of the token: {text}"
    );
}

#[test]
fn every_type_holding_a_token_redacts_it() {
    let secret = Secret::new(TOKEN);
    assert_hidden("Secret Debug", &format!("{secret:?}"));
    assert_hidden("Secret Display", &format!("{secret}"));
    assert_hidden("Secret {:#?}", &format!("{secret:#?}"));
    assert!(format!("{secret}").contains(MASK));
    assert_hidden(
        "redact",
        &redact(&format!("Bearer {TOKEN} failed"), &[&secret]),
    );

    let header = Header {
        name: "authorization",
        value: HeaderValue::Sensitive(Secret::new(format!("Bearer {TOKEN}"))),
    };
    assert_hidden("Header Debug", &format!("{header:?}"));

    let api = Api::new(Attribution::default());
    for request in [
        api.credits(&secret),
        api.state(&secret, "s1"),
        api.run_sse(&secret, "s1", "hello"),
        api.create_session(&secret, "en"),
        api.render_status(&secret, "render_1"),
        api.download_fallback(&secret, "render_1"),
        api.claim_token(&secret, "t1", "s1"),
        api.upload_urls(&secret, "s1", &["https://example.com/a.mp4".to_owned()]),
    ] {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "the wire still carries it"
        );
        assert_hidden("Request Debug", &format!("{request:?}"));
        assert_hidden("Request {:#?}", &format!("{request:#?}"));
    }
    let anon = api.anonymous_token("6f1c2d3e-aaaa-bbbb-cccc-0123456789ab");
    let shown = format!("{anon:?}");
    assert!(
        !shown.contains("6f1c2d3e-aaaa-bbbb-cccc-0123456789ab"),
        "client id in Request Debug: {shown}"
    );

    // The transport and its configuration (credentials in a URL are cut).
    let config = HttpConfig::new(format!(
        "https://user:{TOKEN}@api.example.com/?token={TOKEN}"
    ));
    assert_hidden("HttpConfig Debug", &format!("{config:?}"));
    let transport = HttpTransport::new(config).expect("transport");
    assert_hidden("HttpTransport Debug", &format!("{transport:?}"));

    // The machine's configuration and events.
    for credential in [
        Credential::User(secret.clone()),
        Credential::Anonymous {
            token: secret.clone(),
            user_id: Some("anon_1".into()),
        },
    ] {
        assert_hidden("Credential Debug", &format!("{credential:?}"));
        let config = Config {
            credential,
            ..Config::default()
        };
        assert_hidden("Config Debug", &format!("{config:?}"));
    }
    let event = Event::TokenIssued {
        token: secret.clone(),
        user_id: Some("anon_1".into()),
        expires_at: None,
    };
    assert_hidden("Event::TokenIssued Debug", &format!("{event:?}"));

    // Parsed answers holding tokens.
    let grant = Response::json(
        200,
        &serde_json::json!({"code": 0, "data": {"token": TOKEN, "user_id": "anon_1", "credits": 100}}),
    );
    let parsed: api::AnonymousToken = api::parse(&grant).expect("grant");
    assert_eq!(parsed.token.expose(), TOKEN);
    assert_hidden("AnonymousToken Debug", &format!("{parsed:?}"));
    let claim = Response::json(
        200,
        &serde_json::json!({"code": 0, "data": {"claim_token": TOKEN, "expires_in": 600}}),
    );
    let parsed: api::ClaimToken = api::parse(&claim).expect("claim");
    assert_hidden("ClaimToken Debug", &format!("{parsed:?}"));
    // A token echoed back in an error body is not repeated in the error.
    let echoed = Response::json(
        401,
        &serde_json::json!({"code": 1001, "message": "bad token"}),
    );
    let err = api::payload(&echoed).expect_err("an error");
    assert_hidden("ResponseError Display", &err.to_string());
}

#[cfg(unix)]
#[test]
fn credential_files_are_private_and_a_wider_mode_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let mut sim = Sim::faults("");
    // A config dir that nemo creates itself.
    sim.cfg_dir = sim.cfg.path().join("nemovideo");
    sim.sample();
    let r = sim.run(&["upload", "sample.mp4"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let r = sim.run(&["export", "--no-download"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    let cfg = sim.cfg_dir.clone();
    let cfg = cfg.as_path();
    assert_eq!(mode(cfg), 0o700, "the config dir");
    for name in ["client_id", "tokens.json", "sessions.json", "jobs.json"] {
        let p = cfg.join(name);
        assert!(p.exists(), "{name} written");
        assert_eq!(mode(&p), 0o600, "{name}");
    }
    assert!(!r.stderr.contains("readable by other users"));

    // A token cache opened up by someone else is reported, with the fix.
    let tokens = cfg.join("tokens.json");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let r = sim.run(&["credits"]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    assert!(
        r.stderr
            .contains("tokens.json is readable by other users (mode 644)")
            && r.stderr.contains("chmod 600"),
        "{}",
        r.both()
    );
    let clients = cfg.join("client_id");
    std::fs::set_permissions(&clients, std::fs::Permissions::from_mode(0o604)).expect("chmod");
    let r = sim.run(&["credits"]);
    assert!(
        r.stderr.contains("client_id is readable by other users"),
        "{}",
        r.both()
    );
}

#[test]
fn very_verbose_output_shows_no_credential() {
    let sim = Sim::faults("token:expire@2;state:503@1;run_sse:reset@1");
    sim.sample();
    let mut runs = Vec::new();
    for args in [
        vec!["-vvv", "upload", "sample.mp4"],
        vec!["-vvv", "say", "add lo-fi background music at 35%"],
        vec!["-vvv", "--json", "credits"],
        vec!["-vvv", "timeline"],
        vec!["-vvv", "export", "--out", "final.mp4"],
        vec!["-vvv", "jobs"],
    ] {
        let r = sim.run(&args);
        assert!(matches!(r.code, Some(0 | 2)), "{args:?}: {}", r.both());
        runs.push(r);
    }
    let secrets = sim.secrets();
    assert_eq!(secrets.len(), 2, "a token and a client id: {secrets:?}");
    let texts: Vec<&str> = runs
        .iter()
        .flat_map(|r| [r.stdout.as_str(), r.stderr.as_str()])
        .collect();
    let found = leaks(&secrets, &texts);
    assert!(found.is_empty(), "{found:?}");
    // -vvv did print more than the default.
    assert!(
        runs.iter().any(|r| r.stderr.contains("session")),
        "{}",
        runs[1].both()
    );

    // A rejected NEMO_TOKEN is named, never shown.
    let mut cmd = sim.nemo();
    cmd.env("NEMO_TOKEN", TOKEN).args(["-vvv", "credits"]);
    let r = crate::support::Run::of(cmd);
    assert_eq!(r.code, Some(1), "{}", r.both());
    assert!(r.stderr.contains("NEMO_TOKEN"), "{}", r.both());
    assert_hidden("a rejected NEMO_TOKEN", &(r.stdout.clone() + &r.stderr));
}
