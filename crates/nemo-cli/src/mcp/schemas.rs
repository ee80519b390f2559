//! The `outputSchema` of every tool: what its `structuredContent` holds.
//!
//! Every tool answers an object. A failed call (`isError: true`) answers
//! `{"error": …}` (the `error` object of `nemo --json`,
//! `docs/events.schema.json`), with the ids it knows (`turn_id`,
//! `render_id`); `events` are the NDJSON event objects of the same schema.

use std::sync::Arc;

use rmcp::model::JsonObject;
use serde_json::{json, Value};

fn object(properties: Value) -> Arc<JsonObject> {
    let mut properties = match properties {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    properties.insert("error".into(), error());
    let schema = json!({
        "type": "object",
        "properties": properties,
    });
    match schema {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

/// The `error` object of `nemo --json`.
fn error() -> Value {
    json!({
        "type": "object",
        "description": "Set when the call failed (isError): the `error` object of `nemo --json` (docs/events.schema.json).",
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "retryable": {"type": "boolean"},
            "api_code": {"type": "integer"},
        },
    })
}

fn string(description: &str) -> Value {
    json!({"type": ["string", "null"], "description": description})
}

fn strings(description: &str) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "description": description})
}

fn number(description: &str) -> Value {
    json!({"type": ["number", "null"], "description": description})
}

fn events() -> Value {
    json!({
        "type": "array",
        "description": "Every event with a wire form, in order: the NDJSON objects of `nemo --json` (docs/events.schema.json), each with a `type`.",
        "items": {"type": "object", "properties": {"type": {"type": "string"}}},
    })
}

fn session() -> Value {
    json!({
        "type": "object",
        "properties": {
            "session_id": {"type": "string"},
            "task_id": {"type": ["string", "null"]},
            "current": {"type": "boolean"},
            "last": {"type": "boolean", "description": "The store's last session (what `nemo say` continues)."},
        },
    })
}

/// `upload`.
pub(crate) fn upload() -> Arc<JsonObject> {
    object(json!({
        "files": {
            "type": "array",
            "description": "What the server stored, one object per file.",
            "items": {"type": "object", "properties": {
                "filename": {"type": "string"},
                "file_type": {"type": "string"},
                "duration": {"type": ["number", "null"]},
            }},
        },
        "session_id": string("The session the media went into."),
        "events": events(),
    }))
}

/// `instruct` and `turn_status`.
pub(crate) fn turn() -> Arc<JsonObject> {
    object(json!({
        "turn_id": string("The turn's id (`turn_…`), for `turn_status`."),
        "status": {"enum": ["running", "done", "failed", "stopped"]},
        "message": string("The message sent to the agent."),
        "idempotency_key": string("The key it was sent under, if any."),
        "elapsed_seconds": number("How long the turn has taken (so far)."),
        "text": string("The agent's words (so far), one message per paragraph."),
        "steps": strings("The steps taken so far: status lines, notes, generation stages, changes."),
        "changes": strings("What the edit changed (told when the agent said nothing)."),
        "actions": strings("What the agent offered to do next, as actions (export, show_timeline, …)."),
        "notes": strings("Notes: a recovery step, a generation stage."),
        "timeline": string("The timeline summary after the turn, when it was read."),
        "suggestions": strings("Messages worth sending next, as they are."),
        "note": string("Set when an idempotency_key was seen before: nothing was sent."),
        "events": events(),
    }))
}

/// `export` and `render_status`.
pub(crate) fn render() -> Arc<JsonObject> {
    object(json!({
        "render_id": string("The render id (`render_…`)."),
        "status": {
            "type": "string",
            "description": "submitting, pending, processing, completed, downloading, downloaded, failed, cancelled or stopped.",
        },
        "progress": number("0–100, when known."),
        "elapsed_seconds": number("How long the export has taken (so far), for an export of this server's."),
        "out": string("Where the video is to be saved."),
        "path": string("Where it was saved, once downloaded."),
        "bytes": {"type": ["integer", "null"]},
        "url": string("The finished render's URL (short-lived)."),
        "claim_link": string("A browser link to the project."),
        "events": events(),
    }))
}

/// `timeline`.
pub(crate) fn timeline() -> Arc<JsonObject> {
    object(json!({
        "summary": string("`Timeline (3 tracks): 1. Video: …`"),
        "ready_for_export": {"type": "boolean"},
        "session_id": string("The session read."),
    }))
}

/// `credits`.
pub(crate) fn credits() -> Arc<JsonObject> {
    object(json!({
        "available": number("Credits that can be spent now."),
        "frozen": number("Credits held by work in progress."),
        "total": number("All credits."),
    }))
}

/// `jobs` and `resume_jobs`.
pub(crate) fn jobs() -> Arc<JsonObject> {
    object(json!({
        "jobs": {
            "type": "array",
            "items": {"type": "object", "properties": {
                "render_id": {"type": "string"},
                "session_id": {"type": "string"},
                "out": {"type": ["string", "null"]},
                "ok": {"type": "boolean"},
                "path": {"type": ["string", "null"]},
                "url": {"type": ["string", "null"]},
                "events": events(),
            }},
        },
    }))
}

/// `sessions` and `new_session`.
pub(crate) fn sessions() -> Arc<JsonObject> {
    object(json!({
        "current": session(),
        "sessions": {"type": "array", "items": session()},
    }))
}

/// `claim_link`.
pub(crate) fn claim_link() -> Arc<JsonObject> {
    object(json!({
        "url": string("Opens the project in the web app (never carries the token)."),
        "session_id": string("The session it opens."),
    }))
}

/// `cancel_render`.
pub(crate) fn cancel_render() -> Arc<JsonObject> {
    object(json!({
        "render_id": string("The render."),
        "status": string("cancelled"),
        "events": events(),
    }))
}
