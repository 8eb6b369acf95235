//! `mailintake run` as systemd sees it: notifications over a real NOTIFY_SOCKET, SIGHUP
//! reloads (a broken file keeps the old config), SIGTERM stops; the unit files verify.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, order_message};

/// Kills the daemon if the test fails before stopping it, so no daemon outlives its test.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

fn signal(pid: u32, name: &str) {
    assert!(
        Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// Waits until a notification containing `want` arrives; returns everything received so far.
fn wait_notify(socket: &UnixDatagram, seen: &mut Vec<String>, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !seen.iter().any(|m| m.contains(want)) {
        assert!(Instant::now() < deadline, "no {want} in {seen:?}");
        let mut buf = [0u8; 4096];
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

fn wait_records(sandbox: &Sandbox, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while sandbox.records().len() < want {
        assert!(Instant::now() < deadline, "fewer than {want} records");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailintake"))
        .arg("--config")
        .arg(&config_path)
        .arg("run")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env("MAILINTAKE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let reaper = KillOnDrop(pid);
    let mut seen = Vec::new();
    wait_notify(&socket, &mut seen, "READY=1");
    wait_notify(&socket, &mut seen, "WATCHDOG=1");
    wait_records(&sandbox, 1);

    // A broken file is rejected; the running collectors go on.
    std::fs::write(&config_path, format!("{config}\nbogus-key = 1\n")).unwrap();
    seen.clear();
    signal(pid, "HUP");
    wait_notify(&socket, &mut seen, "RELOADING=1");
    wait_notify(&socket, &mut seen, "READY=1");
    // Put the good file back (for this test's own CLI calls); the daemon already judged it.
    std::fs::write(&config_path, &config).unwrap();
    sandbox.deliver("a", "2.M2.mx", &order_message(2, "7709745454", 1));
    wait_records(&sandbox, 2);
    assert!(child.try_wait().unwrap().is_none(), "still running");

    // A good file with a second collector is taken.
    sandbox.write_config(&[("shop", "a"), ("forms", "b")], every_second);
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("schedule = \"0 */5 * * * *\"\n", "");
    std::fs::write(&config_path, text).unwrap();
    seen.clear();
    signal(pid, "HUP");
    wait_notify(&socket, &mut seen, "READY=1");
    sandbox.deliver("b", "3.M3.mx", &order_message(3, "7709745454", 1));
    wait_records(&sandbox, 3);
    let forms = sandbox.json(&["records", "list", "--json", "--queue", "forms"]);
    assert_eq!(forms.as_array().unwrap().len(), 1);

    signal(pid, "TERM");
    wait_notify(&socket, &mut seen, "STOPPING=1");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    // Reaped: its pid may be reused now, so the guard must not fire.
    std::mem::forget(reaper);
    assert!(status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
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
    let units = common::repo().join("systemd");
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
