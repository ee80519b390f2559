//! Fault plans over HTTP: resets, delays, determinism.

use std::time::{Duration, Instant};

use nemo_core::wire::Endpoint;
use nemo_mock::{AgentBehaviour, FaultPlan, MockConfig};

use super::raw::*;

#[tokio::test]
async fn reset_in_the_middle_of_a_body() {
    let server = server(MockConfig {
        faults: FaultPlan::parse("state:reset@1;credits:reset=5").unwrap(),
        ..fast()
    })
    .await;
    let c = connect(server.addr(), "client-reset").await;
    let r = c.state().await;
    assert_eq!(r.status, 200);
    assert!(!r.complete, "the body stops before its Content-Length");
    assert!(!r.body.is_empty());
    let r = c.get("/api/credits/balance/simple").await;
    assert!(!r.complete);
    assert_eq!(r.body, b"{\"cod");
    assert!(c.state().await.complete, "only the first state call");
    let j = server.journal().for_endpoint(Endpoint::State);
    assert_eq!(j[0].faults, vec!["state:reset@1".to_owned()]);
    assert!(j[1].faults.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn delays_are_simulated_time() {
    let server = server(MockConfig {
        faults: FaultPlan::parse("credits:delay=30s").unwrap(),
        ..fast()
    })
    .await;
    let c = connect(server.addr(), "client-delay").await;
    let t = Instant::now();
    assert_eq!(c.get("/api/credits/balance/simple").await.status, 200);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(30),
        "30 s × 0.001 = 30 ms, took {took:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn same_seed_same_journal() {
    let run = |seed: u64| async move {
        let plan = format!("*:500@%20;sse:reset@%30;state:429@%25;seed={seed}");
        let server = server(MockConfig {
            faults: FaultPlan::parse(&plan).unwrap(),
            agent: AgentBehaviour::default(),
            ..fast()
        })
        .await;
        // A scripted client that needs no successful answer to go on.
        let c = Client {
            addr: server.addr(),
            token: String::new(),
            session: String::new(),
            task: String::new(),
            user: String::new(),
        };
        let mut h = ATTRIBUTION.to_vec();
        h.push(("X-Client-Id", "det"));
        let r = request(server.addr(), "POST", "/api/auth/anonymous-token", &h, b"").await;
        let token = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["data"]["token"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let c = Client { token, ..c };
        let s = c
            .post(
                "/api/tasks/me/with-session/nemo_agent",
                &serde_json::json!({"task_name":"project","language":"en"}),
            )
            .await;
        let session = serde_json::from_slice::<serde_json::Value>(&s.body)
            .ok()
            .and_then(|v| v["data"]["session_id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let c = Client { session, ..c };
        let mut statuses = Vec::new();
        for i in 0..12 {
            let r = match i % 3 {
                0 => c.chat("add jazz music at 30%").await,
                1 => c.state().await,
                _ => c.get("/api/credits/balance/simple").await,
            };
            statuses.push((r.status, r.complete));
        }
        let journal: Vec<_> = server.journal().timeless();
        server.shutdown().await;
        (journal, statuses)
    };
    let (a, sa) = run(7).await;
    let (b, sb) = run(7).await;
    assert_eq!(sa, sb);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.seq, &x.path, x.status, &x.faults, &x.body),
            (y.seq, &y.path, y.status, &y.faults, &y.body)
        );
    }
    assert!(a.iter().any(|e| !e.faults.is_empty()), "some faults hit");
    let (c, _) = run(8).await;
    let faults =
        |j: &[nemo_mock::JournalEntry]| j.iter().map(|e| e.faults.clone()).collect::<Vec<_>>();
    assert_ne!(faults(&a), faults(&c), "another seed, other faults");
}

#[test]
fn plans_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.txt");
    std::fs::write(
        &path,
        "# faults for the demo\nrun_sse:reset@1\nstate:500x2   # twice\nseed=7\n",
    )
    .unwrap();
    let plan = FaultPlan::from_file(&path).unwrap();
    assert_eq!(plan.to_string(), "run_sse:reset@1;state:500x2;seed=7");
    let err = FaultPlan::parse("state:500;render:explode").unwrap_err();
    assert_eq!(err.index, 2);
    assert!(
        err.to_string()
            .starts_with("fault spec item 2 `render:explode`: unknown action `explode`"),
        "{err}"
    );
    assert!(FaultPlan::from_file(&dir.path().join("missing")).is_err());
}
