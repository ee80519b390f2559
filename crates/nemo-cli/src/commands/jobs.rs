//! `nemo jobs [--resume [--overwrite] [--dir DIR]]`, `nemo jobs forget ID…`:
//! the render jobs recorded locally (each one is written before its render
//! request is sent); `--resume` waits for each and downloads it, leaving
//! alone the ones another live `nemo` process is waiting for.

use std::path::PathBuf;

use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::SessionRef;
use serde_json::json;

use crate::app::{App, Client};
use crate::report::Persist;
use crate::store;
use crate::words::{tr, trf};
use nemo_client::{Job, JobProgress, JobResult, SkipReason, Store};

/// Arguments of `nemo jobs`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    /// Finish every recorded job: wait for the render, then download it.
    #[arg(long)]
    pub(crate) resume: bool,
    /// With --resume: replace files that already exist where a job saves.
    #[arg(long, requires = "resume")]
    pub(crate) overwrite: bool,
    /// With --resume: save every download into this folder (keeping each
    /// job's file name) instead of where each job was to save.
    #[arg(long, value_name = "DIR", requires = "resume")]
    pub(crate) dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) action: Option<Action>,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// `nemo jobs forget`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Remove render jobs from the journal without finishing them (the
    /// render, if any, stays on the server).
    Forget {
        /// The render ids, as `nemo jobs` lists them.
        #[arg(value_name = "RENDER_ID", required = true)]
        ids: Vec<String>,
    },
}

/// Runs `nemo jobs`.
pub(crate) async fn exec(args: Args, app: &App) -> Result<(), NemoError> {
    if let Some(Action::Forget { ids }) = &args.action {
        return forget(app, ids);
    }
    let jobs = app.store.jobs().map_err(store::error)?;
    if !args.resume {
        list(app, &jobs);
        return Ok(());
    }
    if jobs.is_empty() {
        app.out.info(tr("No render jobs to resume."));
        return Ok(());
    }
    if let Some(dir) = &args.dir {
        crate::inputs::check_out(
            Some(&dir.join("probe.mp4")),
            true,
            crate::inputs::Asker::Jobs,
        )?;
    }
    app.ensure_identity(crate::app::Identity::TokenOnly).await?;
    // The library applies the rules (API, lease, read again under the
    // lease, the target checked first, a failed render forgotten); the
    // CLI says what happens.
    let mut options = nemo_client::ResumeJobs::new().overwrite(args.overwrite);
    options.dir = args.dir.clone();
    let persist = Persist {
        last_session: false,
        client_id: true,
    };
    let mut client = app.client(None, persist)?;
    let out = app.out.clone();
    let results = client
        .resume_jobs(
            &options,
            &mut |p| match p {
                JobProgress::Starting { job, .. } => out.info(&trf("Resuming {}…", &[&job.id])),
                JobProgress::Ended { job, result } => match result {
                    JobResult::Skipped(why) => out.info(&skipped(&job.id, why)),
                    JobResult::CannotSave(problem) => out.error(&cannot_save(problem)),
                    JobResult::Failed(e) => out.error(e),
                    _ => {}
                },
                _ => {}
            },
            crate::app::ctrl_c(),
        )
        .await?;
    let mut failures: Vec<NemoError> = Vec::new();
    let mut resumed = 0;
    for (_, result) in results {
        match result {
            JobResult::Skipped(_) => continue,
            JobResult::CannotSave(problem) => failures.push(cannot_save(&problem)),
            JobResult::Failed(e) => failures.push(e),
            _ => {}
        }
        resumed += 1;
    }
    summarise(resumed, failures, "job")
}

/// Why a job was left alone, in the CLI's words.
pub(crate) fn skipped(id: &str, why: &SkipReason) -> String {
    match why {
        SkipReason::OtherApi(url) => trf(
            "Skipping {}: it was sent to {} (set NEMO_API_URL to that to resume it).",
            &[&id, url],
        ),
        SkipReason::Leased => trf(
            "Skipping {}: another nemo process is waiting for it.",
            &[&id],
        ),
        SkipReason::FinishedElsewhere => trf("Skipping {}: it was finished meanwhile.", &[&id]),
        _ => format!("Skipping {id}."),
    }
}

/// A job whose file cannot be saved, with the advice of `jobs --resume`.
fn cannot_save(problem: &nemo_client::inputs::OutputProblem) -> NemoError {
    crate::inputs::advise(problem, crate::inputs::Asker::Jobs)
}

/// A client for a recorded job's own session (not remembered as the last
/// session).
pub(crate) fn job_client(app: &App, job: &Job) -> Result<Client, NemoError> {
    app.client(
        Some(SessionRef {
            session_id: job.session_id.clone(),
            task_id: job.task_id.clone(),
        }),
        Persist {
            last_session: false,
            client_id: true,
        },
    )
}

