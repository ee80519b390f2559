//! One suite for the `Store` rules, run against every implementation: each
//! test takes a pair of stores over the same data that stand for two
//! processes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nemo_client::{
    ensure_identity, journal, FileStore, IdentityError, IdentityNeed, IdentitySetup, Job,
    LastSession, Leases, MemoryStore, SessionRecord, Store, StoreError,
};
use nemo_core::machine::{Command, Event, SessionRef};
use nemo_core::secret::Secret;

/// Runs `test` against two file stores on one folder, then two memory
/// stores over one set of data.
fn each(test: impl Fn(&dyn Store, &dyn Store)) {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::at(dir.path().join("cfg"));
    let b = FileStore::at(dir.path().join("cfg"));
    test(&a, &b);
    let a = MemoryStore::new();
    let b = a.sibling();
    test(&a, &b);
}

fn job(id: &str) -> Job {
    Job {
        id: id.into(),
        session_id: "s".into(),
        task_id: None,
        api_url: "http://x".into(),
        out: None,
        created_unix: 1,
    }
}

#[test]
fn everything_round_trips_and_is_seen_by_the_other_process() {
    each(|a, b| {
        assert_eq!(a.client_id(), None);
        a.save_client_id("abc").unwrap();
        assert_eq!(b.client_id().as_deref(), Some("abc"));

        a.save_token(
            "http://x",
            &Secret::new("nmv_usr_1"),
            Some("anon_1".into()),
            None,
        )
        .unwrap();
        let t = b.token("http://x").unwrap();
        assert_eq!(
            (t.token.as_str(), t.user_id.as_deref()),
            ("nmv_usr_1", Some("anon_1"))
        );
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("nmv_usr_1") && shown.contains("redacted"),
            "{shown}"
        );
        assert!(b.token("http://y").is_none(), "per API URL");

        let s = LastSession {
            session_id: "sess_1".into(),
            task_id: Some("task_1".into()),
        };
        a.save_last_session("http://x", s.clone()).unwrap();
        assert_eq!(b.last_session("http://x"), Some(s));
        assert_eq!(b.last_session("http://y"), None);

        a.check_journal().unwrap();
        a.add_job(job("render_1")).unwrap();
        let mut again = job("render_1");
        again.session_id = "s2".into();
        b.add_job(again.clone()).unwrap();
        assert_eq!(a.jobs().unwrap(), vec![again], "replaced, not doubled");
        assert!(b.remove_job("render_1").unwrap());
        assert!(!a.remove_job("render_1").unwrap());
        assert!(a.jobs().unwrap().is_empty());
    });
}

#[test]
fn a_token_that_cannot_be_sent_is_never_cached() {
    each(|a, _| {
        let e = a
            .save_token("http://x", &Secret::new("nmv bad\r\n"), None, None)
            .unwrap_err();
        assert!(matches!(e, StoreError::TokenRejected { .. }), "{e:?}");
        assert!(e.to_string().starts_with("The token was not kept: "), "{e}");
        assert!(a.token("http://x").is_none());
    });
}

#[test]
fn two_writers_lose_no_job() {
    each(|a, b| {
        std::thread::scope(|scope| {
            for (name, store) in [("a", a), ("b", b)] {
                scope.spawn(move || {
                    for i in 0..40 {
                        store.add_job(job(&format!("render_{name}{i}"))).unwrap();
                    }
                });
            }
        });
        assert_eq!(
            a.jobs().unwrap().len(),
            80,
            "every job of both writers is kept"
        );
    });
}

#[test]
fn a_lease_is_exclusive_and_released_with_the_job() {
    each(|a, b| {
        a.add_job(job("render_1")).unwrap();
        assert!(a.lease("render_1").unwrap());
        assert!(a.lease("render_1").unwrap(), "a holder may ask again");
        assert!(!a.is_leased_elsewhere("render_1"));
        assert!(b.is_leased_elsewhere("render_1"));
        assert!(!b.lease("render_1").unwrap(), "the other process keeps off");
        assert!(a.remove_job("render_1").unwrap());
        assert!(!b.is_leased_elsewhere("render_1"));
        assert!(b.lease("render_1").unwrap());
        assert!(matches!(a.lease("../x"), Err(StoreError::BadId { .. })));
        assert!(!a.is_leased_elsewhere("../x"));
    });
}

#[test]
fn a_released_lease_lets_another_process_finish_the_job() {
    each(|a, b| {
        a.add_job(job("render_2")).unwrap();
        assert!(a.lease("render_2").unwrap());
        assert!(!b.lease("render_2").unwrap());
        // The command that waited for it ended without finishing it.
        a.release("render_2");
        assert_eq!(a.jobs().unwrap().len(), 1, "the job stays recorded");
        assert!(
            b.lease("render_2").unwrap(),
            "another process may take it now"
        );
        assert!(a.is_leased_elsewhere("render_2"));
        // Releasing what one does not hold changes nothing.
        a.release("render_2");
        assert!(a.is_leased_elsewhere("render_2"));
    });
}

