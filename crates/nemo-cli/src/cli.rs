//! The command line: global flags and the subcommands, each defined in its
//! own file under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// Drive the NemoVideo cloud video agent: edit, generate and export videos
/// from a terminal or a script.
#[derive(Debug, Parser)]
#[command(
    name = "nemo",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Start with `nemo demo` (offline, no token). Exit codes: 0 success, 1 permanent failure, \
2 transient failure (safe to retry), 130 interrupted."
)]
pub(crate) struct RawCli {
    /// Options of every command.
    #[command(flatten)]
    flags: Flags,
    /// Session options, before the command (`nemo --session ID say …`).
    #[command(flatten)]
    session: SessionOpts,
    /// What to do.
    #[command(subcommand)]
    command: Cmd,
}

/// A parsed command line: the options in effect and the command.
#[derive(Debug)]
pub(crate) struct Cli {
    /// The options in effect (given before or after the command).
    pub(crate) global: Global,
    /// What to do.
    pub(crate) command: Cmd,
}

/// Options every command takes, before or after its name.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Flags {
    /// Print NDJSON on stdout (one object per line, each with a `type`), nothing else.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Say more: every status line, session and render ids (on stderr);
    /// -vv also each request and answer.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,
    /// Say less: results and errors only (no progress, no notes).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

/// Options of the commands that work in a session, before or after the
/// command's name (not offered by `mock`, `replay`, `completions`, where
/// they mean nothing).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Session options")]
pub(crate) struct SessionOpts {
    /// The skill flavour: video-download-online, video-maker-free-download-app,
    /// generator-by-link or video-openapi.
    #[arg(
        long,
        env = "NEMO_SKILL",
        hide_env_values = true,
        hide_possible_values = true,
        value_name = "NAME",
        value_parser = SkillName
    )]
    pub(crate) skill: Option<String>,
    /// Continue this session instead of the last one.
    #[arg(long, value_name = "ID", conflicts_with = "new_session")]
    pub(crate) session: Option<String>,
    /// Start a new session instead of continuing the last one.
    #[arg(long)]
    pub(crate) new_session: bool,
    /// The language the agent answers in: en or zh (default: zh when the
    /// locale is Chinese, else en).
    #[arg(long, value_name = "CODE", value_parser = language)]
    pub(crate) lang: Option<String>,
    /// Record every exchange with the service to this HAR 1.2 file (tokens
    /// redacted); replay it offline with `nemo replay`.
    #[arg(long, value_name = "FILE.har")]
    pub(crate) record: Option<std::path::PathBuf>,
}

/// The options in effect: the flags, and the session options given before
/// the command or after it (after wins).
#[derive(Debug, Clone, Default)]
pub(crate) struct Global {
    /// `--json`.
    pub(crate) json: bool,
    /// `--skill`.
    pub(crate) skill: Option<String>,
    /// `--session`.
    pub(crate) session: Option<String>,
    /// `--new-session`.
    pub(crate) new_session: bool,
    /// `--lang`.
    pub(crate) lang: Option<String>,
    /// `--record`.
    pub(crate) record: Option<std::path::PathBuf>,
    /// `-v` (counted).
    pub(crate) verbose: u8,
    /// `-q`.
    pub(crate) quiet: bool,
}

impl Global {
    /// `flags` with the session options: `after` (given after the
    /// command's name) wins over `before`. Naming a session and asking for
    /// a new one at once is refused.
    fn of(
        flags: Flags,
        before: SessionOpts,
        after: Option<&SessionOpts>,
    ) -> Result<Global, String> {
        let after = after.cloned().unwrap_or_default();
        let global = Global {
            json: flags.json,
            skill: after.skill.or(before.skill),
            session: after.session.or(before.session),
            new_session: after.new_session || before.new_session,
            lang: after.lang.or(before.lang),
            record: after.record.or(before.record),
            verbose: flags.verbose,
            quiet: flags.quiet,
        };
        if global.session.is_some() && global.new_session {
            return Err("--session ID and --new-session cannot be used together".into());
        }
        Ok(global)
    }
}

impl Global {
    /// The base language in effect, `en` or `zh`: what the command line's
    /// own decisions go by (its words, anything compared with "zh"). The
    /// base of [`Global::lang_tag`].
    pub(crate) fn lang(&self) -> &'static str {
        base_language(&self.lang_tag())
    }

    /// The language the session is created in, as a normalised tag (`en`,
    /// `zh`, `zh-TW`, `zh-Hant-TW`): `--lang`, else the locale's, else en.
    pub(crate) fn lang_tag(&self) -> String {
        match &self.lang {
            Some(tag) => tag.clone(),
            None => locale_language(|name| std::env::var(name).ok()),
        }
    }
}

