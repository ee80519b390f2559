//! The engine behind the tools: one session for the server's life, run one
//! command at a time; what the session's events add up to ([`Outcome`]); and
//! MCP progress notifications for the caller that asked for them.

use std::sync::{Arc, Mutex};

use nemo_core::driver::{ProgressSink, TransferKind};
use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::{Command, Event};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::RequestContext;
use rmcp::RoleServer;
use tokio::sync::{mpsc, Notify};

use crate::app::{App, Client, SessionChoice};

/// Everything a command's events said, gathered for the tool's answer:
/// the library's [`nemo_client::Turn`].
pub(crate) use nemo_client::Turn as Outcome;

/// `p` made absolute against the working directory (as the journal
/// records it).
pub(crate) use nemo_client::absolute;

/// How a tool wants its command to end early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopAt {
    /// Run to the end.
    Never,
    /// Once the server has accepted a render (its first progress report):
    /// the render keeps going and stays in the job list.
    RenderAccepted,
    /// Once a render's status has been read and it is not finished.
    RenderStillRunning,
}

impl StopAt {
    fn reached(self, event: &Event) -> bool {
        match (self, event) {
            (StopAt::RenderAccepted, Event::RenderProgress { .. }) => true,
            (StopAt::RenderStillRunning, Event::RenderProgress { phase, .. }) => !phase.is_final(),
            _ => false,
        }
    }
}

/// How progress is counted for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Steps (status lines, "still working"), without a total.
    Steps,
    /// 0–100: render progress up to 90, the download the rest.
    Render,
    /// 0–100: bytes uploaded.
    Upload,
}

/// Progress notifications for one tool call that carried a progress token.
/// Values only ever grow (as MCP requires); each one goes out in order
/// through a channel drained by a task.
struct Progress {
    token: ProgressToken,
    tx: mpsc::UnboundedSender<ProgressNotificationParam>,
    scale: Scale,
    last: f64,
}

impl Progress {
    fn send(&mut self, value: f64, message: String) {
        if value.is_nan() || value <= self.last {
            return;
        }
        self.last = value;
        let mut p = ProgressNotificationParam::new(self.token.clone(), value).with_message(message);
        if self.scale != Scale::Steps {
            p = p.with_total(100.0);
        }
        let _ = self.tx.send(p);
    }

    fn event(&mut self, event: &Event) {
        match (self.scale, event) {
            (Scale::Steps, Event::Status(message)) => self.send(self.last + 1.0, message.clone()),
            (Scale::Steps, Event::StillWorking { elapsed }) => self.send(
                self.last + 1.0,
                format!(
                    "Still working… ({})",
                    nemo_core::time::human_duration(*elapsed)
                ),
            ),
            (
                Scale::Render,
                Event::RenderProgress {
                    phase, progress, ..
                },
            ) if !phase.is_final() => {
                let percent = progress.unwrap_or(0.0).clamp(0.0, 100.0);
                self.send(
                    (percent * 0.9).max(0.5),
                    format!("Rendering: {} {percent:.0}%", phase.as_str()),
                );
            }
            (Scale::Render, Event::RenderCompleted { .. }) => {
                self.send(90.0, "Rendered; downloading…".into());
            }
            (Scale::Render, Event::Downloaded { .. }) => self.send(100.0, "Downloaded.".into()),
            _ => {}
        }
    }

    fn transfer(&mut self, kind: TransferKind, done: u64, total: Option<u64>) {
        let Some(total) = total.filter(|t| *t > 0) else {
            return;
        };
        let fraction = (done as f64 / total as f64).clamp(0.0, 1.0);
        // Whole percents only: a notification per chunk would flood the client.
        let percent = (fraction * 100.0).floor();
        match (self.scale, kind) {
            (Scale::Render, TransferKind::Download) => {
                self.send(90.0 + percent / 10.0, format!("Downloading: {percent:.0}%"))
            }
            (Scale::Upload, TransferKind::Upload) => {
                self.send(percent, format!("Uploading: {percent:.0}%"))
            }
            _ => {}
        }
    }
}

type Slot = Arc<Mutex<Option<Progress>>>;

