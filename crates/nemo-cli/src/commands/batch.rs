//! `nemo batch <MANIFEST>`: many inputs, one instruction and one render
//! each. Items run in their own sessions with bounded concurrency; a failed
//! item does not stop the others; a table of results ends the run (exit 1
//! if any item failed).
//!
//! The manifest is TOML or JSON; relative paths are relative to its folder:
//!
//! ```toml
//! instruction = "add lo-fi background music at 35% and a title"  # default for every item
//! concurrency = 2                                                # optional
//!
//! [[items]]
//! inputs = ["clips/a.mp4", "music.mp3"]
//! output = "out/a.mp4"
//!
//! [[items]]
//! inputs = ["https://example.com/b.mp4"]
//! instruction = "make it vertical"
//! output = "out/b.mp4"
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::wire::FilePart;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::commands::jobs::{summarise, table};
use crate::commands::run::quick_edit;
use crate::inputs;
use crate::output::human_bytes;
use crate::report::Persist;

/// The manifest's format, shown by `nemo batch --help`.
const MANIFEST_HELP: &str = "\
Manifest (TOML, or the same fields in JSON; paths relative to the manifest):

  instruction = \"add lo-fi background music at 35% and a title\"  # default for every item
  concurrency = 2                                                # optional

  [[items]]
  inputs = [\"clips/a.mp4\", \"music.mp3\"]
  output = \"out/a.mp4\"

  [[items]]
  inputs = [\"https://example.com/b.mp4\"]
  instruction = \"make it vertical\"
  output = \"out/b.mp4\"

JSON: {\"instruction\": \"…\", \"items\": [{\"inputs\": [\"a.mp4\"], \"output\": \"a-edited.mp4\"}]}
or just the list of items.

An item whose output already exists is skipped (run it again with --overwrite).

Examples:
  nemo batch videos.toml
  nemo batch videos.json --jobs 4
  nemo batch videos.toml --overwrite     # render every item again";

/// Arguments of `nemo batch`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = MANIFEST_HELP)]
pub(crate) struct Args {
    /// The manifest (TOML or JSON): items with inputs, instruction, output
    /// (the format is in --help).
    #[arg(value_name = "MANIFEST")]
    pub(crate) manifest: PathBuf,
    /// How many items run at once (default: the manifest's `concurrency`, else 2).
    #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub(crate) jobs: Option<u16>,
    /// Render items whose output already exists again, replacing it (only
    /// a regular file); without it they are skipped.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ManifestFile {
    Full(Manifest),
    Items(Vec<Item>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    instruction: Option<String>,
    #[serde(default)]
    concurrency: Option<u16>,
    #[serde(alias = "item")]
    items: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    input: Option<String>,
    #[serde(default)]
    instruction: Option<String>,
    #[serde(default, alias = "out")]
    output: Option<PathBuf>,
}

struct Ready {
    files: Vec<FilePart>,
    urls: Vec<String>,
    instruction: String,
    output: PathBuf,
    /// Its output exists already (and --overwrite was not given): skipped.
    done: bool,
}

/// How one item ended: its number, its output, and the bytes saved (`None`:
/// skipped, its output was already there).
type ItemResult = (usize, Option<PathBuf>, Result<Option<u64>, NemoError>);

fn bad(message: String) -> NemoError {
    NemoError::new(ErrorKind::BadInput, message)
}

fn read_manifest(path: &Path) -> Result<Manifest, NemoError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        bad(format!(
            "Cannot read the manifest {}: {e}. Check the path and try again.",
            path.display()
        ))
    })?;
    let is_json = is_json(path, &text);
    // Parsed as the shape it has (not through the untagged enum), so that an
    // error names the field at fault rather than "no variant matched".
    let fix = "Fix it and run again (the format is in `nemo batch --help`).";
    let file: ManifestFile = if is_json {
        let parsed = if text.trim_start().starts_with('[') {
            serde_json::from_str(&text).map(ManifestFile::Items)
        } else {
            serde_json::from_str(&text).map(ManifestFile::Full)
        };
        parsed.map_err(|e| {
            bad(format!(
                "{} is not a valid JSON manifest: {e}. {fix}",
                path.display()
            ))
        })?
    } else {
        toml::from_str(&text).map(ManifestFile::Full).map_err(|e| {
            bad(format!(
                "{} is not a valid TOML manifest: {e}{fix}",
                path.display()
            ))
        })?
    };
    let manifest = match file {
        ManifestFile::Full(m) => m,
        ManifestFile::Items(items) => Manifest {
            instruction: None,
            concurrency: None,
            items,
        },
    };
    if manifest.items.is_empty() {
        return Err(bad(format!(
            "{} lists no items; add at least one `[[items]]` with `inputs`.",
            path.display()
        )));
    }
    Ok(manifest)
}

fn prepare(
    item: &Item,
    index: usize,
    default_instruction: Option<&str>,
    base: &Path,
    overwrite: bool,
) -> Result<Ready, NemoError> {
    let mut all: Vec<String> = item.inputs.clone();
    all.extend(item.input.clone());
    if all.is_empty() {
        return Err(bad("no inputs".into()));
    }
    let all: Vec<String> = all
        .into_iter()
        .map(|i| {
            if inputs::is_url(&i) || Path::new(&i).is_absolute() {
                i
            } else {
                base.join(&i).to_string_lossy().into_owned()
            }
        })
        .collect();
    let (files, urls) = inputs::paths_or_urls(&all)?;
    let instruction = item
        .instruction
        .as_deref()
        .or(default_instruction)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            bad("no instruction (give one per item or at the top of the manifest)".into())
        })?
        .to_owned();
    let output = match &item.output {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => base.join(p),
        None => base.join(format!("item-{index}.mp4")),
    };
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
    }
    // Its output must not be one of its inputs (a re-run would skip it as
    // finished, or a render replace its own source).
    let key = same_file_key(&output);
    if files.iter().any(|f| same_file_key(&f.path) == key) {
        return Err(bad(format!(
            "its output {} is one of its inputs; give it another `output`",
            output.display()
        )));
    }
    // A finished item (its output is there) is skipped, not an error.
    let done = match nemo_client::inputs::check_output(Some(&output), overwrite) {
        Ok(()) => false,
        Err(p) if p.is_exists() => true,
        Err(p) => return Err(bad(inputs::advise(&p, inputs::Asker::Batch).message)),
    };
    Ok(Ready {
        files,
        urls,
        instruction,
        output,
        done,
    })
}

