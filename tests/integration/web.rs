//! The review page over HTTP: the real server on port 0 with a real SQLite file, users made
//! by `mailintake users`, and what a browser would be sent (status, headers, cookies, HTML).

use std::time::Duration;

use serde_json::Value;

use crate::kit::mail::{FAULT_FORMAT, fault_report};
use crate::kit::process::{Daemon, wait_until};
use crate::kit::sandbox::{HTTP_SECTION, Sandbox, failure_text, sample, success_json};
use crate::kit::web::{Served, add_user, logged_address, with_stdin};

pub(super) const PASSWORD: &str = "correct horse battery";

/// Two queues; `http` (an `[http]` section) takes the place of the sandbox's own, keeping
/// its port-0 `listen` unless it sets one.
fn sandbox(http: &str) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(&[("orders", "mail/orders"), ("triage", "mail/triage")], "");
    if !http.is_empty() {
        let keys = http.strip_prefix("[http]\n").expect("an [http] section");
        let section = if keys.contains("listen") {
            format!("[http]\n{keys}\n")
        } else {
            format!("{HTTP_SECTION}{keys}\n")
        };
        let path = sandbox.path("collectors.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(HTTP_SECTION), "{text}");
        std::fs::write(&path, text.replacen(HTTP_SECTION, &section, 1)).unwrap();
    }
    sandbox
}

#[test]
fn every_page_sends_a_visitor_without_a_session_to_the_login() {
    let sandbox = sandbox("");
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let home = client.get("/?lang=ru");
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/login?next=/%3Flang%3Dru"));
    for path in [
        "/queues/orders",
        "/records/1",
        "/records/1/eml",
        "/notifications",
        "/quarantine",
        "/quarantine/1",
        "/quarantine/1/raw",
        "/collectors",
    ] {
        let page = client.get(path);
        assert_eq!(page.status, 303, "{path}");
        assert_eq!(
            page.header("location"),
            Some(format!("/login?next={path}").as_str())
        );
    }
    for path in [
        "/logout",
        "/records/1/triage",
        "/records/1/status",
        "/records/1/notify",
        "/quarantine/1/retry",
        "/quarantine/1/dismiss",
        "/collectors/orders/collect",
    ] {
        let answer = client.post(path, &[("csrf", "x")]);
        assert_eq!(answer.status, 303, "{path}");
        assert!(answer.header("location").unwrap().starts_with("/login"));
    }
    // A made-up session cookie is no session.
    client
        .cookies
        .insert("mailintake_session".into(), "0".repeat(64));
    assert_eq!(client.get("/").status, 303);
}

#[test]
fn login_opens_a_lax_http_only_session_and_every_page_carries_a_strict_policy() {
    let sandbox = sandbox("");
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let form = client.get("/login");
    let policy = form.header("content-security-policy").unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(form.body.contains("name=\"username\"") && form.body.contains("name=\"password\""));

    let answer = client.log_in("ann", PASSWORD);
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.header("location"), Some("/"));
    let session = answer.set_cookie("mailintake_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Secure"), "{session}");

    let home = client.get("/");
    assert_eq!(home.status, 200);
    assert!(home.body.contains("ann"), "{}", home.body);
    assert!(home.header("content-security-policy").is_some());
}

#[test]
fn secure_cookies_marks_the_session_cookie_secure() {
    let sandbox = sandbox("[http]\nsecure-cookies = true");
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let answer = client.log_in("ann", PASSWORD);
    assert_eq!(answer.status, 303);
    let session = answer.set_cookie("mailintake_session").unwrap();
    assert!(session.contains("; Secure"), "{session}");
}

#[test]
fn a_wrong_password_is_401_and_repeated_failures_lock_the_name_out() {
    let sandbox = sandbox("");
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    for _ in 0..5 {
        let answer = client.log_in("ann", "wrong");
        assert_eq!(answer.status, 401);
        assert!(answer.set_cookie("mailintake_session").is_none());
        assert!(answer.body.contains("id=\"error\""), "{}", answer.body);
    }
    // Locked out now: even the right password is refused, and no session is made.
    let answer = client.log_in("ann", PASSWORD);
    assert_eq!(answer.status, 429);
    assert!(answer.set_cookie("mailintake_session").is_none());
    assert_eq!(client.get("/").status, 303);
    // An unknown name is a 401 like a wrong password.
    assert_eq!(client.log_in("nobody", PASSWORD).status, 401);
}