fn lock(slot: &Slot) -> std::sync::MutexGuard<'_, Option<Progress>> {
    // Only progress bookkeeping lives here; a poisoned lock is still usable.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// The session shared by every tool call, and what it runs with.
pub(crate) struct Engine {
    /// The environment and the config directory, as the CLI resolves them.
    pub(crate) app: App,
    main: tokio::sync::Mutex<Client>,
    progress: Slot,
}

/// One tool call's view of its request: cancellation and progress token.
pub(crate) struct Call<'a> {
    ctx: &'a RequestContext<RoleServer>,
    scale: Scale,
}

impl<'a> Call<'a> {
    /// A call counting progress on `scale`.
    pub(crate) fn new(ctx: &'a RequestContext<RoleServer>, scale: Scale) -> Self {
        Call { ctx, scale }
    }
}

impl Engine {
    /// The engine for `app`: the session it continues (`--session`, else the
    /// last one, else a new one on first use). Nothing is sent yet.
    pub(crate) fn new(app: App) -> Result<Engine, NemoError> {
        let progress: Slot = Arc::new(Mutex::new(None));
        let mut main = app.session_client_unprepared(SessionChoice::ContinueOrNew)?;
        main.on_progress(transfer_sink(&progress));
        Ok(Engine {
            app,
            main: tokio::sync::Mutex::new(main),
            progress,
        })
    }

    /// The session id, if one is chosen or connected.
    pub(crate) async fn session_id(&self) -> Option<String> {
        self.main.lock().await.session_id()
    }

    /// Runs `command` in the main session (one call at a time).
    pub(crate) async fn run(
        &self,
        call: &Call<'_>,
        command: Command,
        stop_at: StopAt,
    ) -> (Result<(), NemoError>, Outcome) {
        let mut client = self.main.lock().await;
        self.run_on(&mut client, call, command, stop_at).await
    }

    /// Runs `command` on `client` (a job's own session), still one call at a
    /// time.
    pub(crate) async fn run_other(
        &self,
        mut client: Client,
        call: &Call<'_>,
        command: Command,
        stop_at: StopAt,
    ) -> (Result<(), NemoError>, Outcome) {
        let _turn = self.main.lock().await;
        client.on_progress(transfer_sink(&self.progress));
        self.run_on(&mut client, call, command, stop_at).await
    }