/// `en` or `zh`: the base of a tag [`language`] accepted.
fn base_language(tag: &str) -> &'static str {
    let base = tag.split(['-', '_']).next().unwrap_or("");
    if base.eq_ignore_ascii_case("zh") {
        "zh"
    } else {
        "en"
    }
}

/// The locale's language (`LC_ALL`, `LC_MESSAGES`, `LANG`, the first one
/// set): a Chinese one as a tag (`zh_TW.UTF-8` → `zh-TW`: Traditional or
/// Simplified matters), `zh` when spelt some other way; else `en` (an
/// English locale's region is not asked for: `en_US` is every terminal's
/// default, and `en` is what every server knows).
fn locale_language(var: impl Fn(&str) -> Option<String>) -> String {
    let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|name| var(name).filter(|v| !v.is_empty()))
        .unwrap_or_default();
    match language(&locale) {
        Ok(tag) if base_language(&tag) == "zh" => tag,
        Err(_) if locale.to_ascii_lowercase().starts_with("zh") => "zh".into(),
        _ => "en".into(),
    }
}

/// `--lang`: en or zh, in any usual spelling (`zh-CN`, `zh_TW`, `en-US`,
/// `zh_TW.UTF-8`), kept as a normalised tag: the encoding (`.UTF-8`) and
/// modifier (`@…`) dropped, `_` made `-`, the language lower case, a
/// script title case (`Hant`), a region upper case (`TW`, `419`), anything
/// else lower case.
fn language(value: &str) -> Result<String, String> {
    let not_spoken =
        || format!("`{value}` is not a language nemo speaks; use en (English) or zh (中文)");
    let tag = value.trim();
    let tag = tag.split(['.', '@']).next().unwrap_or("");
    let mut subtags = tag.split(['-', '_']);
    let base = subtags.next().unwrap_or("").to_ascii_lowercase();
    if base != "en" && base != "zh" {
        return Err(not_spoken());
    }
    let mut out = base;
    for subtag in subtags {
        if subtag.is_empty()
            || subtag.len() > 8
            || !subtag.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(format!(
                "`{value}` is not a language tag; use en or zh, with a region if you like (zh-TW, en-GB)"
            ));
        }
        let alpha = subtag.chars().all(|c| c.is_ascii_alphabetic());
        let digits = subtag.chars().all(|c| c.is_ascii_digit());
        let subtag = match subtag.len() {
            4 if alpha => {
                let lower = subtag.to_ascii_lowercase();
                lower[..1].to_ascii_uppercase() + &lower[1..]
            }
            2 if alpha => subtag.to_ascii_uppercase(),
            3 if digits => subtag.to_owned(),
            _ => subtag.to_ascii_lowercase(),
        };
        out.push('-');
        out.push_str(&subtag);
    }
    Ok(out)
}

/// `--skill`: one of the four flavours (any case), offered to completions.
#[derive(Debug, Clone, Copy)]
struct SkillName;

impl clap::builder::TypedValueParser for SkillName {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let text = value.to_string_lossy();
        nemo_client::flavour::find(Some(&text))
            .map(|skill| skill.name.to_owned())
            .map_err(|e| {
                clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!("{}\n", e.message),
                )
            })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            nemo_client::flavour::SKILLS
                .iter()
                .map(|s| clap::builder::PossibleValue::new(s.name)),
        ))
    }
}