#[test]
fn the_leases_a_command_took_are_given_back_when_it_ends() {
    let store = MemoryStore::new();
    let other = store.sibling();
    let leases = Leases::new();
    let mut hook = journal(store.clone(), "http://x", &leases);
    for id in ["render_a", "render_b"] {
        hook(&Event::RenderStarting {
            id: id.into(),
            session_id: "s".into(),
            task_id: None,
            out: None,
        })
        .unwrap();
    }
    // A lease taken some other way is not the command's to give back.
    store.add_job(job("render_c")).unwrap();
    assert!(store.lease("render_c").unwrap());
    assert!(other.is_leased_elsewhere("render_a"));
    leases.release_all(&store);
    assert_eq!(store.jobs().unwrap().len(), 3, "every job stays recorded");
    assert!(other.lease("render_a").unwrap() && other.lease("render_b").unwrap());
    assert!(other.is_leased_elsewhere("render_c"));
}

#[test]
fn a_render_another_process_waits_for_is_never_taken_over_by_the_journal_hook() {
    let store = MemoryStore::new();
    let other = store.sibling();
    other.add_job(job("render_7")).unwrap();
    assert!(other.lease("render_7").unwrap());
    // A server that names our render after the other process's job.
    let mut hook = journal(store.clone(), "http://elsewhere", &Leases::new());
    let starting = Event::RenderStarting {
        id: "render_7".into(),
        session_id: "mine".into(),
        task_id: None,
        out: None,
    };
    assert!(hook(&starting).is_err());
    let jobs = store.jobs().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].api_url, "http://x", "the other entry is untouched");
}

#[cfg(unix)]
#[test]
fn links_planted_in_the_config_folder_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::create_dir_all(cfg.join("leases")).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, cfg.join(".identity.lock")).unwrap();
    std::os::unix::fs::symlink(&victim, cfg.join("leases/render_1.lock")).unwrap();
    let store = FileStore::at(cfg);
    assert!(store.identity_guard().is_err());
    assert!(store.lease("render_1").is_err());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_ne!(mode, 0o600, "the link's target was not re-moded");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
}