#[test]
fn forms_without_their_csrf_token_are_refused() {
    let sandbox = sandbox("");
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.get("/login");
    let answer = client.post("/login", &[("username", "ann"), ("password", PASSWORD)]);
    assert_eq!(answer.status, 403);
    let answer = client.post(
        "/login",
        &[
            ("username", "ann"),
            ("password", PASSWORD),
            ("csrf", &"f".repeat(64)),
        ],
    );
    assert_eq!(answer.status, 403);

    assert_eq!(client.log_in("ann", PASSWORD).status, 303);
    let home = client.get("/");
    assert_eq!(client.post("/logout", &[]).status, 403);
    assert_eq!(client.post("/logout", &[("csrf", "nope")]).status, 403);
    assert_eq!(client.get("/").status, 200, "still logged in");
    let out = client.post("/logout", &[("csrf", &home.csrf())]);
    assert_eq!(out.status, 303);
    assert_eq!(client.get("/").status, 303, "logged out");
}

#[test]
fn after_login_only_a_path_on_this_site_is_followed() {
    let sandbox = sandbox("");
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    for (next, expected) in [
        ("/?lang=zh", "/?lang=zh"),
        ("//evil.test/", "/"),
        ("https://evil.test/", "/"),
        ("/\\evil.test", "/"),
    ] {
        let mut client = served.client();
        let csrf = client.get("/login").csrf();
        let answer = client.post(
            "/login",
            &[
                ("username", "ann"),
                ("password", PASSWORD),
                ("csrf", &csrf),
                ("next", next),
            ],
        );
        assert_eq!(answer.header("location"), Some(expected), "next={next}");
    }
}

#[test]
fn managers_see_only_their_queues_and_admins_all() {
    let sandbox = sandbox("");
    add_user(&sandbox, "mia", "manager", &["triage"], PASSWORD);
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut manager = served.client();
    manager.log_in("mia", PASSWORD);
    let home = manager.get("/");
    assert!(home.body.contains("<td>triage</td>"), "{}", home.body);
    assert!(!home.body.contains("<td>orders</td>"), "{}", home.body);
    let mut admin = served.client();
    admin.log_in("ann", PASSWORD);
    let home = admin.get("/");
    assert!(home.body.contains("<td>triage</td>") && home.body.contains("<td>orders</td>"));
}

