//! The built binary: exit codes and messages that need no kernel.

use std::process::{Command, Output};

fn emtunctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emtunctl"))
        .args(args)
        .output()
        .expect("run emtunctl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_works_everywhere() {
    let o = emtunctl(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "status", "arm", "disarm", "revoke", "watchdog", "stats", "watch", "run",
    ] {
        assert!(out.contains(cmd), "{cmd} missing from --help");
    }
    for sub in ["status", "arm", "run", "watch"] {
        assert_eq!(
            emtunctl(&[sub, "--help"]).status.code(),
            Some(0),
            "{sub} --help"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["arm", "em0", "--watchdog", "5parsecs"][..],
        &["watchdog", "em0", "250us"],
        &["run", "em0", "--claim", "0x05dc"],
        &["run", "em0", "--claim", "nope"],
        &["bogus"],
        &[],
    ] {
        let o = emtunctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = emtunctl(&["watchdog", "em0", "250us"]);
    assert!(
        stderr(&o).contains("below the kernel minimum of 1ms"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_messages_name_the_rule() {
    for (args, says) in [
        (&["watch", "em0", "--count", "0"][..], "must be at least 1"),
        (&["run", "em0", "--claim", "0x8100"], "VLAN tag"),
        (&["run", "em0", "--claim", "1500"], "802.3"),
        (&["run", "em0", "--poll", "spin"], "busy, interval"),
        (&["run", "em0", "--max-retries", "3"], "--reattach"),
        (&["stats", "em0", "--format", "xml"], "prometheus"),
    ] {
        let o = emtunctl(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn every_flag_has_help_text() {
    for sub in [
        "status", "arm", "disarm", "revoke", "watchdog", "stats", "watch", "run",
    ] {
        let o = emtunctl(&[sub, "--help"]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        // options (--flag) and positionals (<NAME>) alike
        for line in out.lines().filter(|l| {
            let t = l.trim_start();
            l.starts_with("  ") && (t.starts_with("--") || t.starts_with('<'))
        }) {
            let flag = line.split_whitespace().next().unwrap_or("");
            assert!(
                line.trim().len() > flag.len() + 8 || out.contains(&format!("{line}\n          ")),
                "{sub} {flag} has no help text: {line:?}"
            );
        }
    }
}

#[cfg(not(target_os = "freebsd"))]
#[test]
fn every_command_says_freebsd_is_needed() {
    for args in [
        &["status"][..],
        &["status", "em0", "--json"],
        &["arm", "em0"],
        &["disarm", "em0"],
        &["revoke", "em0"],
        &["watchdog", "em0", "10ms"],
        &["stats", "em0"],
        &["watch", "em0", "--count", "1"],
        &["run", "em0"],
    ] {
        let o = emtunctl(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.starts_with("emtunctl: this command needs FreeBSD with the emtun kernel"),
            "{args:?}: {e}"
        );
    }
}