fn forget(app: &App, ids: &[String]) -> Result<(), NemoError> {
    let mut missing = Vec::new();
    for id in ids {
        if app.store.remove_job(id).map_err(store::error)? {
            app.out
                .info(&format!("Forgot render {id} (it stays on the server)."));
            app.out
                .emit(json!({"type": "render", "id": id, "status": "forgotten", "progress": null}));
        } else {
            missing.push(id.as_str());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(NemoError::new(
            ErrorKind::BadInput,
            format!(
                "No recorded job {}: see `nemo jobs` for the ids.",
                missing.join(", ")
            ),
        ))
    }
}

fn list(app: &App, jobs: &[Job]) {
    if jobs.is_empty() {
        // The answer, on stdout; a `status` object in JSON mode, so a
        // script sees one too.
        let none = crate::words::tr("No render jobs recorded.");
        app.out.plain(none);
        app.out.emit(json!({"type": "status", "message": none}));
        return;
    }
    // Every lease probed at once: one wait, not one per running render.
    let running = app
        .store
        .leased_elsewhere(jobs.iter().map(|j| j.id.as_str()));
    if app.out.json() {
        for job in jobs {
            let running = running.contains(&job.id);
            app.out.emit(json!({
                "type": "render",
                "id": job.id,
                "status": if running { "running" } else { "recorded" },
                "progress": null,
                "session_id": job.session_id,
                "out": job.out,
                "api_url": job.api_url,
            }));
        }
        return;
    }
    app.out.plain(&jobs_table(jobs, |id| running.contains(id)));
    app.out.plain(tr("Finish them with `nemo jobs --resume` (running ones are left to the process waiting for them); drop one with `nemo jobs forget <RENDER>`."));
}

/// The recorded jobs as an aligned table (render, state, session, age,
/// output); `running` says whether another process waits for a render.
pub(crate) fn jobs_table(jobs: &[Job], running: impl Fn(&str) -> bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let rows: Vec<[String; 5]> = jobs
        .iter()
        .map(|j| {
            [
                j.id.clone(),
                if running(&j.id) { "running" } else { "waiting" }.to_owned(),
                j.session_id.clone(),
                nemo_core::time::human_duration(std::time::Duration::from_secs(
                    now.saturating_sub(j.created_unix),
                )) + " ago",
                j.out
                    .as_ref()
                    .map_or("(no download)".to_owned(), |p| p.display().to_string()),
            ]
        })
        .collect();
    table(["RENDER", "STATE", "SESSION", "STARTED", "OUTPUT"], &rows)
}

/// Plain aligned columns.
/// (Headers in the command line's language; columns measured as a
/// terminal shows them, wide characters counting two.)
pub(crate) fn table<const N: usize>(head: [&'static str; N], rows: &[[String; N]]) -> String {
    use crate::timeline_view::text_width;
    let head = head.map(tr);
    // A cell may hold server text (an error, a first message): one line
    // each, or a newline would break the rows; a run of blanks one space,
    // or padding would push the rest of a row to the next terminal row.
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|row| {
            row.clone()
                .map(|c| nemo_core::draft::one_line(&nemo_core::ids::printable_line(&c)))
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = head.iter().map(|h| text_width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(text_width(cell));
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(cell);
            if i + 1 < N {
                s.push_str(&" ".repeat(w.saturating_sub(text_width(cell)) + 2));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = vec![line(head.to_vec())];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// Turns per-item failures into the command's result: success when none
/// failed; else a permanent failure if any was permanent, transient if all
/// were transient.
pub(crate) fn summarise(
    total: usize,
    failures: Vec<NemoError>,
    noun: &str,
) -> Result<(), NemoError> {
    if failures.is_empty() {
        return Ok(());
    }
    let n = failures.len();
    let kind = failures
        .iter()
        .find(|e| !e.is_retryable())
        .map_or(failures[0].kind, |e| e.kind);
    let again = if failures.iter().all(NemoError::is_retryable) {
        " They failed for reasons that may pass: run the command again."
    } else {
        ""
    };
    Err(NemoError::new(
        kind,
        format!(
            "{n} of {total} {noun}{} failed (see above).{again}",
            if total == 1 { "" } else { "s" }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up_with_wide_characters() {
        let rows = [
            ["s1".to_owned(), "加上音乐".to_owned(), "x".to_owned()],
            ["session-2".to_owned(), "music".to_owned(), "y".to_owned()],
        ];
        let text = table(["SESSION", "FIRST MESSAGE", "FROM"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        // The last column starts at the same terminal column on every line.
        let col = |l: &str| crate::timeline_view::text_width(&l[..l.rfind(' ').unwrap() + 1]);
        assert_eq!(col(lines[1]), col(lines[2]), "{text}");
        assert_eq!(col(lines[0]), col(lines[2]), "{text}");
    }

    /// A cell of server text padded with spaces or blank-looking characters
    /// cannot push the rest of a row onto the next terminal row.
    #[test]
    fn a_padded_cell_is_one_short_line() {
        let detail = format!(
            "bad{}{}Saved x.mp4",
            " ".repeat(60),
            "\u{2800}\u{3000}".repeat(30)
        );
        let rows = [["1".to_owned(), "failed".to_owned(), detail]];
        let text = table(["ITEM", "STATUS", "DETAIL"], &rows);
        let row = text.lines().nth(1).unwrap();
        assert!(row.ends_with("failed  bad Saved x.mp4"), "{text:?}");
    }
}
