//! A regional language tag (`--lang zh-TW`, `LANG=zh_TW.UTF-8`) reaches
//! the service as a tag (PROTOCOL.md §10), while the command line's own
//! words still follow the base language.

use crate::support::{text, Sim};

/// The `language` of each session the simulator was asked to create.
fn languages_sent(sim: &Sim) -> Vec<String> {
    sim.journal()
        .iter()
        .filter(|e| e.path.starts_with("/api/tasks/me/with-session"))
        .map(|e| {
            let body: serde_json::Value = serde_json::from_str(&e.body)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {}", e.body));
            body["language"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn a_regional_tag_is_sent_as_a_tag() {
    for (how, expected) in [
        (["--lang", "zh-TW"], "zh-TW"),
        (["--lang", "zh_cn"], "zh-CN"),
        (["--lang", "zh-hant-tw"], "zh-Hant-TW"),
        (["--lang", "en-GB"], "en-GB"),
    ] {
        let sim = Sim::fast();
        let sample = sim.sample();
        let out = sim
            .nemo()
            .args(how)
            .arg("upload")
            .arg(&sample)
            .output()
            .expect("run");
        assert!(out.status.success(), "{how:?}: {}", text(&out.stderr));
        assert_eq!(languages_sent(&sim), [expected], "{how:?}");
        // The command line's own words follow the base language.
        let zh = expected.starts_with("zh");
        assert_eq!(
            text(&out.stdout).contains("已上传 sample.mp4"),
            zh,
            "{how:?}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn the_locales_region_is_sent_too() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let out = sim
        .nemo()
        .env("LANG", "zh_TW.UTF-8")
        .arg("upload")
        .arg(&sample)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(languages_sent(&sim), ["zh-TW"]);
    assert!(
        text(&out.stdout).contains("已上传 sample.mp4"),
        "{}",
        text(&out.stdout)
    );
}