/// JSON by extension, else TOML by extension, else by the first thing in
/// the file: `{`, or `[` not followed by `[` or a table name, is JSON
/// (`[[items]]` and `[section]` are TOML).
fn is_json(path: &Path, text: &str) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("json") => return true,
        Some("toml") => return false,
        _ => {}
    }
    let start = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if start.starts_with('{') {
        return true;
    }
    match start.strip_prefix('[') {
        Some(rest) => {
            let next = rest.trim_start().chars().next();
            !matches!(next, Some(c) if c == '[' || c.is_alphabetic() || c == '_')
        }
        None => false,
    }
}

/// Runs `nemo batch`.
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    let manifest = read_manifest(&args.manifest)?;
    let base = args
        .manifest
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let concurrency = usize::from(args.jobs.or(manifest.concurrency).unwrap_or(2).clamp(1, 16));
    let total = manifest.items.len();
    let prepared: Vec<(usize, Result<Ready, NemoError>)> = manifest
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            (
                i + 1,
                prepare(
                    item,
                    i + 1,
                    manifest.instruction.as_deref(),
                    &base,
                    args.overwrite,
                ),
            )
        })
        .collect();

    // Every item is checked before the first upload: a batch that cannot
    // finish spends nothing.
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    for (index, ready) in &prepared {
        match ready {
            Ok(r) if !seen.insert(same_file_key(&r.output)) => problems.push(format!(
                "item {index}: {} is the output of an earlier item too",
                r.output.display()
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!("item {index}: {}", e.message)),
        }
    }
    if !problems.is_empty() {
        return Err(NemoError::new(
            ErrorKind::BadInput,
            format!(
                "Nothing was sent; fix the manifest first:\n  {}",
                problems.join("\n  ")
            ),
        ));
    }
    nemo_client::Store::check_journal(&app.store).map_err(crate::store::error)?;
    // One identity for all items (one free token per client id is allowed).
    app.clone()
        .with_output(Arc::new(app.out.muted()))
        .ensure_identity(crate::app::Identity::TokenOnly)
        .await?;

    app.out.info(&crate::words::trf(
        "Running {} item(s), {} at a time…",
        &[&total, &concurrency],
    ));
    // One Ctrl-C stops the whole batch: the items running stop (each
    // watches the signal), and no further item starts.
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let interrupted = &interrupted;
    let mut results: Vec<ItemResult> = stream::iter(prepared)
        .map(|(index, ready)| async move {
            if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                let e = NemoError::new(
                    ErrorKind::Cancelled,
                    "Not started: the batch was interrupted.",
                );
                return (index, None, Err(e));
            }
            let ready = match ready {
                Ok(r) => r,
                Err(e) => return (index, None, Err(e)),
            };
            if ready.done {
                return (index, Some(ready.output), Ok(None));
            }
            let out = Arc::new(app.out.for_item(index));
            let item_app = app.clone().with_output(out);
            let output = ready.output.clone();
            let client = item_app.client(
                None,
                Persist {
                    last_session: false,
                    client_id: true,
                },
            );
            let mut client = match client {
                Ok(c) => c,
                Err(e) => return (index, Some(output), Err(e)),
            };
            let result = quick_edit(
                &mut client,
                ready.files,
                ready.urls,
                ready.instruction,
                Some(ready.output),
                args.overwrite,
            )
            .await;
            let result =
                result.map(|()| Some(client.reporter.downloaded.as_ref().map_or(0, |(_, b)| *b)));
            (index, Some(output), result)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    watcher.abort();
    results.sort_by_key(|(i, _, _)| *i);

    let mut failures = Vec::new();
    let mut rows = Vec::new();
    for (index, output, result) in results {
        let shown = output
            .as_ref()
            .map_or("-".to_owned(), |p| p.display().to_string());
        match &result {
            Ok(Some(bytes)) => {
                app.out.emit(json!({"type": "status", "message": format!("item {index} done"), "item": index, "ok": true, "output": output, "bytes": bytes}));
                rows.push([index.to_string(), "ok".into(), shown, human_bytes(*bytes)]);
            }
            Ok(None) => {
                app.out.emit(json!({"type": "status", "message": format!("item {index} skipped: its output exists"), "item": index, "ok": true, "skipped": true, "output": output}));
                rows.push([
                    index.to_string(),
                    "skipped".into(),
                    shown,
                    "already there (--overwrite renders it again)".into(),
                ]);
            }
            Err(e) => {
                app.out.emit(json!({"type": "status", "message": format!("item {index} failed"), "item": index, "ok": false, "output": output, "error": {"code": e.kind, "message": e.message, "retryable": e.is_retryable()}}));
                rows.push([index.to_string(), "failed".into(), shown, e.message.clone()]);
            }
        }
        if let Err(e) = result {
            failures.push(e);
        }
    }
    app.out
        .plain(&table(["ITEM", "STATUS", "OUTPUT", "DETAIL"], &rows));
    if let Some(cancel) = failures.iter().find(|e| e.kind == ErrorKind::Cancelled) {
        return Err(cancel.clone());
    }
    summarise(total, failures, "item")
}

/// One key for every spelling of one output path (`a.mp4`, `./a.mp4`,
/// `$PWD/a.mp4`, through links): its folder resolved, then its name.
fn same_file_key(path: &Path) -> PathBuf {
    let name = path.file_name().map(std::ffi::OsStr::to_owned);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match (std::fs::canonicalize(&dir), name) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_in_toml_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("m.toml");
        std::fs::write(
            &toml_path,
            "instruction = \"x\"\n[[items]]\ninputs = [\"a.mp4\"]\noutput = \"o.mp4\"\n",
        )
        .unwrap();
        let m = read_manifest(&toml_path).unwrap();
        assert_eq!(m.items.len(), 1);
        let json_path = dir.path().join("m.json");
        std::fs::write(
            &json_path,
            r#"[{"inputs":["https://x/a.mp4"],"instruction":"y","output":"o.mp4"}]"#,
        )
        .unwrap();
        assert_eq!(read_manifest(&json_path).unwrap().items.len(), 1);
        std::fs::write(&json_path, r#"{"items":[{"bogus":1}]}"#).unwrap();
        assert!(read_manifest(&json_path).is_err());
    }
}