#[test]
fn markup_in_a_user_name_is_shown_as_text() {
    let sandbox = sandbox("");
    let name = "<script>alert(1)</script>";
    add_user(&sandbox, name, "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    assert_eq!(client.log_in(name, PASSWORD).status, 303);
    let home = client.get("/");
    assert!(!home.body.contains("<script>"), "{}", home.body);
    assert!(
        home.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        home.body
    );
}

#[test]
fn labels_follow_accept_language_and_a_lang_switch_is_remembered() {
    let sandbox = sandbox("");
    let served = Served::start(&sandbox);
    let mut client = served.client();
    let page = client.get_with("/login", &[("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.5")]);
    assert!(page.body.contains("<h1>Вход</h1>"), "{}", page.body);
    let page = client.get("/login?lang=zh");
    assert!(page.body.contains("<h1>登录</h1>"), "{}", page.body);
    assert!(page.set_cookie("lang").unwrap().starts_with("lang=zh"));
    let page = client.get_with("/login", &[("Accept-Language", "ru")]);
    assert!(
        page.body.contains("<h1>登录</h1>"),
        "the cookie wins: {}",
        page.body
    );
}

#[test]
fn users_are_added_listed_repassworded_and_disabled_from_the_command_line() {
    let sandbox = sandbox("");
    add_user(&sandbox, "mia", "manager", &["triage", "orders"], PASSWORD);
    let list = success_json(sandbox.run(&["users", "list", "--json"]));
    assert_eq!(list[0]["name"], "mia");
    assert_eq!(list[0]["role"], "manager");
    assert_eq!(list[0]["queues"], serde_json::json!(["orders", "triage"]));
    assert_eq!(list[0]["disabled"], false);
    let text = list.to_string();
    assert!(
        !text.contains("argon2") && !text.contains(PASSWORD),
        "{text}"
    );

    // A name is taken once; a queue must exist; the password never goes on the command line.
    let again = with_stdin(
        &sandbox,
        &["users", "add", "mia", "--role", "admin"],
        PASSWORD,
    );
    assert!(failure_text(again).contains("already a user called `mia`"));
    let unknown = with_stdin(
        &sandbox,
        &[
            "users", "add", "max", "--role", "manager", "--queue", "nosuch",
        ],
        PASSWORD,
    );
    assert!(failure_text(unknown).contains("--queue nosuch"));
    assert!(
        !sandbox
            .run(&["users", "add", "max", "--role", "admin", "--password", "x"])
            .status
            .success()
    );
    let empty = with_stdin(&sandbox, &["users", "add", "max", "--role", "admin"], "");
    assert!(failure_text(empty).contains("password is empty"));

    let served = Served::start(&sandbox);
    let mut client = served.client();
    assert_eq!(client.log_in("mia", PASSWORD).status, 303);

    std::fs::write(sandbox.path("new-password"), "second password\n").unwrap();
    let file = sandbox.path("new-password");
    let changed = sandbox.run(&[
        "users",
        "passwd",
        "mia",
        "--password-file",
        file.to_str().unwrap(),
    ]);
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    assert_eq!(
        client.get("/").status,
        303,
        "a new password ends the old sessions"
    );
    assert_eq!(served.client().log_in("mia", PASSWORD).status, 401);
    assert_eq!(client.log_in("mia", "second password").status, 303);

    assert!(sandbox.run(&["users", "disable", "mia"]).status.success());
    assert_eq!(client.get("/").status, 303, "disabling ends the sessions");
    assert_eq!(served.client().log_in("mia", "second password").status, 401);
    let list: Value = success_json(sandbox.run(&["users", "list", "--json"]));
    assert_eq!(list[0]["disabled"], true);
}

fn spawn(sandbox: &Sandbox, command: &str) -> Daemon {
    Daemon::spawn(
        sandbox
            .command(&[command])
            .env("MAILINTAKE_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(sandbox.path("daemon.log")).unwrap()),
    )
}

#[test]
fn serve_and_run_serve_the_page_on_the_configured_address_until_stopped() {
    let sandbox = sandbox("[http]\nlisten = \"127.0.0.1:0\"");
    for command in ["serve", "run"] {
        let daemon = spawn(&sandbox, command);
        let addr = logged_address(&sandbox.path("daemon.log"));
        let page = ureq::get(format!("http://{addr}/login")).call().unwrap();
        assert_eq!(page.status(), 200, "{command}");
        assert!(daemon.terminate().success(), "{command}");
    }
}

#[test]
fn run_without_the_page_when_http_is_disabled() {
    let sandbox = sandbox("[http]\nenabled = false\nlisten = \"127.0.0.1:0\"");
    let daemon = spawn(&sandbox, "run");
    let log = sandbox.path("daemon.log");
    wait_until(Duration::from_secs(20), Duration::from_millis(20), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("collectors started") {
            Ok(())
        } else {
            Err(text)
        }
    });
    assert!(daemon.terminate().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("review page"), "{text}");
}

/// Two queues with `emes-fault` collectors; `reports` fault reports `(phone, description)`
/// delivered to and collected into the `triage` queue.
pub(super) fn with_fault_reports(reports: &[(&str, &str)]) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        &[("orders", "mail/orders"), ("triage", "mail/triage")],
        "format = \"emes-fault\"",
    );
    let path = sandbox.path("collectors.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}{FAULT_FORMAT}")).unwrap();
    sandbox.maildir("mail/orders");
    sandbox.maildir("mail/triage");
    for (n, (phone, description)) in reports.iter().enumerate() {
        let n = n as u32 + 1;
        sandbox.deliver(
            "mail/triage",
            &format!("{n:03}.M{n}.mx"),
            &fault_report(n, phone, description),
        );
    }
    sandbox.collect_all();
    assert_eq!(sandbox.records().len(), reports.len());
    sandbox
}

