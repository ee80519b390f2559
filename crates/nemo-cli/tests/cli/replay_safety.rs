//! `nemo replay` of a hostile recording: the server's words never start a
//! line at column 0 of stdout, where nemo's own lines ("Saved …",
//! "error: …") start; every line after the first is indented under its
//! speaker, and names the server gives are one line.

use crate::support::text;

/// The agent's reply in the fixture, and the forged reply put in its place.
const REPLY: &str = "Applied fade transitions between the clips.";
const FORGED: &str = "ok, done.\nSaved /home/u/final.mp4 (12.0 MB)\nerror: your token leaked.";
/// The uploaded file's name in the fixture's upload answer, and a forged one.
const NAME: &str = r#""filename":"city.mp4""#;
const FORGED_NAME: &str = r#""filename":"city.mp4\nSaved /home/u/name.mp4""#;

/// `fixtures/sessions/gui-phrases-en.har` with the agent's last reply and
/// the uploaded file's name forged, written to `dir`.
fn hostile_recording(dir: &std::path::Path) -> std::path::PathBuf {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/sessions/gui-phrases-en.har");
    let mut har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).expect("fixture")).expect("json");
    // The reply travels JSON-encoded inside the stream: a newline is `\n` there.
    let forged_reply = serde_json::to_string(FORGED).expect("encode");
    let forged_reply = forged_reply.trim_matches('"');
    let mut replaced = (0, 0);
    for entry in har["log"]["entries"].as_array_mut().expect("entries") {
        let url = entry["request"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // The body, and each chunk of a stream as it arrived (`_events`).
        let mut bodies = Vec::new();
        for (key, value) in entry["response"]["content"]
            .as_object_mut()
            .expect("content")
        {
            match (key.as_str(), value) {
                ("text", body) => bodies.push(body),
                ("_events", serde_json::Value::Array(events)) => {
                    bodies.extend(events.iter_mut().map(|e| &mut e["text"]))
                }
                _ => {}
            }
        }
        for body in bodies {
            let Some(text) = body.as_str() else {
                continue;
            };
            if url.ends_with("/run_sse") && text.contains(REPLY) {
                *body = text.replace(REPLY, forged_reply).into();
                replaced.0 += 1;
            } else if url.contains("/api/upload-video/") && text.contains(NAME) {
                *body = text.replace(NAME, FORGED_NAME).into();
                replaced.1 += 1;
            }
        }
    }
    assert!(
        replaced.0 > 0 && replaced.1 > 0,
        "the fixture holds the reply and the name"
    );
    let path = dir.join("hostile.har");
    std::fs::write(&path, har.to_string()).expect("write");
    path
}

#[test]
fn replay_never_prints_the_servers_words_at_column_0() {
    let work = tempfile::tempdir().expect("tempdir");
    let har = hostile_recording(work.path());
    let out = crate::support::nemo()
        .current_dir(work.path())
        .arg("replay")
        .arg(&har)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in stdout.lines() {
        assert!(
            !line.starts_with("Saved") && !line.starts_with("error:"),
            "a line of the server's passes for nemo's: {line:?}\n{stdout}"
        );
    }
    // All of it is still there, under its speaker.
    assert!(stdout.contains("nemo › ok, done.\n"), "{stdout}");
    let pad = " ".repeat("nemo › ".chars().count());
    assert!(
        stdout.contains(&format!(
            "\n{pad}Saved /home/u/final.mp4 (12.0 MB)\n{pad}error: your token leaked."
        )),
        "{stdout}"
    );
    // The file's name is one line.
    assert!(
        stdout.contains("city.mp4 Saved /home/u/name.mp4"),
        "{stdout}"
    );
}

#[test]
fn replay_in_json_carries_the_servers_words_whole() {
    let work = tempfile::tempdir().expect("tempdir");
    let har = hostile_recording(work.path());
    let out = crate::support::nemo()
        .current_dir(work.path())
        .args(["--json", "replay"])
        .arg(&har)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let replay: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "replay")
        .unwrap_or_else(|| panic!("no replay object: {stdout}"));
    let transcript: Vec<&str> = replay["transcript"]
        .as_array()
        .expect("transcript")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let reply = transcript
        .iter()
        .find(|l| l.starts_with("nemo › ok, done."))
        .unwrap_or_else(|| panic!("{transcript:?}"));
    assert!(
        reply.contains("Saved /home/u/final.mp4 (12.0 MB)") && reply.contains("your token leaked"),
        "{reply}"
    );
    for line in transcript.iter().flat_map(|l| l.lines()) {
        assert!(
            !line.starts_with("Saved") && !line.starts_with("error:"),
            "{line:?} in {transcript:?}"
        );
    }
}
