//! `mailintake run` as systemd sees it: notifications over a real NOTIFY_SOCKET, SIGHUP
//! reloads (a broken file keeps the old config), SIGTERM stops; the unit files verify.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::kit::mail::order_message;
use crate::kit::process::{Daemon, wait_until};
use crate::kit::sandbox::{Sandbox, repo};

/// Waits until a notification containing `want` arrives; returns everything received so far.
fn wait_notify(socket: &UnixDatagram, seen: &mut Vec<String>, want: &str) {
    // The socket's read timeout paces the polling.
    wait_until(Duration::from_secs(15), Duration::ZERO, || {
        if seen.iter().any(|m| m.contains(want)) {
            return Ok(());
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        Err(format!("no {want} in {seen:?}"))
    });
}

fn wait_records(sandbox: &Sandbox, want: usize) {
    sandbox.wait_for_records(want, Duration::from_secs(15));
}

#[test]
fn daemon_talks_to_systemd_reloads_on_sighup_and_stops_on_sigterm() {
    let sandbox = Sandbox::new();
    sandbox.maildir("a");
    sandbox.maildir("b");
    // Every second, so the test does not wait long for the schedule.
    let every_second = "schedule = \"* * * * * *\"";
    sandbox.write_config(&[("shop", "a")], "");
    let config_path = sandbox.path("collectors.toml");
    let config = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("schedule = \"0 */5 * * * *\"", every_second);
    std::fs::write(&config_path, &config).unwrap();
    sandbox.deliver("a", "1.M1.mx", &order_message(1, "7709745454", 1));

    let socket_path = sandbox.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let log = sandbox.path("daemon.log");
    let mut daemon = Daemon::spawn(
        sandbox
            .command(&["run"])
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let mut seen = Vec::new();
    wait_notify(&socket, &mut seen, "READY=1");
    wait_notify(&socket, &mut seen, "WATCHDOG=1");
    wait_records(&sandbox, 1);

    // A broken file is rejected; the running collectors go on.
    std::fs::write(&config_path, format!("{config}\nbogus-key = 1\n")).unwrap();
    seen.clear();
    daemon.signal("HUP");
    wait_notify(&socket, &mut seen, "RELOADING=1");
    wait_notify(&socket, &mut seen, "READY=1");
    // Put the good file back (for this test's own CLI calls); the daemon already judged it.
    std::fs::write(&config_path, &config).unwrap();
    sandbox.deliver("a", "2.M2.mx", &order_message(2, "7709745454", 1));
    wait_records(&sandbox, 2);
    assert!(daemon.exited().is_none(), "still running");

    // A good file with a second collector is taken.
    sandbox.write_config(&[("shop", "a"), ("forms", "b")], every_second);
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("schedule = \"0 */5 * * * *\"\n", "");
    std::fs::write(&config_path, text).unwrap();
    seen.clear();
    daemon.signal("HUP");
    wait_notify(&socket, &mut seen, "READY=1");
    sandbox.deliver("b", "3.M3.mx", &order_message(3, "7709745454", 1));
    wait_records(&sandbox, 3);
    let forms = sandbox.json(&["records", "list", "--json", "--queue", "forms"]);
    assert_eq!(forms.as_array().unwrap().len(), 1);

    daemon.signal("TERM");
    wait_notify(&socket, &mut seen, "STOPPING=1");
    let status = daemon.wait(Duration::from_secs(20));
    assert!(status.success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("bogus-key") && stderr.contains("rejected"),
        "{stderr}"
    );
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; tests/run installs it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let units = repo().join("systemd");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        // ExecStart must exist for verify: point it at the binary just built.
        let text = std::fs::read_to_string(entry.path()).unwrap().replace(
            "/usr/local/bin/mailintake",
            env!("CARGO_BIN_EXE_mailintake"),
        );
        std::fs::write(dir.path().join(&name), text).unwrap();
        names.push(dir.path().join(&name));
    }
    assert!(names.len() >= 3, "{names:?}");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&names)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}
