//! The two frontends of `docs/FRONTENDS.md` (`examples/frontend_tokio.rs`,
//! `examples/frontend_sans_io.rs`), run against the in-process simulator on
//! every `cargo test`: their `run` is compiled into this test, so a change
//! to the library that breaks the guide breaks the build.

#[allow(dead_code)] // its `main`
#[path = "../examples/frontend_tokio.rs"]
mod frontend_tokio;

#[allow(dead_code)] // its `main`
#[path = "../examples/frontend_sans_io.rs"]
mod frontend_sans_io;

#[tokio::test]
async fn the_tokio_frontend_saves_the_video_and_handles_running_out_of_credits() {
    let dir = tempfile::tempdir().unwrap();
    let (video, link) = frontend_tokio::run(dir.path()).await.unwrap();
    assert_eq!(video.parent(), Some(dir.path()));
    let saved = std::fs::read(&video).unwrap();
    assert_eq!(saved, nemo_mock::media::SAMPLE_MP4, "the render's output");
    assert!(
        link.starts_with("https://nemovideo.com/register"),
        "a register link: {link}"
    );
}

#[test]
fn the_hand_driven_frontend_saves_the_video_without_an_async_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (video, words) = frontend_sans_io::run(dir.path()).unwrap();
    let len = std::fs::metadata(&video).unwrap().len();
    assert_eq!(len, nemo_mock::media::SAMPLE_MP4.len() as u64);
    assert!(words.contains("Hand Made"), "the agent's words: {words}");
}