impl Cmd {
    /// The session options given after the command's name, for the
    /// commands that take them.
    fn session_opts(&self) -> Option<&SessionOpts> {
        match self {
            Cmd::Chat(a) => Some(&a.session),
            Cmd::Say(a) => Some(&a.session),
            Cmd::Upload(a) => Some(&a.session),
            Cmd::Credits(a) => Some(&a.session),
            Cmd::Timeline(a) => Some(&a.session),
            Cmd::Export(a) => Some(&a.session),
            Cmd::Sessions(a) => Some(&a.session),
            Cmd::Config(a) => Some(&a.session),
            Cmd::Jobs(a) => Some(&a.session),
            Cmd::Run(a) => Some(&a.session),
            Cmd::Batch(a) => Some(&a.session),
            Cmd::Mcp(a) => Some(&a.session),
            Cmd::Demo(a) => Some(&a.session),
            Cmd::Replay(_) | Cmd::Mock(_) | Cmd::Completions(_) => None,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Interactive conversation (line editing, history).
    #[command(after_help = "Examples:
  nemo chat
  nemo chat --new-session --lang zh
  printf 'add lo-fi music at 35%\\nexport\\n' | nemo chat     # scripted")]
    Chat(commands::chat::Args),
    /// One turn, routed by intent (export, credits, status and upload words skip the agent).
    #[command(after_help = "Examples:
  nemo say \"add lo-fi background music at 35% and the title 'Urban Dreams'\"
  nemo say \"make it vertical\" --file clip.mp4
  nemo say \"generate a 10 second city timelapse\"
  nemo say export                      # renders and saves <render id>.mp4 here")]
    Say(commands::say::Args),
    /// Upload local files or media URLs to the session.
    #[command(after_help = "Examples:
  nemo upload clip.mp4 music.mp3
  nemo upload https://example.com/clip.mp4
  nemo --new-session upload intro.mov")]
    Upload(commands::upload::Args),
    /// Show the credit balance.
    #[command(after_help = "Examples:
  nemo credits
  nemo --json credits | jq .available")]
    Credits(commands::credits::Args),
    /// The current draft as a timeline summary.
    #[command(visible_alias = "state")]
    #[command(after_help = "Examples:
  nemo timeline
  nemo --json timeline
  nemo --session 1234567890 timeline")]
    Timeline(commands::timeline::Args),
    /// Render the draft, wait with progress, download.
    #[command(after_help = "Examples:
  nemo export
  nemo export -o final.mp4 --overwrite
  nemo export --no-download            # render only, print the URL")]
    Export(commands::export::Args),
    /// Sessions used from this machine; switch to one, or forget it.
    Sessions(commands::sessions::Args),
    /// Where the config folder is, and the values in effect with their source.
    Config(commands::config::Args),
    /// Render jobs recorded locally; --resume finishes them.
    #[command(after_help = "Examples:
  nemo jobs
  nemo jobs --resume
  nemo jobs --resume --dir ~/Videos --overwrite
  nemo jobs forget render_1780000000000")]
    Jobs(commands::jobs::Args),
    /// The quick-edit workflow in one command: connect, upload, instruct, export, download.
    #[command(after_help = "Examples:
  nemo run \"add lo-fi music at 35% and the title 'Hello'\" --file clip.mp4 -o hello.mp4
  nemo run \"make a 15 second teaser\" --url https://example.com/long.mp4")]
    Run(commands::run::Args),
    /// Many inputs, one instruction and one render each, from a TOML or JSON manifest.
    Batch(commands::batch::Args),
    /// Serve the engine to AI agents over the Model Context Protocol (stdio).
    #[command(after_help = "Examples:
  nemo mcp                              # speak MCP on stdin/stdout
  claude mcp add nemo -- nemo mcp       # register it with an agent")]
    Mcp(commands::mcp::Args),
    /// Replay a recorded session (HAR) offline and print what the user saw; --check compares requests.
    #[command(after_help = "Examples:
  nemo --record session.har say \"add a title\"
  nemo replay session.har
  nemo replay session.har --check       # fail when the requests differ")]
    Replay(commands::replay::Args),
    /// Run the NemoVideo simulator on 127.0.0.1 (for tests and offline work).
    #[command(after_help = "Examples:
  nemo mock --port 8080 --time-scale 0.01
  NEMO_API_URL=http://127.0.0.1:8080 nemo say \"add a title\"
  nemo mock --faults \"run_sse:reset@1;render:fail\" --dialect typed")]
    Mock(commands::mock::Args),
    /// The whole workflow against the embedded simulator: no network, no token.
    #[command(after_help = "Examples:
  nemo demo")]
    Demo(commands::demo::Args),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  nemo completions bash > ~/.local/share/bash-completion/completions/nemo
  nemo completions zsh > \"${fpath[1]}/_nemo\"
  nemo completions fish > ~/.config/fish/completions/nemo.fish")]
    Completions(commands::completions::Args),
}

/// Parses the command line. Help and version go to stdout with exit 0; a
/// usage error is printed once and is a permanent failure (exit 1).
pub(crate) fn parse() -> Result<Cli, ExitCode> {
    parse_from(std::env::args_os())
}

