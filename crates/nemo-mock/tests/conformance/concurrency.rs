//! Many clients at once.

use nemo_core::wire::Endpoint;

use super::raw::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sessions() {
    let server = server(fast()).await;
    let addr = server.addr();
    let mut tasks = Vec::new();
    for i in 0..200 {
        tasks.push(tokio::spawn(async move {
            let c = connect(addr, &format!("client-{i}")).await;
            let r = c.chat(&format!("add the title \"Clip {i}\"")).await;
            assert_eq!(r.status, 200);
            assert!(r.complete);
            let state = c.state().await.json();
            assert_eq!(state["code"], 0);
            let text = state["data"]["state"]["draft"].to_string();
            assert!(text.contains(&format!("Clip {i}")), "{text}");
            c.session
        }));
    }
    let mut sessions = Vec::new();
    for t in tasks {
        sessions.push(t.await.expect("task"));
    }
    sessions.sort();
    sessions.dedup();
    assert_eq!(sessions.len(), 200, "distinct session ids");
    let j = server.journal();
    assert_eq!(j.count(Endpoint::RunSse), 200);
    assert!(j.entries().iter().all(|e| e.status == 200), "no errors");
    server.shutdown().await;
}
