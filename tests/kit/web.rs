//! The review page for HTTP tests: the real server (`mailintake::web::serve`) on port 0 of
//! loopback over a sandbox's real SQLite file, its users made with the real `users add`
//! command, and a small cookie-keeping client that reads pages as a browser would get them.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;

use mailintake::ingest::Shutdown;
use mailintake::web::{self, AppState};

use super::sandbox::Sandbox;

/// The review page served on a port of its own until dropped.
pub struct Served {
    pub addr: SocketAddr,
    shutdown: Shutdown,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Served {
    /// Serves `sandbox`'s config on 127.0.0.1 port 0.
    pub fn start(sandbox: &Sandbox) -> Served {
        let config = mailintake::config::Config::load(&sandbox.path("collectors.toml")).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(config).unwrap();
        let shutdown = Shutdown::new();
        runtime.spawn(web::serve(listener, state, shutdown.clone()));
        Served {
            addr,
            shutdown,
            runtime: Some(runtime),
        }
    }

    /// A client with no cookies yet.
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// `mailintake users add NAME --role ROLE [--queue Q]...` with the password on stdin.
pub fn add_user(sandbox: &Sandbox, name: &str, role: &str, queues: &[&str], password: &str) {
    let mut args = vec!["users", "add", name, "--role", role];
    for queue in queues {
        args.extend(["--queue", queue]);
    }
    let output = with_stdin(sandbox, &args, password);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the binary with `input` on its stdin.
pub fn with_stdin(sandbox: &Sandbox, args: &[&str], input: &str) -> std::process::Output {
    let mut child = sandbox
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{input}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// One response, read whole.
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (undecodable bytes replaced); [`Page::bytes`] as sent.
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Page {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` line.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `Set-Cookie` line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a csrf field") + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

/// A client that keeps cookies as a browser does (by name; `Max-Age=0` deletes), never
/// follows redirects and never turns a status into an error.
pub struct Client {
    base: String,
    agent: ureq::Agent,
    pub cookies: BTreeMap<String, String>,
}

impl Client {
    /// A client of the server at `addr` (e.g. a `mailintake run` a test spawned).
    pub fn at(addr: SocketAddr) -> Client {
        Client::new(addr)
    }

    fn new(addr: SocketAddr) -> Client {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: format!("http://{addr}"),
            agent,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: ureq::http::Response<ureq::Body>) -> Page {
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = response.into_body().read_to_vec().unwrap();
        let page = Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        };
        for line in page.set_cookies() {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        page
    }

    /// `GET path` with the kept cookies and these extra headers.
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.call().unwrap();
        self.keep(response)
    }

    pub fn get(&mut self, path: &str) -> Page {
        self.get_with(path, &[])
    }

    /// `POST path` of a urlencoded form with the kept cookies.
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send_form(fields.iter().copied())
            .unwrap();
        self.keep(response)
    }

    /// Any `method` on `path` with these headers and this body (none when empty), for the
    /// JSON API and the intake: no cookies, nothing added but what is given.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Page {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .agent
            .run(request.body(body.to_vec()).unwrap())
            .unwrap();
        self.keep(response)
    }

    /// Opens the login page and submits it; the response to the form.
    pub fn log_in(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/login");
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[("username", name), ("password", password), ("csrf", &csrf)],
        )
    }
}
