//! The typed calls of `Client` against the in-process simulator: uploads
//! from bytes, turns, exports to a file, a folder and a writer, events as a
//! stream, cancel, claim link, and the recorded jobs' resume.

use std::sync::Arc;

use futures_util::StreamExt;
use nemo_client::{
    Client, ExportTo, JobProgress, JobResult, MemoryStore, ResumeJobs, SkipReason, Store, Upload,
};
use nemo_core::error::ErrorKind;
use nemo_core::machine::{Event, LinkKind};
use nemo_core::wire::Endpoint;
use nemo_mock::{InProcess, MockConfig};

const WORDS: &str = "add lo-fi background music at 35% and the title \"Urban Dreams\"";

fn sample() -> Vec<u8> {
    let clip =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media/sample.mp4");
    std::fs::read(clip).unwrap()
}

fn client(mock: &InProcess, store: &MemoryStore) -> Client {
    Client::builder()
        .api_url(mock.url())
        .transport(Arc::new(mock.clone()))
        .store(store.clone())
        .time_scale(0.01)
        .build()
        .unwrap()
}

fn is_mp4(bytes: &[u8]) -> bool {
    bytes.len() > 8 && &bytes[4..8] == b"ftyp"
}

#[tokio::test]
async fn a_whole_session_with_typed_results() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut client = client(&mock, &store);
    let mut events = client.events();

    let upload = Upload::new().bytes("sample.mp4", sample()).unwrap();
    let files = client.upload(&upload).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].filename, "sample.mp4");
    drop(upload);

    let turn = client.instruct(WORDS).await.unwrap();
    assert!(
        !turn.text().is_empty() || !turn.changes.is_empty(),
        "{turn:?}"
    );
    let timeline = client.timeline().await.unwrap();
    assert!(timeline.ready_for_export, "{timeline:?}");

    // To a folder: named after the render.
    let dir = tempfile::tempdir().unwrap();
    let exported = client.export(ExportTo::folder(dir.path())).await.unwrap();
    let path = exported.path.clone().expect("saved");
    assert_eq!(path.parent(), Some(dir.path()));
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("{}.mp4", exported.render_id)
    );
    let bytes = std::fs::read(&path).unwrap();
    assert!(is_mp4(&bytes));
    assert_eq!(exported.bytes, Some(bytes.len() as u64));
    assert!(exported.claim_link.is_some(), "{exported:?}");
    assert!(store.jobs().unwrap().is_empty(), "the job left the journal");

    // To a writer: the same bytes, no file left behind.
    let (mut reader, writer) = tokio::io::duplex(1 << 16);
    let read = tokio::spawn(async move {
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut got)
            .await
            .unwrap();
        got
    });
    let exported = client.export(ExportTo::writer(writer)).await.unwrap();
    assert_eq!(exported.path, None);
    drop(client);
    let got = read.await.unwrap();
    assert!(is_mp4(&got));
    assert_eq!(exported.bytes, Some(got.len() as u64));

    // Every event of every call went to the stream, in order, and it ends
    // with the client.
    let all: Vec<Event> = events.by_ref().collect().await;
    let uploaded = all
        .iter()
        .position(|e| matches!(e, Event::Uploaded { .. }))
        .unwrap();
    let downloaded: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Downloaded { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(downloaded.len(), 2);
    assert!(uploaded < downloaded[0]);
}

/// A subscriber that never reads holds a bounded number of events: past its
/// buffer it is let go (its stream ends, `lagged`), the calls go on, and a
/// subscriber that keeps up sees every event.
#[tokio::test]
async fn an_unread_event_stream_is_let_go_not_grown() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut client = client(&mock, &store);
    let mut idle = client.events_buffered(4);
    let mut along = client.events();
    let upload = Upload::new().bytes("sample.mp4", sample()).unwrap();
    client.upload(&upload).await.unwrap();
    client.instruct(WORDS).await.unwrap();
    client.credits().await.unwrap();
    drop(client);
    let all: Vec<Event> = along.by_ref().collect().await;
    assert!(all.len() > 4, "{all:?}");
    assert!(!along.lagged());
    let held: Vec<Event> = idle.by_ref().collect().await;
    assert!(idle.lagged());
    assert_eq!(format!("{held:?}"), format!("{:?}", &all[..4]));
}

