//! `nemo config [path]`: where the config folder is and the values in
//! effect, each with where it came from (flag, environment, file, default),
//! as `gh config` and `rclone config file` do. Never a token's value.

use serde_json::json;

use crate::app::App;
use crate::commands::jobs::table;

/// Arguments of `nemo config`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  nemo config
  nemo config path                      # just the folder, for scripts
  NEMO_CONFIG_DIR=/tmp/nemo nemo config"
)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) action: Option<Action>,
    /// Session options (also accepted before the command's name).
    #[command(flatten)]
    pub(crate) session: crate::cli::SessionOpts,
}

/// `nemo config path`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Action {
    /// Print the config folder's path only.
    Path,
}

/// Runs `nemo config`.
pub(crate) fn exec(args: Args, app: &App) {
    let dir = app.store.dir().display().to_string();
    if let Some(Action::Path) = args.action {
        app.out.plain(&dir);
        app.out.emit(json!({"type": "config", "folder": dir}));
        return;
    }
    let settings = app.settings();
    let mut object = serde_json::Map::new();
    object.insert("type".into(), "config".into());
    object.insert("folder".into(), dir.clone().into());
    let mut rows = Vec::new();
    for s in &settings {
        object.insert(s.key.into(), json!({"value": s.value, "source": s.source}));
        rows.push([s.label.to_owned(), s.value.clone(), s.source.to_owned()]);
    }
    app.out.emit(serde_json::Value::Object(object));
    app.out
        .plain(&crate::words::trf("Config folder: {}", &[&dir]));
    app.out.plain(&table(["SETTING", "VALUE", "FROM"], &rows));
}
