//! The review page in a real browser: headless Chromium over WebDriver (`tests/kit/browser.rs`)
//! against the real server on port 0. Screenshots land in `target/screenshots/`.

use fantoccini::{Client, Locator};

use super::web::{PASSWORD, shown, with_fault_reports};
use crate::kit::browser::{Driver, screenshot};
use crate::kit::sandbox::sample;
use crate::kit::web::{Served, add_user};

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks what navigates (a link, a form's button) and waits until the next page replaced
/// this one: WebDriver's click may return before a POST-redirect-GET has finished, and reading
/// the URL or the page then would see the old one.
async fn click(client: &Client, css: &str) {
    let page = client.find(Locator::Css("html")).await.unwrap();
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // The old page's root goes stale once the new page is there.
    while page.tag_name().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "{css}: the page did not change within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    client
        .wait()
        .for_element(Locator::Css("body"))
        .await
        .unwrap_or_else(|e| panic!("after {css}: {e}"));
}

#[test]
fn in_chromium_a_fault_report_is_found_by_phone_triaged_as_a_complaint_and_shown_in_chinese() {
    let sandbox = with_fault_reports(&[("13800000001", "电梯困人"), ("13900000009", "门不关")]);
    // A lead mail where fault reports are expected: no contact phone, so quarantined.
    sandbox.deliver(
        "mail/orders",
        "1.M9.mx",
        &sample("02-lead-octet-stream.eml"),
    );
    sandbox.collect_all();
    assert_eq!(sandbox.quarantined(), 1);
    add_user(&sandbox, "ann", "admin", &[], PASSWORD);
    let served = Served::start(&sandbox);
    let driver = Driver::start(sandbox.path("chromedriver.log"));
    let base = format!("http://{}", served.addr);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.session().await;
        // Asking for the queue leads to the login, and back after it.
        c.goto(&format!("{base}/queues/triage?lang=en"))
            .await
            .unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/login");
        fill(&c, "input[name=username]", "ann").await;
        fill(&c, "input[name=password]", PASSWORD).await;
        click(&c, "form[action='/login'] button[type=submit]").await;
        let url = c.current_url().await.unwrap();
        assert_eq!(
            (url.path(), url.query()),
            ("/queues/triage", Some("lang=en"))
        );

        // Filter by phone: one of the two pending reports.
        fill(&c, "#filters input[name=phone]", "0000009").await;
        click(&c, "#filters button[type=submit]").await;
        let rows = c.find_all(Locator::Css("#records tbody tr")).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].text().await.unwrap().contains("门不关"));
        screenshot(&c, "queue").await;

        // Triage it as a complaint, completing the branch.
        click(&c, "#records a[href='/records/2']").await;
        fill(&c, "#triage input[name=branch]", "广州分公司").await;
        click(&c, "#triage button[value=complaint]").await;
        assert_eq!(c.current_url().await.unwrap().path(), "/records/2");
        let history = text_of(&c, "#history").await;
        assert!(
            history.contains("triaged") && history.contains("as complaint"),
            "{history}"
        );
        assert!(history.contains("branch = 广州分公司"), "{history}");
        let service = &shown(&sandbox, 2)["service"];
        assert_eq!(service["type"], "complaint");
        let content = service["content"].as_str().unwrap();
        let fields = text_of(&c, "#fields").await;
        assert!(
            fields.contains(content) && fields.contains("广州分公司"),
            "{fields}"
        );
        // A correction is offered, with the other two types only.
        assert!(
            c.find(Locator::Css("#triage button[value=complaint]"))
                .await
                .is_err(),
            "complaint is the type it has"
        );
        assert!(
            c.find(Locator::Css("#triage button[value=fault]"))
                .await
                .is_ok()
        );
        screenshot(&c, "record").await;

        // The language switch: Chinese labels, remembered on the next page.
        click(&c, "a[hreflang=zh]").await;
        assert_eq!(text_of(&c, "h1").await, "记录 #2");
        assert!(text_of(&c, "#fields").await.contains("分公司"));
        screenshot(&c, "record-zh").await;
        c.goto(&format!("{base}/quarantine")).await.unwrap();
        assert_eq!(text_of(&c, "h1").await, "隔离区");
        let entries = c
            .find_all(Locator::Css("#quarantine tbody tr"))
            .await
            .unwrap();
        assert_eq!(entries.len(), 1);
        screenshot(&c, "quarantine").await;
        c.close().await.unwrap();
    });
}