/// A reader let go while a recorded render is resumed: its stream ends
/// then, not at the client's next event or its end.
#[tokio::test]
async fn a_stream_let_go_during_a_resume_ends() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut client = client(&mock, &store);
    let upload = Upload::new().bytes("sample.mp4", sample()).unwrap();
    client.upload(&upload).await.unwrap();
    client.instruct(WORDS).await.unwrap();
    // A render left waiting: the export stopped once the server took it.
    let out = tempfile::tempdir().unwrap();
    let accepted = Arc::new(tokio::sync::Notify::new());
    let tell = accepted.clone();
    let stopped = client
        .run_until(
            nemo_core::machine::Command::Export(nemo_core::machine::ExportOptions {
                download: true,
                out: Some(out.path().join("job.mp4")),
                ..Default::default()
            }),
            &mut |ev| {
                if matches!(ev, Event::RenderProgress { .. }) {
                    tell.notify_one();
                }
            },
            accepted.notified(),
        )
        .await;
    assert_eq!(stopped.unwrap_err().kind, ErrorKind::Cancelled);
    assert_eq!(store.jobs().unwrap().len(), 1, "a render journaled");
    let mut idle = client.events_buffered(1);
    client
        .resume_jobs(
            &ResumeJobs::new().into_folder(out.path()),
            &mut |_| {},
            std::future::pending(),
        )
        .await
        .unwrap();
    let held = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        idle.by_ref().collect::<Vec<Event>>(),
    )
    .await
    .expect("the stream ends while the client lives");
    assert_eq!(held.len(), 1);
    assert!(idle.lagged());
    drop(client);
}

#[tokio::test]
async fn an_export_target_is_checked_before_anything_is_spent() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut client = client(&mock, &store);
    let upload = Upload::new().bytes("sample.mp4", sample()).unwrap();
    client.upload(&upload).await.unwrap();
    client.instruct(WORDS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("taken.mp4");
    std::fs::write(&taken, "mine").unwrap();
    let renders = mock.journal().count(Endpoint::RenderSubmit);
    for to in [
        ExportTo::file(&taken),
        ExportTo::folder(dir.path().join("missing")),
        ExportTo::file(dir.path()),
    ] {
        let e = client.export(to).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadInput, "{e}");
        assert!(!e.message.contains("--"), "no CLI advice: {e}");
    }
    assert_eq!(mock.journal().count(Endpoint::RenderSubmit), renders);
    assert_eq!(std::fs::read(&taken).unwrap(), b"mine");
    // With overwrite, the same file is replaced by the video.
    client
        .export(ExportTo::file(&taken).overwrite(true))
        .await
        .unwrap();
    assert!(is_mp4(&std::fs::read(&taken).unwrap()));
}

#[tokio::test]
async fn claim_link_and_cancel_render() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut client = client(&mock, &store);
    let link = client.claim_link().await.unwrap();
    assert!(link.contains("claim"), "{link}");
    assert!(!link.contains("nmv_"), "never the token: {link}");
    let e = client.cancel_render("../../x").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadInput);
    let e = client.say("").await;
    // An empty message is refused or answered, never a panic.
    drop(e);
    let turn = client.say("how many credits do I have").await.unwrap();
    assert!(turn.credits.is_some() || !turn.texts.is_empty(), "{turn:?}");
    assert!(turn.link(LinkKind::Register).is_none());
}

#[tokio::test]
async fn recorded_jobs_are_resumed_with_the_lease_rules() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut client = client(&mock, &store);
    let upload = Upload::new().bytes("sample.mp4", sample()).unwrap();
    client.upload(&upload).await.unwrap();
    client.instruct(WORDS).await.unwrap();
    // A render left running: submitted without waiting for the download.
    let done = client.export(ExportTo::render_only()).await.unwrap();
    assert!(done.path.is_none());

    // Two renders journaled by "other processes": one still waited for
    // (leased elsewhere), one free. Both are real renders of the simulator.
    let session = client.session().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for i in 0..2 {
        // Stop as soon as the server has accepted the render.
        let accepted = Arc::new(tokio::sync::Notify::new());
        let tell = accepted.clone();
        let turn = client
            .run_until(
                nemo_core::machine::Command::Export(nemo_core::machine::ExportOptions {
                    download: true,
                    out: Some(dir.path().join(format!("job{i}.mp4"))),
                    ..Default::default()
                }),
                &mut |ev| {
                    if matches!(ev, Event::RenderProgress { .. }) {
                        tell.notify_one();
                    }
                },
                accepted.notified(),
            )
            .await;
        assert_eq!(turn.unwrap_err().kind, ErrorKind::Cancelled);
        let jobs = store.jobs().unwrap();
        ids.push(jobs.last().expect("journaled").id.clone());
    }
    assert_eq!(store.jobs().unwrap().len(), 2, "both still recorded");
    let other = store.sibling();
    assert!(other.lease(&ids[0]).unwrap());

    let out = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let mut events = 0;
    let results = client
        .resume_jobs(
            &ResumeJobs::new().into_folder(out.path()),
            &mut |p| match p {
                JobProgress::Ended { job, result } => {
                    seen.push((job.id.clone(), format!("{result:?}")))
                }
                JobProgress::Event { .. } => events += 1,
                _ => {}
            },
            std::future::pending(),
        )
        .await
        .unwrap();
    assert_eq!(seen.len(), 2);
    assert!(events > 0, "the finished job's events were shown");
    let by_id = |id: &str| &results.iter().find(|(j, _)| j.id == id).unwrap().1;
    assert!(
        matches!(by_id(&ids[0]), JobResult::Skipped(SkipReason::Leased)),
        "{:?}",
        by_id(&ids[0])
    );
    match by_id(&ids[1]) {
        JobResult::Finished(exported) => {
            let path = exported.path.clone().unwrap();
            assert_eq!(path, out.path().join("job1.mp4"));
            assert!(is_mp4(&std::fs::read(path).unwrap()));
        }
        other => panic!("not finished: {other:?}"),
    }
    // The leased one stays for its process; the finished one is gone.
    let left: Vec<String> = store.jobs().unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!(left, [ids[0].clone()]);
    // Once its process lets go: a file in the way is reported as data
    // (the job stays), then replaced on request; `only` picks one job.
    other.release(&ids[0]);
    std::fs::write(out.path().join("job0.mp4"), "mine").unwrap();
    let only = ResumeJobs::new().into_folder(out.path()).only(&ids[0]);
    let results = client
        .resume_jobs(&only, &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    assert!(
        matches!(&results[..], [(_, JobResult::CannotSave(p))] if p.is_exists()),
        "{results:?}"
    );
    assert_eq!(store.jobs().unwrap().len(), 1, "still recorded");
    let results = client
        .resume_jobs(&only.overwrite(true), &mut |_| {}, std::future::pending())
        .await
        .unwrap();
    assert!(
        matches!(&results[..], [(_, JobResult::Finished(_))]),
        "{results:?}"
    );
    assert!(is_mp4(&std::fs::read(out.path().join("job0.mp4")).unwrap()));
    assert!(store.jobs().unwrap().is_empty());
    // Resuming did not make the job's session the last one.
    assert_eq!(
        store.last_session(mock.url()).unwrap().session_id,
        session.session_id
    );
}