/// The record ids a queue page links to, in order.
fn listed(body: &str) -> Vec<i64> {
    body.split("<a href=\"/records/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn the_queue_page_filters_by_phone_status_and_type_and_pages_on_the_server() {
    let mut reports = vec![("13800000001", "电梯困人"), ("13900000009", "门不关")];
    reports.extend(std::iter::repeat_n(("13700000000", "异响"), 50));
    let sandbox = with_fault_reports(&reports);
    add_user(&sandbox, "mia", "manager", &["triage"], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("mia", PASSWORD);

    let first = client.get("/queues/triage");
    assert_eq!(first.status, 200);
    assert_eq!(listed(&first.body), (1..=50).collect::<Vec<_>>());
    assert!(
        first.body.contains("rel=\"next\""),
        "52 records: a second page"
    );
    let second = client.get("/queues/triage?page=2");
    assert_eq!(listed(&second.body), [51, 52]);
    assert!(!second.body.contains("rel=\"next\"") && second.body.contains("rel=\"prev\""));

    let by_phone = client.get("/queues/triage?phone=0000001");
    assert_eq!(listed(&by_phone.body), [1]);
    assert!(by_phone.body.contains("电梯困人") && by_phone.body.contains("广东广州天河区"));
    let by_phone = client
        .get("/queues/triage?phone=139-0000-0009&type=pending&kind=service-request&status=all");
    assert_eq!(listed(&by_phone.body), [2]);
    assert!(listed(&client.get("/queues/triage?type=fault").body).is_empty());
    let resolved = client.get("/queues/triage?status=%E5%B7%B2%E8%A7%A3%E5%86%B3");
    assert!(resolved.body.contains("id=\"empty\""), "{}", resolved.body);
    assert!(
        listed(
            &client
                .get("/queues/triage?since=2000-01-01&until=2000-01-02")
                .body
        )
        .is_empty()
    );
    assert_eq!(
        listed(
            &client
                .get("/queues/triage?since=2000-01-01&phone=0000001")
                .body
        ),
        [1]
    );

    assert_eq!(client.get("/queues/triage?phone=12").status, 400);
    assert_eq!(client.get("/queues/triage?since=yesterday").status, 400);
    assert_eq!(client.get("/queues/triage?kind=ticket").status, 400);
}

#[test]
fn the_record_page_shows_every_field_the_history_and_the_payload() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    let page = client.get("/records/1?lang=zh");
    assert_eq!(page.status, 200);
    for shown in [
        "电梯困人",
        "李雷 /先生",
        "13800000001",
        "广东广州天河区体育西路1号",
        "pending",
        "物业",
        "<th>描述</th>",
    ] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    let history = page.body.split("id=\"history\"").nth(1).unwrap();
    assert!(history.contains("<td>created</td>"), "{history}");
    assert!(page.body.contains("id=\"payload\""));
    assert_eq!(client.get("/records/99").status, 404);
}

#[test]
fn a_manager_cannot_open_another_queue_or_its_records() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    add_user(&sandbox, "oleg", "manager", &["orders"], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("oleg", PASSWORD);
    assert_eq!(client.get("/queues/orders").status, 200);
    assert_eq!(client.get("/queues/triage").status, 403);
    assert_eq!(client.get("/queues/nosuch").status, 404);
    let record = client.get("/records/1");
    assert_eq!(record.status, 404);
    assert!(!record.body.contains("电梯困人"));
}

#[test]
fn a_script_in_a_description_is_rendered_as_text() {
    let payload = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
    let sandbox = with_fault_reports(&[("13800000001", payload)]);
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    for path in ["/queues/triage", "/records/1"] {
        let page = client.get(path);
        assert_eq!(page.status, 200);
        assert!(
            !page.body.contains("<script>") && !page.body.contains("<img"),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path}: {}",
            page.body
        );
    }
}

/// Appends `text` to the sandbox's config.
fn append_config(sandbox: &Sandbox, text: &str) {
    let path = sandbox.path("collectors.toml");
    let old = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{old}\n{text}\n")).unwrap();
}

/// Record `id` as `records show --json` prints it.
pub(super) fn shown(sandbox: &Sandbox, id: i64) -> Value {
    success_json(sandbox.run(&["records", "show", &id.to_string(), "--json"]))
}

