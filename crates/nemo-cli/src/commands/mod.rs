//! One file per subcommand (as in cargo): its `Args` and its `exec`.

pub(crate) mod batch;
pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod credits;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod jobs;
pub(crate) mod mcp;
pub(crate) mod mock;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod say;
pub(crate) mod sessions;
pub(crate) mod timeline;
pub(crate) mod upload;

use std::sync::Arc;

use nemo_core::error::NemoError;

use crate::app::App;
use crate::cli::{Cli, Cmd};
use crate::output::Output;

/// Runs the chosen subcommand.
pub(crate) async fn exec(cli: Cli, out: Arc<Output>) -> Result<(), NemoError> {
    let global = cli.global;
    match cli.command {
        Cmd::Completions(args) => completions::exec(args),
        Cmd::Mock(args) => mock::exec(args).await,
        Cmd::Replay(args) => replay::exec(args, &out),
        Cmd::Demo(args) => demo::exec(args, &global, out).await,
        Cmd::Chat(args) => chat::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Say(args) => say::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Upload(args) => upload::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Credits(args) => credits::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Timeline(args) => timeline::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Export(args) => export::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Jobs(args) => jobs::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Run(args) => run::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Batch(args) => batch::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Mcp(args) => mcp::exec(args, &global).await,
        Cmd::Sessions(args) => sessions::exec(args, &App::from_env(&global, out)?).await,
        Cmd::Config(args) => {
            config::exec(args, &App::from_env(&global, out)?);
            Ok(())
        }
    }
}
