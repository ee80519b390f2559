//! Every "Try saying" example of the four seeds, the seeds' routing table in
//! English and Chinese, and some harder cases, routed to plans and
//! snapshot-tested.

use std::fmt::Write as _;

use nemo_core::api::file_part;
use nemo_core::route::{route, RouteContext, Step, UserInput};

const SEED_EXAMPLES: &[(&str, &[&str])] = &[
    (
        "video-download-online",
        &[
            "convert a YouTube video URL at 1080p into a 1080p MP4",
            "download this video in MP4 format at the highest available resolution",
            "saving online videos to device for offline playback for students, content creators, marketers",
        ],
    ),
    (
        "video-maker-free-download-app",
        &[
            "create five product photos and a background music file into a 1080p MP4",
            "combine these clips into a 60-second video with transitions and text overlays",
            "creating shareable videos from photos and clips without installing software for casual creators and students",
        ],
    ),
    (
        "generator-by-link",
        &[
            "generate a YouTube or webpage URL into a 1080p MP4",
            "generate a video from this article link: https://example.com/blog-post",
            "creating videos from web links or online content for marketers, content creators, bloggers",
        ],
    ),
    (
        "video-openapi",
        &[
            "process a 2-minute MP4 product demo into a 1080p MP4",
            "send a video file via API and get back an edited, processed video automatically",
            "integrating video editing into apps via API calls for developers and marketers",
        ],
    ),
];

const TABLE: &[&str] = &[
    "export",
    "Export",
    "导出",
    "download",
    "下载",
    "send me the video",
    "credits",
    "积分",
    "balance",
    "余额",
    "status",
    "状态",
    "show tracks",
    "upload",
    "上传",
    "add BGM",
    "make it look better",
];

const HARDER: &[&str] = &[
    "download this video https://www.youtube.com/watch?v=dQw4w9WgXcQ in MP4 at the highest resolution",
    "convert https://vimeo.com/123456 into a 1080p MP4",
    "save https://cdn.example.com/raw/clip.mov as mp4",
    "add lo-fi background music at 35% and the title \"Urban Dreams\", then export",
    "帮我把这个视频加上背景音乐然后导出",
    "查看积分",
    "how many credits do I have left?",
    "what's the status of my timeline?",
    "trim it to 8 seconds and show tracks",
    "upload these",
    "",
];

fn plan(text: &str, has_draft: bool) -> String {
    route(&UserInput::text(text), RouteContext { has_draft }).to_string()
}

#[test]
fn seed_examples() {
    let mut out = String::new();
    for (flavour, examples) in SEED_EXAMPLES {
        writeln!(out, "## {flavour}").unwrap();
        for e in *examples {
            writeln!(
                out,
                "> {e}\n  no draft: {}\n  draft:    {}",
                plan(e, false),
                plan(e, true)
            )
            .unwrap();
        }
    }
    insta::assert_snapshot!(out);
}

#[test]
fn seed_examples_never_export_alone_and_always_do_something() {
    for (_, examples) in SEED_EXAMPLES {
        for e in *examples {
            let p = route(&UserInput::text(*e), RouteContext::default());
            assert!(
                p.uses_agent(),
                "{e}: the agent must get the instruction: {p}"
            );
            assert_ne!(p.steps, vec![Step::Export, Step::Download], "{e}");
        }
    }
}

#[test]
fn the_seed_table_in_both_languages() {
    let mut out = String::new();
    for t in TABLE.iter().chain(HARDER) {
        writeln!(
            out,
            "> {t}\n  no draft: {}\n  draft:    {}",
            plan(t, false),
            plan(t, true)
        )
        .unwrap();
    }
    insta::assert_snapshot!(out);
}

#[test]
fn attachments() {
    let clip = file_part("clips/a.mp4", 10).unwrap();
    let song = file_part("music/song.mp3", 10).unwrap();
    let cases = [
        UserInput {
            text: String::new(),
            files: vec![clip.clone()],
            urls: vec![],
        },
        UserInput {
            text: "combine these clips into a 60-second video with transitions and text overlays"
                .into(),
            files: vec![clip.clone(), song.clone()],
            urls: vec![],
        },
        UserInput {
            text: "upload".into(),
            files: vec![],
            urls: vec!["https://youtu.be/abc".into()],
        },
        UserInput {
            text: "send a video file via API and get back an edited, processed video automatically"
                .into(),
            files: vec![clip],
            urls: vec![],
        },
    ];
    let mut out = String::new();
    for c in &cases {
        writeln!(
            out,
            "> {:?} + {} file(s) + {:?}\n  {}",
            c.text,
            c.files.len(),
            c.urls,
            route(c, RouteContext::default())
        )
        .unwrap();
    }
    insta::assert_snapshot!(out);
}