/// [`parse`] of the given arguments.
pub(crate) fn parse_from<I, T>(args: I) -> Result<Cli, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::FromArgMatches;
    let parsed = command()
        .try_get_matches_from(args)
        .and_then(|m| RawCli::from_arg_matches(&m))
        .and_then(|raw| {
            let after = raw.command.session_opts().cloned();
            Global::of(raw.flags, raw.session, after.as_ref())
                .map(|global| Cli {
                    global,
                    command: raw.command,
                })
                .map_err(|why| {
                    clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{why}\n"))
                })
        });
    match parsed {
        Ok(cli) => Ok(cli),
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            // Printing help can only fail on a closed pipe, which is fine.
            let _ = err.print();
            Err(ExitCode::from(code))
        }
    }
}

/// The command line as clap sees it.
pub(crate) fn command() -> clap::Command {
    use clap::CommandFactory;
    RawCli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_and_locales() {
        assert_eq!(language("zh-CN").unwrap(), "zh-CN");
        assert_eq!(language("EN_us").unwrap(), "en-US");
        assert!(language("xx").unwrap_err().contains("en (English)"));
        assert!(language("de-DE").unwrap_err().contains("en (English)"));
        assert_eq!(
            locale_language(|n| (n == "LANG").then(|| "zh_CN.UTF-8".into())),
            "zh-CN"
        );
        assert_eq!(locale_language(|_| None), "en");
        assert_eq!(
            locale_language(|n| match n {
                "LC_ALL" => Some("en_US.UTF-8".into()),
                _ => Some("zh_CN.UTF-8".into()),
            }),
            "en"
        );
    }

    #[test]
    fn a_regional_tag_is_kept_normalised() {
        for (given, tag) in [
            ("zh", "zh"),
            ("ZH", "zh"),
            (" en ", "en"),
            ("zh-TW", "zh-TW"),
            ("zh_TW", "zh-TW"),
            ("zh-tw", "zh-TW"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("ZH_HANS_cn", "zh-Hans-CN"),
            ("zh_TW.UTF-8", "zh-TW"),
            ("zh_CN.GB18030@stroke", "zh-CN"),
            ("zh@pinyin", "zh"),
            ("en-GB", "en-GB"),
            ("en-419", "en-419"),
            ("en-US-POSIX", "en-US-posix"),
        ] {
            assert_eq!(language(given).as_deref(), Ok(tag), "{given}");
        }
        for bad in ["zh-", "zh--TW", "zh-T W", "zh-toolongsubtag", "zh-TW!"] {
            assert!(
                language(bad).unwrap_err().contains("not a language tag"),
                "{bad}"
            );
        }
        for other in ["", "x", "english", "fr-FR", "C", "POSIX", "zhx-TW"] {
            assert!(
                language(other)
                    .unwrap_err()
                    .contains("not a language nemo speaks"),
                "{other}"
            );
        }
    }

    #[test]
    fn the_base_goes_with_the_tag_and_the_locale_with_its_region() {
        for (tag, base) in [
            ("zh", "zh"),
            ("zh-TW", "zh"),
            ("zh-Hant-TW", "zh"),
            ("en", "en"),
            ("en-GB", "en"),
        ] {
            assert_eq!(base_language(tag), base, "{tag}");
        }
        let locale =
            |value: &'static str| locale_language(move |n| (n == "LANG").then(|| value.into()));
        assert_eq!(locale("zh_TW.UTF-8"), "zh-TW");
        assert_eq!(locale("zh_HK.Big5HKSCS"), "zh-HK");
        assert_eq!(locale("C.UTF-8"), "en");
        assert_eq!(locale("de_DE.UTF-8"), "en");
        assert_eq!(locale("en_US.UTF-8"), "en", "no region for English");
        // A Chinese locale nemo cannot read as a tag is still Chinese.
        assert_eq!(locale("zh_T W"), "zh");
        let global = |lang: Option<&str>| Global {
            lang: lang.map(str::to_owned),
            ..Global::default()
        };
        let zh_tw = global(Some("zh-TW"));
        assert_eq!((zh_tw.lang(), zh_tw.lang_tag().as_str()), ("zh", "zh-TW"));
        let en_gb = global(Some("en-GB"));
        assert_eq!((en_gb.lang(), en_gb.lang_tag().as_str()), ("en", "en-GB"));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        RawCli::command().debug_assert();
    }
}
