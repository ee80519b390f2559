//! `--help` of the command and of every subcommand, snapshot-tested: the
//! interface is what scripts and docs depend on.

use crate::support::{nemo, text};

#[test]
fn help_of_every_command() {
    let commands = [
        "",
        "chat",
        "say",
        "upload",
        "credits",
        "timeline",
        "export",
        "jobs",
        "run",
        "batch",
        "mcp",
        "replay",
        "mock",
        "demo",
        "completions",
    ];
    for command in commands {
        let mut cmd = nemo();
        if !command.is_empty() {
            cmd.arg(command);
        }
        let out = cmd.arg("--help").output().expect("run");
        assert!(out.status.success(), "{command} --help failed");
        assert!(out.stderr.is_empty());
        let name = if command.is_empty() {
            "help".to_owned()
        } else {
            format!("help_{command}")
        };
        insta::assert_snapshot!(name, text(&out.stdout));
    }
}

#[test]
fn state_is_an_alias_of_timeline() {
    let a = nemo().args(["timeline", "--help"]).output().expect("run");
    let b = nemo().args(["state", "--help"]).output().expect("run");
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn version() {
    nemo()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::starts_with("nemo "));
}
