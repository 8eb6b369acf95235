//! Child processes that never outlive their test: the one wrapper for `mailintake run` (and
//! any other long-running child), and the one way to wait for something to happen.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long a daemon may take to stop after SIGTERM (its batch in flight commits first).
const STOP_PATIENCE: Duration = Duration::from_secs(20);

/// A running child, killed (SIGKILL) and reaped on drop unless it was stopped or has exited,
/// so a failing test leaves no daemon behind.
pub struct Daemon(Option<Child>);

impl Daemon {
    /// Spawns `command` (its stdio as the caller set it: prefer files to pipes, since nobody
    /// reads a pipe while the child runs).
    pub fn spawn(command: &mut Command) -> Daemon {
        Daemon(Some(command.spawn().expect("spawn the child")))
    }

    /// The child's pid (what `collectors status` shows as a lease holder's).
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("a running child").id()
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("a running child")
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...) with kill(1).
    // NOTE: kill(1), not libc: the crate forbids unsafe code, tests included.
    pub fn signal(&mut self, name: &str) {
        let pid = self.child().id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -{name} {pid} failed");
    }

    /// The exit status if the child has exited (it is reaped then), else `None`.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("wait for the child")
    }

    /// Waits up to `within` for the child to exit on its own and returns its status.
    pub fn wait(mut self, within: Duration) -> ExitStatus {
        let status = wait_until(within, Duration::from_millis(10), || {
            self.exited().ok_or("the child is still running")
        });
        self.0 = None;
        status
    }

    /// SIGTERM, then the exit status (panics if it takes longer than 20 s).
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(STOP_PATIENCE)
    }

    /// SIGKILL and reap, as a crash would end it.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            // NOTE: kill on an exited child is a no-op (std keeps its status once reaped),
            // so a reused pid is never hit.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Calls `poll` every `every` until it gives `Ok`, and returns that value; panics after
/// `within` with the last `Err`, which should say what was still missing.
pub fn wait_until<T, E: std::fmt::Display>(
    within: Duration,
    every: Duration,
    mut poll: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match poll() {
            Ok(value) => return value,
            Err(missing) if Instant::now() >= deadline => {
                panic!("gave up after {within:?}: {missing}")
            }
            Err(_) => std::thread::sleep(every),
        }
    }
}