    /// Finishes recorded render jobs ([`nemo_client::Client::resume_jobs`]:
    /// its rules, this call's progress and cancellation), with what each
    /// job's events said.
    pub(crate) async fn resume_jobs(
        &self,
        call: &Call<'_>,
        options: &nemo_client::ResumeJobs,
    ) -> Result<Vec<(nemo_client::Job, nemo_client::JobResult, Outcome)>, NemoError> {
        let mut client = self.main.lock().await;
        let forwarder = self.start_progress(call);
        let mut outcomes: Vec<(String, Outcome)> = Vec::new();
        let result = {
            let progress = self.progress.clone();
            let mut watch = |p: &nemo_client::JobProgress<'_>| match p {
                nemo_client::JobProgress::Starting { job, .. } => {
                    outcomes.push((job.id.clone(), Outcome::default()));
                    if let Some(p) = lock(&progress).as_mut() {
                        p.event(&Event::Status(format!("Resuming {}…", job.id)));
                    }
                }
                nemo_client::JobProgress::Event { event, .. } => {
                    if let Some((_, outcome)) = outcomes.last_mut() {
                        outcome.see(event);
                    }
                    if let Some(p) = lock(&progress).as_mut() {
                        p.event(event);
                    }
                }
                _ => {}
            };
            let cancelled = call.ctx.ct.clone();
            client
                .resume_jobs(
                    options,
                    &mut watch,
                    async move { cancelled.cancelled().await },
                )
                .await
        };
        self.finish_progress(forwarder).await;
        let results = result?;
        Ok(results
            .into_iter()
            .map(|(job, result)| {
                let outcome = outcomes
                    .iter()
                    .position(|(id, _)| *id == job.id)
                    .map(|i| outcomes.swap_remove(i).1)
                    .unwrap_or_default();
                (job, result, outcome)
            })
            .collect())
    }

    /// Starts forwarding progress notifications, when the call asked for
    /// them.
    fn start_progress(&self, call: &Call<'_>) -> Option<tokio::task::JoinHandle<()>> {
        let token = call.ctx.meta.get_progress_token()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<ProgressNotificationParam>();
        *lock(&self.progress) = Some(Progress {
            token,
            tx,
            scale: call.scale,
            last: 0.0,
        });
        let peer = call.ctx.peer.clone();
        Some(tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                // A client that went away cannot be told anything.
                let _ = peer.notify_progress(p).await;
            }
        }))
    }

    /// Dropping the sender ends the forwarder once it has sent the rest, so
    /// every notification goes out before the answer.
    async fn finish_progress(&self, forwarder: Option<tokio::task::JoinHandle<()>>) {
        lock(&self.progress).take();
        if let Some(task) = forwarder {
            let _ = task.await;
        }
    }

    async fn run_on(
        &self,
        client: &mut Client,
        call: &Call<'_>,
        command: Command,
        stop_at: StopAt,
    ) -> (Result<(), NemoError>, Outcome) {
        let forwarder = self.start_progress(call);
        let reached = Arc::new(Notify::new());
        let mut stopped_early = false;
        let mut outcome = Outcome::default();
        let result = {
            let progress = self.progress.clone();
            let reached_tx = reached.clone();
            let verbose = self.app.global.verbose > 0;
            let mut watch = |ev: &Event| {
                outcome.see(ev);
                if verbose {
                    // Stderr only: stdout carries the protocol. These lines
                    // never hold a token.
                    if let Event::Status(line) | Event::Note(line) = ev {
                        eprintln!("nemo mcp: {line}");
                    }
                }
                if let Some(p) = lock(&progress).as_mut() {
                    p.event(ev);
                }
                if stop_at.reached(ev) {
                    reached_tx.notify_one();
                }
            };
            let cancelled = call.ctx.ct.clone();
            let reached_rx = reached.clone();
            let stopped = &mut stopped_early;
            let stop = async move {
                tokio::select! {
                    () = cancelled.cancelled() => {}
                    () = reached_rx.notified() => *stopped = true,
                }
            };
            client.run_until(command, &mut watch, stop).await
        };
        self.finish_progress(forwarder).await;
        let result = match result {
            Err(e) if stopped_early && e.kind == ErrorKind::Cancelled => Ok(()),
            other => other,
        };
        (result, outcome)
    }
}

/// Transfer progress into whatever call is current.
fn transfer_sink(slot: &Slot) -> ProgressSink {
    let slot = slot.clone();
    Arc::new(move |kind, p| {
        if let Some(progress) = lock(&slot).as_mut() {
            progress.transfer(kind, p.done, p.total);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nemo_core::machine::RenderPhase;

    #[test]
    fn progress_values_only_grow_whatever_the_server_reports() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut p = Progress {
            token: ProgressToken(rmcp::model::NumberOrString::Number(1)),
            tx,
            scale: Scale::Render,
            last: 0.0,
        };
        let at = |progress: f64| Event::RenderProgress {
            id: "r1".into(),
            phase: RenderPhase::Processing,
            progress: Some(progress),
        };
        // A render status that goes back (98 then 95), a NaN, a repeat, then
        // the download: what goes out still only grows, and ends at 100.
        for event in [at(5.0), at(98.0), at(95.0), at(f64::NAN), at(98.0)] {
            p.event(&event);
        }
        p.event(&Event::RenderCompleted {
            id: "r1".into(),
            url: "https://cdn.example/r1.mp4".into(),
        });
        for done in [10, 60, 40, 100] {
            p.transfer(TransferKind::Download, done, Some(100));
        }
        p.event(&Event::Downloaded {
            id: "r1".into(),
            path: "r1.mp4".into(),
            bytes: 100,
        });
        drop(p);
        let mut values = Vec::new();
        while let Ok(n) = rx.try_recv() {
            values.push(n.progress);
        }
        assert_eq!(values, [4.5, 88.2, 90.0, 91.0, 96.0, 100.0]);
    }
}
