//! `nemo batch`: one session and one render per item, bounded concurrency,
//! failures do not stop the others, a table at the end.

use predicates::prelude::*;

use crate::support::{ndjson, of_type, text, Sim};

#[test]
fn a_toml_manifest_with_one_bad_item_spends_nothing() {
    let sim = Sim::fast();
    sim.sample();
    std::fs::write(sim.work.path().join("taken.mp4"), "mine").expect("write");
    std::fs::create_dir(sim.work.path().join("adir")).expect("mkdir");
    // A blank line and `[[items]]` first: still TOML.
    std::fs::write(
        sim.work.path().join("batch.manifest"),
        r#"

[[items]]
inputs = ["sample.mp4"]
output = "out/zero.mp4"
instruction = "add lo-fi music at 35%"
"#,
    )
    .expect("write");
    let out = sim
        .nemo()
        .args(["batch", "batch.manifest", "--jobs", "1"])
        .output()
        .expect("run");
    assert!(
        !text(&out.stderr).contains("JSON"),
        "read as TOML: {}",
        text(&out.stderr)
    );
    let before = sim.journal().len();
    std::fs::write(
        sim.work.path().join("batch.toml"),
        r#"
instruction = "add lo-fi music at 35%"

[[items]]
inputs = ["sample.mp4"]
output = "out/one.mp4"

[[items]]
inputs = ["missing.mp4"]
output = "out/two.mp4"

[[items]]
inputs = ["sample.mp4"]
instruction = "add the title \"Three\""
output = "adir"

[[items]]
inputs = ["sample.mp4"]
output = "taken.mp4"
"#,
    )
    .expect("write");
    let out = sim
        .nemo()
        .args(["batch", "batch.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Nothing was sent"), "{stderr}");
    assert!(stderr.contains("item 2"), "{stderr}");
    assert!(
        stderr.contains("item 3") && stderr.contains("is a folder"),
        "{stderr}"
    );
    // An output that exists is a finished item, skipped: not a problem.
    assert!(!stderr.contains("item 4"), "{stderr}");
    assert!(stderr.contains("`output`"), "batch advice: {stderr}");
    assert!(!sim.work.path().join("out/one.mp4").exists());
    assert_eq!(
        std::fs::read_to_string(sim.work.path().join("taken.mp4")).unwrap(),
        "mine"
    );
    // Every item is checked before the first request: nothing reached the
    // service.
    assert_eq!(sim.journal().len(), before, "{:?}", sim.journal());
}

#[test]
fn a_toml_manifest_runs_every_item() {
    let sim = Sim::fast();
    sim.sample();
    std::fs::write(
        sim.work.path().join("batch.toml"),
        r#"
instruction = "add lo-fi music at 35%"

[[items]]
inputs = ["sample.mp4"]
output = "out/one.mp4"

[[items]]
inputs = ["sample.mp4"]
instruction = "add the title \"Three\""
output = "out/three.mp4"
"#,
    )
    .expect("write");
    let out = sim
        .nemo()
        .args(["batch", "batch.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ITEM  STATUS"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("1     ok")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("2     ok")),
        "{stdout}"
    );
    assert!(sim.work.path().join("out/one.mp4").is_file());
    assert!(sim.work.path().join("out/three.mp4").is_file());
    // One token for everyone, one session per item.
    let journal = sim.journal();
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.path == "/api/auth/anonymous-token")
            .count(),
        1
    );
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.path.starts_with("/api/tasks/me/with-session"))
            .count(),
        2
    );

    // Run again: every item is finished, so nothing is rendered.
    let renders = |sim: &Sim| {
        sim.journal()
            .iter()
            .filter(|e| e.path == "/api/render/proxy/lambda" && e.method == "POST")
            .count()
    };
    let rendered = renders(&sim);
    let out = sim
        .nemo()
        .args(["batch", "batch.toml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("skipped"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        renders(&sim),
        rendered,
        "a finished manifest renders nothing"
    );
    // --overwrite renders them again.
    sim.nemo()
        .args(["batch", "batch.toml", "--overwrite"])
        .assert()
        .success();
    assert_eq!(renders(&sim), rendered + 2);
}

#[test]
fn a_json_manifest_in_json_mode() {
    let sim = Sim::fast();
    sim.sample();
    std::fs::write(
        sim.work.path().join("batch.json"),
        r#"{"instruction": "add jazz music", "concurrency": 2,
            "items": [{"inputs": ["sample.mp4"], "output": "a.mp4"},
                      {"input": "sample.mp4", "output": "b.mp4"}]}"#,
    )
    .expect("write");
    let out = sim
        .nemo()
        .args(["--json", "batch", "batch.json"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let objects = ndjson(&out.stdout);
    assert_eq!(of_type(&objects, "download").len(), 2);
    assert!(of_type(&objects, "download")
        .iter()
        .all(|d| d["item"].is_number()));
    assert!(sim.work.path().join("a.mp4").is_file() && sim.work.path().join("b.mp4").is_file());
}

#[test]
fn a_broken_manifest_is_bad_input() {
    let sim = Sim::fast();
    std::fs::write(sim.work.path().join("bad.toml"), "items = 3").expect("write");
    sim.nemo()
        .args(["batch", "bad.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a valid TOML manifest"));
}

#[test]
fn two_spellings_of_one_output_are_one_output() {
    let sim = Sim::fast();
    sim.sample();
    let abs = sim.work.path().join("same.mp4");
    std::fs::write(
        sim.work.path().join("batch.json"),
        format!(
            r#"{{"instruction": "add jazz music",
                "items": [{{"inputs": ["sample.mp4"], "output": "same.mp4"}},
                          {{"inputs": ["sample.mp4"], "output": {}}}]}}"#,
            serde_json::Value::from(abs.to_string_lossy().into_owned())
        ),
    )
    .expect("write");
    let out = sim
        .nemo()
        .args(["batch", "batch.json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is the output of an earlier item too"),
        "{}",
        text(&out.stderr)
    );
    assert!(sim.journal().is_empty(), "nothing was sent");
}
