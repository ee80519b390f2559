//! `nemo chat`: an interactive conversation in the session. Each line is
//! routed by intent like `nemo say`; paths of existing media files in a line
//! are attached to it. Line editing and history (in the config directory)
//! on a terminal; lines read from stdin otherwise.

use std::io::{BufRead, IsTerminal};

use nemo_core::error::{ErrorKind, NemoError};
use nemo_core::machine::Command;
use nemo_core::route::UserInput;
use rustyline::error::ReadlineError;

use crate::app::{App, SessionChoice};
use crate::commands::jobs::summarise;

/// Arguments of `nemo chat` (none).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

const HELP: &str = "Say what you want in words; attach files by typing their paths.
  export | download      render and download the video
  status | show tracks   the timeline
  credits                the credit balance
  /help                  this help
  /quit                  leave (Ctrl-D works too)";

/// What the next read gave.
enum Next {
    /// A line of text.
    Line(String),
    /// Ctrl-C at the prompt: the line typed so far is dropped.
    Dropped,
    /// A line that is not UTF-8 text (skipped, with a warning).
    NotText,
}

enum Lines {
    Editor(Box<rustyline::DefaultEditor>, std::path::PathBuf),
    Stdin(std::io::StdinLock<'static>),
}

impl Lines {
    fn open(app: &App) -> Lines {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            if let Ok(mut editor) = rustyline::DefaultEditor::new() {
                let history = crate::store::history_path(&app.store);
                let _ = editor.load_history(&history);
                return Lines::Editor(Box::new(editor), history);
            }
        }
        Lines::Stdin(std::io::stdin().lock())
    }

    /// The next line, or `None` at the end (EOF, Ctrl-D).
    fn next(&mut self) -> Option<Next> {
        tokio::task::block_in_place(|| match self {
            Lines::Editor(editor, _) => match editor.readline("› ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Some(Next::Line(line))
                }
                // As in a shell: Ctrl-C drops the line being typed and
                // gives a fresh prompt; it does not end the conversation.
                Err(ReadlineError::Interrupted) => Some(Next::Dropped),
                Err(_) => None,
            },
            Lines::Stdin(stdin) => {
                let mut bytes = Vec::new();
                match stdin.read_until(b'\n', &mut bytes) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(match String::from_utf8(bytes) {
                        Ok(line) => Next::Line(line),
                        Err(_) => Next::NotText,
                    }),
                }
            }
        })
    }

    fn save(&mut self, app: &App) {
        if let Lines::Editor(editor, path) = self {
            // The history is written straight by rustyline; make it private
            // through the store's directory (created 0700) first.
            if std::fs::create_dir_all(app.store.dir()).is_ok() && editor.save_history(path).is_ok()
            {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ =
                        std::fs::set_permissions(&*path, std::fs::Permissions::from_mode(0o600));
                }
            }
        }
    }
}

/// Runs `nemo chat`.
pub(crate) async fn exec(_args: Args, app: &App) -> Result<(), NemoError> {
    let out = app.out.clone();
    let mut lines = Lines::open(app);
    if !out.json() {
        out.plain(app.skill.greeting);
        out.plain(crate::words::tr("Try saying:"));
        for example in app.skill.examples {
            out.plain(&format!("  • \"{example}\""));
        }
        out.plain(crate::words::tr("Type /help for help, /quit to leave."));
    }
    let mut client = app.session_client(SessionChoice::ContinueOrNew).await?;
    let mut failures = Vec::new();
    let mut turns = 0;
    let mut dropped_once = false;
    while let Some(next) = lines.next() {
        let line = match next {
            Next::Line(line) => line,
            Next::Dropped => {
                if !dropped_once {
                    out.info(crate::words::tr(
                        "(Ctrl-C drops the line; type /quit or press Ctrl-D to leave.)",
                    ));
                    dropped_once = true;
                }
                continue;
            }
            Next::NotText => {
                out.warn(crate::words::tr("Skipped a line that is not UTF-8 text."));
                continue;
            }
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" | "/q" => break,
            "/help" | "/?" => {
                out.plain(crate::words::tr(HELP));
                continue;
            }
            _ if line.starts_with('/') => {
                out.info(&crate::words::trf(
                    "Unknown command {}; type /help.",
                    &[&line],
                ));
                continue;
            }
            _ => {}
        }
        turns += 1;
        let result = match nemo_client::inputs::named_files(line) {
            Ok((text, files)) => {
                let input = UserInput {
                    text,
                    files,
                    urls: Vec::new(),
                };
                match app.preflight_message(&input) {
                    Ok(()) => client.run(Command::Message(input)).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            out.error(&e);
            failures.push(e);
        }
        if !out.json() {
            out.plain("");
        }
    }
    lines.save(app);
    // A conversation ended by the user is a success; a script piping lines
    // in learns from the exit code whether every message went through.
    if failures.iter().all(|e| e.kind == ErrorKind::Cancelled) {
        return Ok(());
    }
    summarise(turns, failures, "message")
}
