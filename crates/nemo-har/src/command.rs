//! The user's turns, as stored on HAR pages (`_command`), and how they become
//! core commands again.

use std::path::{Path, PathBuf};

use nemo_core::machine::{Command, ExportOptions};
use nemo_core::route::UserInput;
use nemo_core::wire::FilePart;
use serde::{Deserialize, Serialize};

/// A local file named in a command: its name, type and size, never its
/// bytes or its directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFile {
    /// The file's name.
    pub name: String,
    /// Its content type (`video/mp4`, …).
    #[serde(default)]
    pub content_type: String,
    /// Its length in bytes.
    #[serde(default)]
    pub size: u64,
}

impl RecordedFile {
    fn from_part(part: &FilePart) -> Self {
        Self {
            name: part.filename.clone(),
            content_type: part.content_type.clone(),
            size: part.len,
        }
    }

    fn to_part(&self, dir: &Path) -> FilePart {
        FilePart {
            path: dir.join(safe_name(&self.name, "file")),
            filename: self.name.clone(),
            content_type: self.content_type.clone(),
            len: self.size,
        }
    }
}

/// A file name without directories (a recording never names a place).
fn safe_name(name: &str, fallback: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    if base.is_empty() || base == "." || base == ".." {
        fallback.to_owned()
    } else {
        base.to_owned()
    }
}

/// One user turn: the custom `_command` field of a HAR page.
///
/// Serialised with a `kind` tag: `{"kind":"say","text":"add music"}`,
/// `{"kind":"upload","files":[…],"urls":[…]}`, `{"kind":"credits"}`,
/// `{"kind":"timeline"}`, `{"kind":"export","download":true,"out":"final.mp4"}`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PageCommand {
    /// Get a token and a session.
    Connect,
    /// A message, routed by intent (`nemo say`, a chat line).
    Say {
        /// The user's words.
        text: String,
        /// Attached files.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<RecordedFile>,
        /// Attached URLs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        urls: Vec<String>,
    },
    /// Text sent straight to the agent, without routing.
    Instruct {
        /// The text.
        text: String,
    },
    /// Files and media URLs to upload.
    Upload {
        /// Local files.
        #[serde(default)]
        files: Vec<RecordedFile>,
        /// Media URLs.
        #[serde(default)]
        urls: Vec<String>,
    },
    /// The credit balance.
    Credits,
    /// The timeline.
    Timeline,
    /// Render, wait and (optionally) download.
    Export {
        /// Download the result.
        #[serde(default = "yes")]
        download: bool,
        /// The output file's name (no directories).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        out: Option<String>,
    },
    /// Finish a render submitted earlier.
    Resume {
        /// The render id.
        id: String,
        /// The output file's name (no directories).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        out: Option<String>,
    },
    /// Cancel a render.
    Cancel {
        /// The render id.
        id: String,
    },
    /// A browser link to the project.
    Claim,
}

fn yes() -> bool {
    true
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

impl PageCommand {
    /// The command as a page records it (file names and sizes only; output
    /// paths reduced to their file names).
    pub fn from_command(command: &Command) -> PageCommand {
        match command {
            Command::Connect => PageCommand::Connect,
            Command::Message(input) => PageCommand::Say {
                text: input.text.clone(),
                files: input.files.iter().map(RecordedFile::from_part).collect(),
                urls: input.urls.clone(),
            },
            Command::Instruct(text) => PageCommand::Instruct { text: text.clone() },
            Command::Upload { files, urls } => PageCommand::Upload {
                files: files.iter().map(RecordedFile::from_part).collect(),
                urls: urls.clone(),
            },
            Command::Credits => PageCommand::Credits,
            Command::Timeline => PageCommand::Timeline,
            Command::Export(options) => PageCommand::Export {
                download: options.download,
                out: options.out.as_deref().and_then(file_name),
            },
            Command::ResumeRender { id, options } => PageCommand::Resume {
                id: id.clone(),
                out: options.out.as_deref().and_then(file_name),
            },
            Command::CancelRender { id } => PageCommand::Cancel { id: id.clone() },
            Command::ClaimLink => PageCommand::Claim,
            // A command newer than this recorder (`Command` is
            // non-exhaustive): recorded as a connect, which a replay of a
            // connected session passes without a request.
            _ => PageCommand::Connect,
        }
    }

    /// The core command to issue on replay. Files get paths in `dir` (they
    /// need not exist: a replay sends no bytes); downloads go to `dir`.
    pub fn to_command(&self, dir: &Path) -> Command {
        let out = |name: &Option<String>, fallback: &str| -> Option<PathBuf> {
            Some(dir.join(safe_name(name.as_deref().unwrap_or(fallback), fallback)))
        };
        match self {
            PageCommand::Connect => Command::Connect,
            PageCommand::Say { text, files, urls } => Command::Message(UserInput {
                text: text.clone(),
                files: files.iter().map(|f| f.to_part(dir)).collect(),
                urls: urls.clone(),
            }),
            PageCommand::Instruct { text } => Command::Instruct(text.clone()),
            PageCommand::Upload { files, urls } => Command::Upload {
                files: files.iter().map(|f| f.to_part(dir)).collect(),
                urls: urls.clone(),
            },
            PageCommand::Credits => Command::Credits,
            PageCommand::Timeline => Command::Timeline,
            PageCommand::Export { download, out: o } => Command::Export(ExportOptions {
                render_id: None,
                download: *download,
                out: out(o, "export.mp4"),
                overwrite: true,
            }),
            PageCommand::Resume { id, out: o } => Command::ResumeRender {
                id: id.clone(),
                options: ExportOptions {
                    render_id: None,
                    download: true,
                    out: out(o, "export.mp4"),
                    overwrite: true,
                },
            },
            PageCommand::Cancel { id } => Command::CancelRender { id: id.clone() },
            PageCommand::Claim => Command::ClaimLink,
        }
    }

    /// A page title: the user's words for a message, else the command line
    /// that would do the same.
    pub fn title(&self) -> String {
        let names = |files: &[RecordedFile]| -> String {
            files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self {
            PageCommand::Connect => "nemo connect".into(),
            PageCommand::Say { text, files, .. } if files.is_empty() => text.clone(),
            PageCommand::Say { text, files, .. } => format!("{text} [{}]", names(files)),
            PageCommand::Instruct { text } => text.clone(),
            PageCommand::Upload { files, urls } => {
                let mut all = names(files);
                for u in urls {
                    if !all.is_empty() {
                        all.push(' ');
                    }
                    all.push_str(u);
                }
                format!("nemo upload {all}")
            }
            PageCommand::Credits => "nemo credits".into(),
            PageCommand::Timeline => "nemo timeline".into(),
            PageCommand::Export { download: true, .. } => "nemo export".into(),
            PageCommand::Export {
                download: false, ..
            } => "nemo export --no-download".into(),
            PageCommand::Resume { id, .. } => format!("nemo resume {id}"),
            PageCommand::Cancel { id } => format!("nemo cancel {id}"),
            PageCommand::Claim => "nemo link".into(),
        }
    }
}

impl From<&Command> for PageCommand {
    fn from(command: &Command) -> Self {
        PageCommand::from_command(command)
    }
}