#[tokio::test]
async fn a_client_made_before_the_machine_had_its_token_uses_the_one_saved_since() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    // Made first (no token yet), used last: an MCP server started before
    // the first `nemo credits`.
    let mut early = client(&mock, &store);
    let mut other = client(&mock, &store.sibling());
    other.credits().await.unwrap();
    assert!(store.token(mock.url()).is_some());
    early.credits().await.unwrap();
    assert_eq!(
        mock.journal().count(Endpoint::AnonymousToken),
        1,
        "one free token for the machine"
    );
}

#[tokio::test]
async fn a_resume_in_the_same_process_leaves_a_running_export_alone() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut a = client(&mock, &store);
    let upload = Upload::new().bytes("sample.mp4", sample()).unwrap();
    a.upload(&upload).await.unwrap();
    a.instruct(WORDS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // While A waits for its render, B (same store, same process) resumes.
    let started = Arc::new(tokio::sync::Notify::new());
    let tell = started.clone();
    let mut b = client(&mock, &store);
    let b_task = tokio::spawn(async move {
        started.notified().await;
        b.resume_jobs(&ResumeJobs::new(), &mut |_| {}, std::future::pending())
            .await
            .unwrap()
    });
    let exported = a
        .export_until(
            ExportTo::folder(dir.path()),
            &mut |ev| {
                if matches!(ev, Event::RenderProgress { .. }) {
                    tell.notify_one();
                }
            },
            std::future::pending(),
        )
        .await
        .unwrap();
    let results = b_task.await.unwrap();
    assert_eq!(results.len(), 1, "B saw A's render in the journal");
    assert!(
        results
            .iter()
            .all(|(_, r)| matches!(r, JobResult::Skipped(SkipReason::Leased))),
        "{results:?}"
    );
    assert!(is_mp4(&std::fs::read(exported.path.unwrap()).unwrap()));
}

/// A writer whose reader has gone (a closed pipe).
struct Closed;

impl tokio::io::AsyncWrite for Closed {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_video_the_writer_cannot_take_is_kept_and_said_where() {
    let mock = InProcess::new(MockConfig::fast()).unwrap();
    let store = MemoryStore::new();
    let mut client = client(&mock, &store);
    let upload = Upload::new().bytes("sample.mp4", sample()).unwrap();
    client.upload(&upload).await.unwrap();
    client.instruct(WORDS).await.unwrap();
    let e = client.export(ExportTo::writer(Closed)).await.unwrap_err();
    let kept = e
        .message
        .split("it is kept at ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix('.'))
        .unwrap_or_else(|| panic!("{e}"));
    let kept = std::path::Path::new(kept);
    // The render left the journal when it was downloaded: the file is all
    // there is, and it is whole.
    assert!(store.jobs().unwrap().is_empty());
    assert!(is_mp4(&std::fs::read(kept).unwrap()), "{e}");
    std::fs::remove_dir_all(kept.parent().unwrap()).unwrap();
}