#[test]
fn the_identity_lock_lets_one_holder_in_at_a_time() {
    each(|a, b| {
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for store in [a, b, a, b] {
                let (inside, most) = (&inside, &most);
                scope.spawn(move || {
                    for _ in 0..5 {
                        let _g = store.identity_guard().unwrap();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn the_journal_hook_leases_and_records_a_render_before_it_starts() {
    let store = MemoryStore::new();
    let mut hook = journal(store.clone(), "http://x", &Leases::new());
    let starting = Event::RenderStarting {
        id: "render_9".into(),
        session_id: "s".into(),
        task_id: Some("t".into()),
        out: Some("out.mp4".into()),
    };
    hook(&starting).unwrap();
    let jobs = store.jobs().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].api_url, "http://x");
    assert!(jobs[0].out.as_ref().unwrap().is_absolute());
    assert!(store.sibling().is_leased_elsewhere("render_9"));
    // A render id that may not name a lease: the submission is refused.
    let mut other = journal(store.sibling(), "http://x", &Leases::new());
    let bad = Event::RenderStarting {
        id: "../x".into(),
        session_id: "s".into(),
        task_id: None,
        out: None,
    };
    assert!(other(&bad).is_err());
    assert!(
        hook(&Event::Status("hi".into())).is_ok(),
        "other events pass"
    );
}

fn setup(user_token: bool) -> IdentitySetup<'static> {
    IdentitySetup {
        api_url: "http://x",
        user_token,
        fixed_client_id: false,
    }
}

/// A stand-in for a session: "issues" a token and a session into `store`
/// and logs the commands it was asked to run.
fn fake_run(
    store: MemoryStore,
    log: Arc<Mutex<Vec<&'static str>>>,
    keep_token: bool,
) -> impl FnOnce(Command) -> std::future::Ready<Result<Option<SessionRef>, nemo_core::error::NemoError>>
{
    move |command| {
        if keep_token {
            store
                .save_token("http://x", &Secret::new("nmv_usr_1"), None, None)
                .unwrap();
        }
        let made = match command {
            Command::Connect => {
                log.lock().unwrap().push("connect");
                let s = SessionRef {
                    session_id: "sess_1".into(),
                    task_id: None,
                };
                store
                    .save_last_session(
                        "http://x",
                        LastSession {
                            session_id: s.session_id.clone(),
                            task_id: None,
                        },
                    )
                    .unwrap();
                Some(s)
            }
            Command::Credits => {
                log.lock().unwrap().push("credits");
                None
            }
            _ => unreachable!("only Connect and Credits"),
        };
        std::future::ready(Ok(made))
    }
}

#[tokio::test]
async fn the_identity_is_created_once_and_then_reused() {
    let store = MemoryStore::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let made = ensure_identity(
        &store,
        setup(false),
        IdentityNeed::SharedSession,
        fake_run(store.clone(), log.clone(), true),
    )
    .await
    .unwrap();
    assert_eq!(made.unwrap().session_id, "sess_1");
    let id = store.client_id().expect("a client id was made");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    // Everything is at hand now: nothing is run again.
    let again = ensure_identity(
        &store,
        setup(false),
        IdentityNeed::SharedSession,
        fake_run(store.clone(), log.clone(), true),
    )
    .await
    .unwrap();
    assert_eq!(again, None);
    assert_eq!(*log.lock().unwrap(), vec!["connect"]);
    assert_eq!(store.client_id(), Some(id));
}

#[tokio::test]
async fn a_token_alone_is_fetched_with_a_balance_request() {
    let store = MemoryStore::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let made = ensure_identity(
        &store,
        setup(false),
        IdentityNeed::TokenOnly,
        fake_run(store.clone(), log.clone(), true),
    )
    .await
    .unwrap();
    assert_eq!(made, None);
    assert_eq!(*log.lock().unwrap(), vec!["credits"]);
}

#[tokio::test]
async fn a_user_token_needs_no_client_id_and_no_request() {
    let store = MemoryStore::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let made = ensure_identity(
        &store,
        setup(true),
        IdentityNeed::TokenOnly,
        fake_run(store.clone(), log.clone(), false),
    )
    .await
    .unwrap();
    assert_eq!(made, None);
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(store.client_id(), None);
}

#[tokio::test]
async fn a_token_issued_but_not_kept_is_an_error() {
    let store = MemoryStore::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let e = ensure_identity(
        &store,
        setup(false),
        IdentityNeed::TokenOnly,
        fake_run(store.clone(), log, false),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, IdentityError::TokenNotSaved), "{e:?}");
}

#[test]
fn a_sessions_events_leave_what_they_should_in_the_store() {
    use nemo_client::{remember, Remember};
    each(|a, b| {
        let all = Remember {
            last_session: true,
            client_id: true,
        };
        let none = Remember {
            last_session: false,
            client_id: false,
        };
        let connected = Event::Connected {
            session_id: "sess_1".into(),
            task_id: None,
            created: true,
        };
        let issued = Event::TokenIssued {
            token: Secret::new("nmv_usr_1"),
            user_id: None,
            expires_at: None,
        };
        // A batch item: its session and made-up client id are its own.
        remember(a, "http://x", none, &connected).unwrap();
        remember(a, "http://x", none, &Event::ClientIdGenerated("c1".into())).unwrap();
        assert_eq!((b.last_session("http://x"), b.client_id()), (None, None));
        // The token is always kept.
        remember(a, "http://x", none, &issued).unwrap();
        assert!(b.token("http://x").is_some());
        remember(a, "http://x", all, &connected).unwrap();
        remember(a, "http://x", all, &Event::ClientIdGenerated("c1".into())).unwrap();
        assert_eq!(b.last_session("http://x").unwrap().session_id, "sess_1");
        assert_eq!(b.client_id().as_deref(), Some("c1"));
        // A render that ended leaves the journal.
        a.add_job(job("render_1")).unwrap();
        let ended = Event::RenderEnded {
            id: "render_1".into(),
            outcome: nemo_core::machine::RenderOutcome::Failed,
        };
        remember(a, "http://x", none, &ended).unwrap();
        assert!(b.jobs().unwrap().is_empty());
        // A token that cannot be sent is reported, not kept.
        let bad = Event::TokenIssued {
            token: Secret::new("a b"),
            user_id: None,
            expires_at: None,
        };
        let e = remember(a, "http://y", all, &bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("The token was not saved: The token was not kept"),
            "{e}"
        );
    });
}

#[test]
fn sessions_used_are_listed_most_recent_first_with_their_first_title() {
    each(|a, b| {
        let url = "https://api.example";
        a.note_session(
            url,
            SessionRecord::new("s1", None).titled("add music\nand more"),
        )
        .unwrap();
        a.note_session(url, SessionRecord::new("s2", Some("t2".into())))
            .unwrap();
        // Used again: to the front, its first title kept.
        b.note_session(
            url,
            SessionRecord::new("s1", Some("t1".into())).titled("later"),
        )
        .unwrap();
        let list = a.sessions(url);
        let ids: Vec<&str> = list.iter().map(|s| s.session_id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2"]);
        assert_eq!(list[0].title.as_deref(), Some("add music"));
        assert_eq!(list[0].task_id.as_deref(), Some("t1"));
        assert!(a.sessions("https://other.example").is_empty());
        // Forgetting removes it from the list and as the last session.
        a.save_last_session(
            url,
            nemo_client::LastSession {
                session_id: "s1".into(),
                task_id: None,
            },
        )
        .unwrap();
        assert!(b.forget_session(url, "s1").unwrap());
        assert!(a.last_session(url).is_none());
        assert_eq!(a.sessions(url).len(), 1);
        assert!(!a.forget_session(url, "s1").unwrap());
        for i in 0..(nemo_client::SESSIONS_KEPT + 5) {
            a.note_session(url, SessionRecord::new(format!("x{i}"), None))
                .unwrap();
        }
        assert_eq!(b.sessions(url).len(), nemo_client::SESSIONS_KEPT);
    });
}
