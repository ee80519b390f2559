//! `docs/events.schema.json` against what `nemo --json` prints and what
//! `nemo_core::ndjson` makes of every event.
//!
//! The checker is a small one over the schema's JSON (the keywords the
//! schema uses: `$ref`, `oneOf`, `type`, `const`, `enum`, `required`,
//! `properties`, `items`, `minimum`, `maximum`) rather than the `jsonschema`
//! crate, which would bring a regex engine, an HTTP client and dozens of
//! crates into the build for one test. A keyword it does not know fails the
//! test, so the schema cannot quietly outgrow it.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use nemo_core::api::{Credits, RenderPhase, UploadedFile};
use nemo_core::error::{ErrorDetail, ErrorKind, NemoError};
use nemo_core::gui::GuiAction;
use nemo_core::machine::{CommandId, Event, GenerationStage, LinkKind, RenderOutcome};
use nemo_core::ndjson::{error_to_json, to_json};
use nemo_core::secret::Secret;
use serde_json::Value;

use crate::support::{ndjson, of_type, text, Sim};

/// The schema, read once.
pub(crate) fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.schema.json");
        let raw = std::fs::read_to_string(&path).expect("docs/events.schema.json");
        serde_json::from_str(&raw).expect("the schema is JSON")
    })
}

/// Checks one object against the schema; the error says where and why.
pub(crate) fn check(value: &Value) -> Result<(), String> {
    let root = schema();
    validate(root, root, value, "$")
}

const KNOWN: [&str; 15] = [
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "oneOf",
    "type",
    "const",
    "enum",
    "required",
    "properties",
    "items",
    "minimum",
    "maximum",
];