#[test]
fn triage_from_the_record_page_completes_the_branch_and_leaves_history() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    let page = client.get("/records/1");
    assert!(page.body.contains("id=\"triage\""), "{}", page.body);
    let csrf = page.csrf();

    let without = client.post(
        "/records/1/triage",
        &[("as", "complaint"), ("branch", "广州分公司")],
    );
    assert_eq!(without.status, 403);
    assert_eq!(shown(&sandbox, 1)["service"]["type"], "pending");

    let done = client.post(
        "/records/1/triage",
        &[
            ("csrf", &csrf),
            ("as", "complaint"),
            ("branch", "广州分公司"),
            ("site", ""),
            ("elevator-no", "3"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/records/1"));
    let service = &shown(&sandbox, 1)["service"];
    assert_eq!(service["type"], "complaint");
    assert_eq!(service["branch"], "广州分公司");
    assert_eq!(service["elevator_no"], "3");

    let page = client.get("/records/1");
    let correction = page.body.split("id=\"triage\"").nth(1).unwrap();
    let correction = correction.split("</form>").next().unwrap();
    assert!(
        page.body.contains("<h2>Correct the triage</h2>"),
        "{}",
        page.body
    );
    assert!(
        correction.contains("value=\"fault\"") && !correction.contains("value=\"complaint\""),
        "the other types only: {correction}"
    );
    assert!(page.body.contains(&format!(
        "<td>{}</td>",
        service["content"].as_str().unwrap()
    )));
    let history = page.body.split("id=\"history\"").nth(1).unwrap();
    assert!(
        history.contains("<td>ann</td><td>triaged</td><td>as complaint</td>"),
        "{history}"
    );
    assert!(
        history.contains("<td>branch = 广州分公司</td>"),
        "{history}"
    );
    // The same type again is no correction: the workflow refuses.
    let same = client.post("/records/1/triage", &[("csrf", &csrf), ("as", "complaint")]);
    assert_eq!(same.status, 409);
    // A correction: the type and content by the same rules, both decisions in the history.
    let again = client.post("/records/1/triage", &[("csrf", &csrf), ("as", "fault")]);
    assert_eq!(again.status, 303, "{}", again.body);
    let service = &shown(&sandbox, 1)["service"];
    assert_eq!(service["type"], "fault");
    assert_eq!(service["content"], "电梯困人");
    let page = client.get("/records/1");
    let history = page.body.split("id=\"history\"").nth(1).unwrap();
    assert!(
        history.contains("<td>triaged</td><td>as complaint</td>")
            && history.contains("<td>triaged</td><td>as fault (was complaint)</td>"),
        "{history}"
    );
}

#[test]
fn status_changes_follow_the_workflow_from_the_record_page() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    let csrf = client.get("/records/1").csrf();
    let change = |client: &mut crate::kit::web::Client, change: &str, text: &str| {
        client
            .post(
                "/records/1/status",
                &[("csrf", &csrf), ("change", change), ("text", text)],
            )
            .status
    };
    assert_eq!(
        change(&mut client, "accept", ""),
        409,
        "nothing to accept yet"
    );
    assert_eq!(change(&mut client, "start", ""), 303);
    assert_eq!(
        change(&mut client, "resolve", " "),
        400,
        "a solution is required"
    );
    assert_eq!(change(&mut client, "resolve", "更换门机"), 303);
    assert_eq!(change(&mut client, "accept", ""), 303);
    assert_eq!(change(&mut client, "launch", ""), 400);
    let record = shown(&sandbox, 1);
    assert_eq!(record["status"], "已确认");
    assert_eq!(record["result"], "更换门机");
    let actors: Vec<&str> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(
        !actors.is_empty() && actors.iter().all(|a| *a == "ann"),
        "{actors:?}"
    );
}

#[test]
fn a_manager_cannot_change_another_queues_record() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    add_user(&sandbox, "oleg", "manager", &["orders"], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("oleg", PASSWORD);
    let csrf = client.get("/").csrf();
    let triage = client.post("/records/1/triage", &[("csrf", &csrf), ("as", "fault")]);
    assert_eq!(triage.status, 404);
    let start = client.post("/records/1/status", &[("csrf", &csrf), ("change", "start")]);
    assert_eq!(start.status, 404);
    let record = shown(&sandbox, 1);
    assert_eq!(record["service"]["type"], "pending");
    assert_eq!(record["status"], "new");
}

#[test]
fn a_manual_notification_is_queued_from_the_record_page() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人")]);
    append_config(
        &sandbox,
        "[smtp]\nhost = \"127.0.0.1\"\nport = 2\ntls = \"none\"\nfrom = \"EMES <emes@example.test>\"\n\n\
         [[notify]]\nname = \"to-gm\"\non = \"manual\"\nwhen = { queue = \"triage\" }\nchannel = \"email\"\nto = [\"gm@example.test\"]\n\
         subject = \"请处理 {{number}}\"\nbody = \"\"\n",
    );
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    let page = client.get("/records/1");
    assert!(
        page.body.contains("<option value=\"to-gm\">"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    assert_eq!(
        client
            .post("/records/1/notify", &[("rule", "to-gm")])
            .status,
        403
    );
    assert_eq!(
        client
            .post("/records/1/notify", &[("csrf", &csrf), ("rule", "nosuch")])
            .status,
        409
    );
    assert_eq!(
        client
            .post("/records/1/notify", &[("csrf", &csrf), ("rule", "to-gm")])
            .status,
        303
    );
    let log = success_json(sandbox.run(&["notifications", "list", "--json"]));
    let rows = log.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{log}");
    assert_eq!(rows[0]["rule"], "to-gm");
    assert_eq!(rows[0]["record_id"], 1);
    let page = client.get("/records/1");
    let listed = page
        .body
        .split("class=\"notifications\"")
        .nth(1)
        .expect("a notification table");
    assert!(
        listed.contains("<td>to-gm</td>") && listed.contains("gm@example.test"),
        "{listed}"
    );

    // The log, for admins, with its filters.
    let log = client.get("/notifications?channel=email&status=queued&since=2000-01-01");
    assert_eq!(log.status, 200);
    assert!(log.body.contains("<td>to-gm</td>"), "{}", log.body);
    for empty in [
        "/notifications?channel=sms",
        "/notifications?status=sent",
        "/notifications?until=2000-01-01",
    ] {
        assert!(
            !client.get(empty).body.contains("<td>to-gm</td>"),
            "{empty}"
        );
    }
    assert_eq!(client.get("/notifications?channel=fax").status, 400);
    add_user(&sandbox, "mia", "manager", &["triage"], PASSWORD);
    let mut manager = served.client();
    manager.log_in("mia", PASSWORD);
    assert_eq!(manager.get("/notifications").status, 403);
}

/// One quarantined message: a cp1251 lead read with the wrong default charset.
pub(super) fn with_quarantined() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.maildir("inbox");
    sandbox.write_config(
        &[("site-orders", "inbox")],
        "default-charset = \"utf-16le\"",
    );
    sandbox.deliver("inbox", "1000.M1.mx", &sample("02-lead-octet-stream.eml"));
    sandbox.collect();
    assert_eq!(sandbox.quarantined(), 1);
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    add_user(&sandbox, "mia", "manager", &["site-orders"], PASSWORD);
    sandbox
}

#[test]
fn quarantine_shows_reason_and_headers_offers_the_raw_message_and_retries_after_a_fix() {
    let sandbox = with_quarantined();
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    let list = client.get("/quarantine");
    assert!(
        list.body.contains("<a href=\"/quarantine/1\">1</a>"),
        "{}",
        list.body
    );
    let entry = client.get("/quarantine/1");
    assert!(entry.body.contains("id=\"reason\""), "{}", entry.body);
    let headers = entry.body.split("id=\"headers\">").nth(1).unwrap();
    assert!(
        headers.contains("Subject:")
            && !headers.contains("Content-Transfer-Encoding: base64\r\n\r\n")
    );
    let raw = client.get("/quarantine/1/raw");
    assert_eq!(raw.status, 200);
    assert_eq!(
        raw.header("content-disposition"),
        Some("attachment; filename=\"quarantine-1.eml\"")
    );
    assert_eq!(raw.body.as_bytes(), sample("02-lead-octet-stream.eml"));

    let csrf = entry.csrf();
    assert_eq!(client.post("/quarantine/1/retry", &[]).status, 403);
    let still = client.post("/quarantine/1/retry", &[("csrf", &csrf)]);
    assert_eq!(still.header("location"), Some("/quarantine/1"));
    assert_eq!(sandbox.quarantined(), 1);

    // The config is fixed while the page runs: a retry reads the file as it is now.
    sandbox.write_config(
        &[("site-orders", "inbox")],
        "default-charset = \"windows-1251\"",
    );
    let released = client.post("/quarantine/1/retry", &[("csrf", &csrf)]);
    let records = sandbox.records();
    assert_eq!(records.len(), 1);
    let location = format!("/records/{}", records[0]["id"]);
    assert_eq!(released.header("location"), Some(location.as_str()));
    let record = shown(&sandbox, records[0]["id"].as_i64().unwrap());
    assert_eq!(record["history"][1]["event"], "released");
    assert_eq!(record["history"][1]["actor"], "ann");
    assert_eq!(
        client
            .post("/quarantine/1/retry", &[("csrf", &csrf)])
            .status,
        409
    );
}

#[test]
fn a_dismissed_entry_is_kept_and_marked_not_deleted() {
    let sandbox = with_quarantined();
    let served = Served::start(&sandbox);
    let mut client = served.client();
    client.log_in("ann", PASSWORD);
    let csrf = client.get("/quarantine/1").csrf();
    let dismissed = client.post("/quarantine/1/dismiss", &[("csrf", &csrf)]);
    assert_eq!(dismissed.header("location"), Some("/quarantine"));
    assert!(client.get("/quarantine").body.contains("id=\"empty\""));
    assert!(
        client
            .get("/quarantine?all=1")
            .body
            .contains("<td>dismissed</td>")
    );
    let kept = success_json(sandbox.run(&["quarantine", "show", "1", "--json"]));
    assert_eq!(kept["status"], "dismissed");
    assert_eq!(
        client.get("/quarantine/1/raw").body.as_bytes(),
        sample("02-lead-octet-stream.eml")
    );
    assert_eq!(
        client
            .post("/quarantine/1/dismiss", &[("csrf", &csrf)])
            .status,
        409
    );
    assert_eq!(client.get("/quarantine/9").status, 404);

    let mut manager = served.client();
    manager.log_in("mia", PASSWORD);
    for path in ["/quarantine", "/quarantine/1", "/quarantine/1/raw"] {
        assert_eq!(manager.get(path).status, 403, "{path}");
    }
}

#[test]
fn the_collectors_page_shows_each_collectors_state_and_admins_collect_now() {
    let sandbox = sandbox("");
    sandbox.maildir("mail/orders");
    sandbox.maildir("mail/triage");
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    add_user(&sandbox, "mia", "manager", &["triage"], PASSWORD);
    let served = Served::start(&sandbox);
    let mut admin = served.client();
    admin.log_in("ann", PASSWORD);
    let page = admin.get("/collectors");
    assert!(page.body.contains("<td>orders</td>") && page.body.contains("<td>triage</td>"));
    let csrf = page.csrf();

    sandbox.deliver(
        "mail/orders",
        "1.M1.mx",
        &crate::kit::mail::order_message(1, "7709745454", 2),
    );
    assert_eq!(admin.post("/collectors/orders/collect", &[]).status, 403);
    let done = admin.post("/collectors/orders/collect", &[("csrf", &csrf)]);
    assert_eq!(done.header("location"), Some("/collectors"));
    assert_eq!(sandbox.records().len(), 1, "the pass ran");
    let status = success_json(sandbox.run(&["collectors", "status", "--json"]));
    assert_eq!(status[0]["counts"]["accepted"], 1, "{status}");
    let page = admin.get("/collectors");
    // The collector's name, then its queue's, then its state.
    let orders = page.body.split("<td>orders</td>").nth(2).unwrap();
    assert!(orders.contains("<td>1</td>"), "the counts: {orders}");
    assert_eq!(
        admin
            .post("/collectors/nosuch/collect", &[("csrf", &csrf)])
            .status,
        404
    );

    // Another daemon holds the collector's lease: the page names it, and refuses to race it.
    let mut store = mailintake::store::Store::open(&mailintake::store::StorageUrl::Sqlite(
        sandbox.path("data/mailintake.db"),
    ))
    .unwrap();
    let elsewhere = mailintake::store::LeaseHolder {
        id: "another-daemon".into(),
        host: "node-2".into(),
        pid: 4242,
    };
    assert!(matches!(
        store
            .acquire_lease("orders", &elsewhere, Duration::from_secs(600))
            .unwrap(),
        mailintake::store::Acquisition::Acquired
    ));
    let page = admin.get("/collectors");
    assert!(page.body.contains("<td>node-2:4242</td>"), "{}", page.body);
    sandbox.deliver(
        "mail/orders",
        "2.M2.mx",
        &crate::kit::mail::order_message(2, "7709745454", 1),
    );
    let refused = admin.post("/collectors/orders/collect", &[("csrf", &csrf)]);
    assert_eq!(refused.status, 409);
    assert_eq!(sandbox.records().len(), 1, "no pass ran");

    let mut manager = served.client();
    manager.log_in("mia", PASSWORD);
    let page = manager.get("/collectors");
    assert!(page.body.contains("<td>triage</td>") && !page.body.contains("<td>orders</td>"));
    assert!(
        !page.body.contains("/collect\""),
        "no collect button for managers"
    );
    let csrf = page.csrf();
    assert_eq!(
        manager
            .post("/collectors/triage/collect", &[("csrf", &csrf)])
            .status,
        403
    );
}
