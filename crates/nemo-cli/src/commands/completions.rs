//! `nemo completions <SHELL>`: a completion script on stdout.

use clap_complete::Shell;
use nemo_core::error::NemoError;

/// Arguments of `nemo completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    pub(crate) shell: Shell,
}

/// Runs `nemo completions`.
pub(crate) fn exec(args: Args) -> Result<(), NemoError> {
    let mut command = crate::cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "nemo", &mut script);
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(NemoError::new(
            nemo_core::error::ErrorKind::BadInput,
            format!("cannot write the script: {e}"),
        )),
        _ => Ok(()),
    }
}