fn validate(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = schema
        .as_object()
        .ok_or_else(|| format!("{at}: schema is not an object"))?;
    if let Some(unknown) = schema.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!("{at}: the checker does not know `{unknown}`"));
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/$defs/")
            .ok_or_else(|| format!("{at}: unsupported $ref {reference}"))?;
        let target = &root["$defs"][name];
        if target.is_null() {
            return Err(format!("{at}: no definition `{name}`"));
        }
        validate(root, target, value, at)?;
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: bad `type`")),
        };
        if !types.iter().any(|t| is_type(value, t)) {
            return Err(format!("{at}: {value} is not {}", types.join(" or ")));
        }
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            return Err(format!("{at}: {value} is not {c}"));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            return Err(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if value.as_f64().is_some_and(|v| v < min) {
            return Err(format!("{at}: {value} < {min}"));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if value.as_f64().is_some_and(|v| v > max) {
            return Err(format!("{at}: {value} > {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                return Err(format!("{at}: `{name}` missing"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in properties {
                if let Some(v) = object.get(name) {
                    validate(root, sub, v, &format!("{at}.{name}"))?;
                }
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            validate(root, items, v, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        let results: Vec<Result<(), String>> = branches
            .iter()
            .map(|b| validate(root, b, value, at))
            .collect();
        let passed = results.iter().filter(|r| r.is_ok()).count();
        if passed != 1 {
            let why: Vec<String> = results.into_iter().filter_map(Result::err).collect();
            return Err(format!(
                "{at}: {passed} of the oneOf branches match {value} ({})",
                why.join("; ")
            ));
        }
    }
    Ok(())
}

fn is_type(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

#[test]
fn the_schema_names_each_type_once() {
    let root = schema();
    assert_eq!(
        root["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let mut types = Vec::new();
    for branch in root["oneOf"].as_array().expect("oneOf") {
        let name = branch["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .expect("a $ref");
        let def = &root["$defs"][name];
        assert_eq!(def["properties"]["type"]["const"], name, "{name}");
        assert!(
            def["required"]
                .as_array()
                .is_some_and(|r| r.contains(&"type".into())),
            "{name}"
        );
        types.push(name.to_owned());
    }
    for ty in [
        "status",
        "text",
        "timeline",
        "change",
        "credits",
        "upload",
        "render",
        "download",
        "link",
        "generation",
        "suggestions",
        "error",
    ] {
        assert!(types.iter().any(|t| t == ty), "`{ty}` not in the schema");
    }
    // And it rejects what it should.
    assert!(check(
        &serde_json::json!({"type": "render", "id": "r", "status": "done", "progress": null})
    )
    .is_err());
    assert!(check(
        &serde_json::json!({"type": "credits", "available": "9", "frozen": 0, "total": 9})
    )
    .is_err());
    assert!(check(&serde_json::json!({"type": "nonsense"})).is_err());
    assert!(check(&serde_json::json!({"type": "download", "path": "a.mp4"})).is_err());
}

/// One event of every kind, and what the wire makes of it.
#[test]
fn every_event_has_a_wire_form_the_schema_accepts() {
    let file = UploadedFile {
        filename: "clip.mp4".into(),
        file_type: "video".into(),
        cdn_url: "https://cdn.example/clip.mp4".into(),
        duration: Some(10.0),
        width: Some(1920.0),
        height: Some(1080.0),
    };
    let events = vec![
        Event::Status("Connecting…".into()),
        Event::TokenIssued {
            token: Secret::new("nmv_usr_do_not_print"),
            user_id: Some("u1".into()),
            expires_at: None,
        },
        Event::ClientIdGenerated("3f1c".into()),
        Event::Connected {
            session_id: "5529".into(),
            task_id: Some("t1".into()),
            created: false,
        },
        Event::Note("Routed as an export.".into()),
        Event::AgentText {
            text: " Done. ".into(),
            actions: vec![GuiAction::Export, GuiAction::ShowTimeline],
        },
        Event::AgentTextDelta {
            text: "Done".into(),
        },
        Event::Transfer {
            kind: nemo_core::machine::TransferKind::Upload,
            done: 512,
            total: Some(1024),
        },
        Event::Transfer {
            kind: nemo_core::machine::TransferKind::Download,
            done: 2048,
            total: None,
        },
        Event::StillWorking {
            elapsed: Duration::from_secs(120),
        },
        Event::Change {
            summary: "Added BGM".into(),
        },
        Event::Uploaded { files: vec![file] },
        Event::Credits(Credits {
            available: 90.0,
            frozen: 10.0,
            total: 100.0,
        }),
        Event::Timeline {
            summary: "Timeline (1 track): 1. Video: clip (0-10s)".into(),
            ready_for_export: true,
        },
        Event::RenderStarting {
            id: "render_1".into(),
            session_id: "5529".into(),
            task_id: None,
            out: Some("a.mp4".into()),
        },
        Event::RenderProgress {
            id: "render_1".into(),
            phase: RenderPhase::Processing,
            progress: Some(37.5),
        },
        Event::RenderProgress {
            id: "render_1".into(),
            phase: RenderPhase::Pending,
            progress: None,
        },
        Event::RenderCompleted {
            id: "render_1".into(),
            url: "https://cdn.example/out.mp4".into(),
        },
        Event::Downloaded {
            id: "render_1".into(),
            path: "a.mp4".into(),
            bytes: 43_792,
        },
        Event::RenderEnded {
            id: "render_2".into(),
            outcome: RenderOutcome::Failed,
        },
        Event::RenderEnded {
            id: "render_3".into(),
            outcome: RenderOutcome::Cancelled,
        },
        Event::Link {
            kind: LinkKind::Register,
            url: "https://nemovideo.com/register".into(),
        },
        Event::Link {
            kind: LinkKind::Claim,
            url: "https://nemovideo.com/p?ct=clm_1".into(),
        },
        Event::Generation {
            stage: GenerationStage::RawVideoReady,
            url: Some("https://cdn.example/raw.mp4".into()),
            message: "The raw video is ready.".into(),
        },
        Event::Generation {
            stage: GenerationStage::PostProductionDone,
            url: None,
            message: "Post-production is done.".into(),
        },
        Event::Suggestions {
            message: "Keep them?".into(),
            suggestions: vec!["keep them".into(), "remove the music".into()],
        },
        Event::Finished {
            command: CommandId(1),
            result: Err(NemoError::new(ErrorKind::OutOfCredits, "No credits left.")),
        },
    ];
    let mut types = Vec::new();
    for event in &events {
        let Some(object) = to_json(event) else {
            continue;
        };
        assert!(
            !object.to_string().contains("nmv_usr_do_not_print"),
            "{object}"
        );
        if let Err(e) = check(&object) {
            panic!("{event:?} → {object}: {e}");
        }
        types.push(object["type"].as_str().expect("type").to_owned());
    }
    let errors = [
        NemoError::new(ErrorKind::OutOfCredits, "No credits left.")
            .with_code(Some(2001))
            .with_link("https://nemovideo.com/register"),
        NemoError::new(ErrorKind::Network, "The connection dropped."),
        NemoError::new(ErrorKind::OutOfCredits, "You are out of credits.").with_detail(
            ErrorDetail::OutOfCredits {
                needed: Some(5.0),
                available: None,
            },
        ),
        NemoError::new(ErrorKind::Cancelled, "Stopped waiting.")
            .with_detail(ErrorDetail::RenderRunning { id: "r1".into() }),
        NemoError::new(ErrorKind::AuthFailed, "The token given was rejected.")
            .with_detail(ErrorDetail::UserTokenRejected),
        nemo_core::api::unsupported_file("a.txt"),
    ];
    for err in &errors {
        let object = error_to_json(err);
        check(&object).unwrap_or_else(|e| panic!("{object}: {e}"));
        types.push("error".into());
    }
    for ty in [
        "status",
        "text",
        "timeline",
        "change",
        "credits",
        "upload",
        "render",
        "download",
        "link",
        "generation",
        "suggestions",
        "error",
    ] {
        assert!(types.iter().any(|t| t == ty), "no `{ty}` object");
    }
    // Bookkeeping stays out of the wire.
    assert_eq!(to_json(&events[1]), None);
    assert_eq!(to_json(&events[2]), None);
    assert_eq!(to_json(events.last().expect("finished")), None);
}

/// A whole session against the simulator, as a script would run it: every
/// object `nemo --json` prints is valid against the schema.
#[test]
fn a_whole_session_matches_the_schema() {
    let sim = Sim::fast();
    let sample = sim.sample();
    let sample = sample.display().to_string();
    let mut all = Vec::new();
    let runs: [&[&str]; 5] = [
        &[
            "--json",
            "run",
            "trim to 30 seconds and add captions",
            "--file",
            &sample,
            "--out",
            "edited.mp4",
        ],
        &["--json", "timeline"],
        &["--json", "credits"],
        &["--json", "jobs"],
        // The file is there: an `error` object.
        &["--json", "export", "--out", "edited.mp4"],
    ];
    for args in runs {
        let out = sim.nemo().args(args).output().expect("run");
        // `ndjson` checks each object against the schema too.
        all.extend(ndjson(&out.stdout));
        if args[1] != "export" {
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        }
    }
    for object in &all {
        check(object).unwrap_or_else(|e| panic!("{object}: {e}"));
    }
    for ty in [
        "status", "upload", "text", "render", "download", "link", "timeline", "credits", "error",
    ] {
        assert!(!of_type(&all, ty).is_empty(), "no `{ty}` object");
    }
    let error = of_type(&all, "error")[0];
    assert_eq!(error["code"], "bad_input", "{error}");
    assert_eq!(error["retryable"], false, "{error}");
    let completed: Vec<_> = of_type(&all, "render")
        .into_iter()
        .filter(|r| r["status"] == "completed")
        .collect();
    assert!(
        completed.iter().all(|r| r["progress"].is_u64()),
        "{completed:?}"
    );
}
