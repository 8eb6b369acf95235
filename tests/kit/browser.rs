//! A real browser for the review page: Debian's headless Chromium driven over WebDriver by
//! Debian's chromedriver (both installed by `tests/run`; a browser cannot be downloaded at
//! test time). Facts this relies on:
//! - chromedriver speaks plain HTTP on loopback ("Only local connections are allowed"), so
//!   fantoccini runs without TLS features;
//! - as root, Chromium needs `--no-sandbox` ("Running as root without --no-sandbox is not
//!   supported"), and it needs a headless flag here (no display);
//! - Chinese renders as boxes without a CJK font (`fonts-wqy-zenhei`);
//! - "Failed to connect to the bus" lines on chromedriver's stderr are harmless.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

use super::imap_server::free_ports;
use super::process::{Daemon, wait_until};

/// chromedriver on a free port, killed on drop.
pub struct Driver {
    port: u16,
    _process: Daemon,
}

impl Driver {
    pub fn start(log: PathBuf) -> Driver {
        let [port] = free_ports();
        let process = Daemon::spawn(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).unwrap()),
        );
        wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| format!("chromedriver on {port}: {e}"))
        });
        Driver {
            port,
            _process: process,
        }
    }

    /// A new headless Chromium session, 1280×800.
    pub async fn session(&self) -> Client {
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--window-size=1280,800",
                         "--no-first-run", "--disable-background-networking", "--disable-sync"],
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session (are chromium and chromium-driver installed? tests/run installs them)")
    }
}

/// Saves the browser's viewport as `target/screenshots/NAME.png`; returns the path.
pub async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(&path, png).unwrap();
    path
}
