//! Website order e-mails, generated: the one order-mail generator of the tests and the
//! benches (`benches/pipeline.rs`, `benches/imap.rs` include this file).
//!
//! Every message has the website's shape: `multipart/mixed` [ `multipart/alternative`
//! [text/plain, text/html], `order_N.txt` ], the attachment a tab-indented JSON order in
//! windows-1251 (base64), the subject `ORDER: N` (Cyrillic text after it every third one, so
//! RFC 2047 decoding is part of the work). Bytes are deterministic: fixed MIME boundaries,
//! dates and seeds, so a test sees the same mail on every run and bench figures stay
//! comparable between runs and machines.
//!
//! - [`order_message`]: order `n` with an exact number of goods lines (line 2 a service),
//!   for tests that assert on what is stored;
//! - [`fault_report`]: a service request form (`emes-fault`, [`FAULT_FORMAT`]) that waits
//!   for triage; [`form_mail`]: any website form's payload as such a mail;
//! - [`padded`]: a message grown to a given size, for the size limits;
//! - [`Corpus::generate`]: the benches' corpus, orders drawn from a seeded [`Rng`] (1–6
//!   lines, services, extra works, repeat customers) and padded to 3–5 KB each.

use std::fmt::Write as _;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Every corpus message is this size or more (bytes)...
pub const MIN_MESSAGE_BYTES: usize = 3 * 1024;
/// ...and this size or less, like the website's real order mails.
pub const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// Order `n` as a test wants it: `lines` goods lines (the second one a service, so it gets
/// no tech card), the given INN, the phone `+7 (900) 123-XX-YY` from `n`'s last four digits
/// (orders `n` and `n + 1000` share a contact) and a price with a decimal comma.
pub fn order_message(n: usize, inn: &str, lines: usize) -> Vec<u8> {
    Order::numbered(n, inn, lines).build(0)
}

/// `message` grown to exactly `size` bytes by an epilogue after its closing MIME boundary
/// (which readers ignore): as valid an order as before, only larger, like one with a big
/// attachment.
pub fn padded(mut message: Vec<u8>, size: usize) -> Vec<u8> {
    assert!(
        size >= message.len() + 2,
        "the message has {} bytes already",
        message.len()
    );
    while message.len() + 80 <= size {
        message.extend_from_slice(&[b'x'; 78]);
        message.extend_from_slice(b"\r\n");
    }
    message.resize(size - 2, b'x');
    message.extend_from_slice(b"\r\n");
    message
}

/// The header section of `message` with the blank line that ends it: what the quarantine
/// keeps of a message too large to read.
pub fn header_section(message: &[u8]) -> &[u8] {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section ending in a blank line");
    &message[..end + 4]
}

/// xorshift64*: deterministic and dependency-free; its statistical quality is irrelevant
/// here, only that every run (and every machine) gets the same corpus.
pub struct Rng(u64);

impl Rng {
    /// Fixed seed: the corpus must not change between runs, or figures are not comparable.
    const SEED: u64 = 0x6d61_696c_696e_7461;

    /// The generator every corpus starts from.
    pub fn seeded() -> Rng {
        Rng(Self::SEED)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

/// The benches' generated messages and what went into them.
pub struct Corpus {
    pub messages: Vec<Vec<u8>>,
    /// Goods lines (Товары) of each message's order.
    pub lines: Vec<usize>,
    /// Orders that lost extra works to fit the size range.
    pub trimmed: usize,
}

impl Corpus {
    /// `count` orders from [`Rng::SEED`]; message `i` is order `i` (`ORDER: i`).
    pub fn generate(count: usize) -> Corpus {
        let mut rng = Rng::seeded();
        let inns = inn_pool(&mut rng);
        let mut messages = Vec::with_capacity(count);
        let mut lines = Vec::with_capacity(count);
        let mut trimmed = 0;
        for i in 0..count {
            let mut order = Order::random(i, &mut rng, &inns);
            let (raw, was_trimmed) = order.sized(&mut rng);
            messages.push(raw);
            lines.push(order.goods.len());
            trimmed += usize::from(was_trimmed);
        }
        Corpus {
            messages,
            lines,
            trimmed,
        }
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn total_lines(&self) -> usize {
        self.lines.iter().sum()
    }
}

/// Organisation INNs (10 digits): the seed's own plus a few generated with a valid check
/// digit, so counterparties are found again across orders, as with real repeat customers.
pub fn inn_pool(rng: &mut Rng) -> Vec<String> {
    let mut pool = vec!["7709745454".to_string(), "7707083893".to_string()];
    pool.extend((0..6).map(|_| valid_inn(rng)));
    pool
}

/// A random 10-digit INN with its check digit: weights 2,4,10,3,5,9,4,6,8, sum % 11 % 10.
fn valid_inn(rng: &mut Rng) -> String {
    const WEIGHTS: [u64; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
    let digits: Vec<u64> = (0..9).map(|k| rng.range(u64::from(k == 0), 9)).collect();
    let check = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum::<u64>() % 11 % 10;
    digits.iter().chain([&check]).map(u64::to_string).collect()
}

const GOODS: [&str; 7] = [
    "Баннер 3x6 м",
    "Ролап 85x200",
    "Плакат А1",
    "Наклейки на витрину",
    "Пленка с печатью",
    "Холст на подрамнике",
    "Световой короб",
];
const MATERIALS: [(&str, &str); 5] = [
    ("Баннеры - Эконом (340 гр./м2) - 360 dpi", "00-00000021"),
    ("Баннеры - Премиум (510 гр./м2) - 720 dpi", "00-00000022"),
    ("Пленка самоклеящаяся Oracal 641", "00-00000107"),
    ("Бумага постерная 150 г/м2", "00-00000045"),
    ("Холст синтетический", "00-00000063"),
];
/// Key of a goods line's extra works (absent when there are none).
const EXTRA_WORK_KEY: &str = "ДополнительныеРаботы";
const RESOLUTIONS: [&str; 3] = ["360 dpi", "720 dpi", "1440 dpi"];
const SERVICES: [&str; 4] = ["Доставка", "Монтаж", "Дизайн макета", "Срочность"];
const EXTRA_WORKS: [(&str, &str); 4] = [
    ("Люверсы", "шаг 30см"),
    ("Проклейка края", "по периметру"),
    ("Ламинация", "матовая"),
    ("Карманы", "под трубу 40 мм"),
];
const SURNAMES: [&str; 8] = [
    "Прилепский",
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Соколов",
    "Лебедев",
    "Новиков",
];
const FIRST_NAMES: [(&str, &str); 5] = [
    ("Алексей", "Анатольевич"),
    ("Сергей", "Петрович"),
    ("Дмитрий", "Иванович"),
    ("Андрей", "Викторович"),
    ("Михаил", "Олегович"),
];
/// Cycled to pad Описание until a message reaches its drawn size.
const FILLER: &str =
    "Просьба напечатать к сроку, макет согласован с менеджером, счет оплатим сразу. ";

/// One goods line, as the table in the HTML body shows it.
struct GoodsLine {
    name: String,
    quantity: u64,
    amount: f64,
}

/// One order: the payload (without padding) and the figures the bodies repeat.
struct Order {
    index: usize,
    timestamp: i64,
    payload: Map<String, Value>,
    goods: Vec<GoodsLine>,
    contact: String,
}

impl Order {
    /// See [`order_message`].
    fn numbered(n: usize, inn: &str, lines: usize) -> Order {
        let (goods, goods_json) = (0..lines)
            .map(|l| {
                let name = format!("Баннер {n}-{l}");
                let quantity = l as u64 + 1;
                let amount = 100.5 * quantity as f64;
                let json = json!({
                    "Номенклатура": name, "Количество": quantity, "Цена": "100,50",
                    "Сумма": amount, "Услуга": l == 1
                });
                let line = GoodsLine {
                    name,
                    quantity,
                    amount,
                };
                (line, json)
            })
            .unzip();
        let contact = "Иванов Иван".to_string();
        let payload = json!({
            "Тема": format!("Заказ №{n}"), "Дата": "01.06.2019 10:00:00", "ИНН": inn,
            "Телефон": format!("+7 (900) 123-{:02}-{:02}", (n % 1000) / 100, n % 100),
            "КонтактноеЛицо": contact, "Товары": Value::Array(goods_json)
        });
        let Value::Object(payload) = payload else {
            unreachable!("a JSON object literal")
        };
        Order {
            index: n,
            // 2019-06-01 10:00:00 UTC, the order's own date.
            timestamp: 1_559_383_200,
            payload,
            goods,
            contact,
        }
    }

    /// Order `index` drawn from `rng`, its INN (80% of orders have one) from `inns`.
    fn random(index: usize, rng: &mut Rng, inns: &[String]) -> Order {
        // Some time in 2024 (UTC), the website's local time written as is.
        let timestamp = 1_704_067_200 + rng.range(0, 366 * 86_400 - 1) as i64;
        let date = chrono::DateTime::from_timestamp(timestamp, 0)
            .unwrap_or_default()
            .format("%d.%m.%Y %H:%M:%S")
            .to_string();
        // A customer out of 1,000: repeat customers reuse their contact (same phone digits).
        let customer = rng.range(0, 999);
        let (first, patronymic) =
            FIRST_NAMES[customer as usize / SURNAMES.len() % FIRST_NAMES.len()];
        let contact = format!(
            "{} {first} {patronymic}",
            SURNAMES[customer as usize % SURNAMES.len()]
        );
        let mut goods = Vec::new();
        let mut goods_json = Vec::new();
        for position in 0..rng.range(1, 6) {
            // The first line is always goods, so every message is an order with a tech card.
            let (line, json) = if position > 0 && rng.chance(25) {
                service_line(rng)
            } else {
                goods_line(rng)
            };
            goods.push(line);
            goods_json.push(json);
        }
        let mut payload = Map::new();
        payload.insert(
            "Тема".into(),
            format!("Заказ №{index} от {}", &date[..10]).into(),
        );
        payload.insert("Дата".into(), date.into());
        payload.insert("Описание".into(), String::new().into());
        if rng.chance(80) {
            payload.insert("ИНН".into(), rng.pick(inns).clone().into());
        }
        payload.insert(
            "Телефон".into(),
            format!(
                "+7 925 {customer:03} {:02}-{:02}",
                customer % 97,
                customer % 89
            )
            .into(),
        );
        payload.insert(
            "АдресЭлектроннойПочты".into(),
            format!("client{customer}@example.ru").into(),
        );
        payload.insert("КонтактноеЛицо".into(), contact.clone().into());
        let files: Vec<Value> = (0..rng.range(1, 2))
            .map(|k| json!({"Файл": format!("https://shop.example/cabinet/print/2024/{index}_{k}.jpg")}))
            .collect();
        payload.insert("ФайлыМакета".into(), files.into());
        payload.insert("Товары".into(), goods_json.into());
        Order {
            index,
            timestamp,
            payload,
            goods,
            contact,
        }
    }

    /// The message at a size drawn in the allowed range: Описание is padded, the message
    /// rebuilt and measured, until it lands close (base64 makes the growth non-linear).
    /// Also says whether extra works had to be dropped to stay under the maximum.
    fn sized(&mut self, rng: &mut Rng) -> (Vec<u8>, bool) {
        let target = rng.range(
            MIN_MESSAGE_BYTES as u64 + 200,
            MAX_MESSAGE_BYTES as u64 - 200,
        ) as usize;
        let mut raw = self.build(0);
        let mut trimmed = false;
        // The biggest orders only fit the size range without some of their extra works.
        while raw.len() > MAX_MESSAGE_BYTES && self.drop_extra_work() {
            raw = self.build(0);
            trimmed = true;
        }
        let mut padding = 0usize;
        for _ in 0..6 {
            let missing = target as i64 - raw.len() as i64;
            if missing.abs() < 64 || (padding == 0 && missing < 0) {
                break;
            }
            // A cp1251 character is one byte, which base64 turns into ~1.37 bytes with
            // line breaks: so ~0.73 characters per missing byte.
            padding = (padding as i64 + missing * 73 / 100).max(0) as usize;
            raw = self.build(padding);
        }
        assert!(
            (MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&raw.len()),
            "generated message {} is {} bytes, outside {MIN_MESSAGE_BYTES}..={MAX_MESSAGE_BYTES}",
            self.index,
            raw.len()
        );
        (raw, trimmed)
    }

    /// Removes the extra works of the last goods line that has some; false when none has.
    fn drop_extra_work(&mut self) -> bool {
        let Some(Value::Array(lines)) = self.payload.get_mut("Товары") else {
            return false;
        };
        lines.iter_mut().rev().any(|line| {
            line.as_object_mut()
                .and_then(|fields| fields.remove(EXTRA_WORK_KEY))
                .is_some()
        })
    }

    /// The message, with `padding` filler characters in Описание.
    fn build(&mut self, padding: usize) -> Vec<u8> {
        let i = self.index;
        let mut description = "Заказ с сайта, оплата по счету. ".to_string();
        description.extend(FILLER.chars().cycle().take(padding));
        self.payload.insert("Описание".into(), description.into());
        // Tab-indented like the seed's sample file.
        let mut json = Vec::new();
        let indent = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        self.payload
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut json, indent,
            ))
            .expect("a JSON map serialises");
        let json = String::from_utf8(json).expect("serde_json writes UTF-8");
        let (attachment, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&json);
        assert!(
            !unmappable,
            "order {i} has characters windows-1251 cannot encode"
        );
        let attachment = attachment.into_owned();

        let total: f64 = self.goods.iter().map(|g| g.amount).sum();
        let text = format!(
            "Заказ №{i} с сайта shop.example.\nПозиций: {}, сумма: {total:.2} руб.\nКонтакт: {}\n",
            self.goods.len(),
            self.contact
        );
        let mut html =
            format!("<p>Заказ №{i}</p><table><tr><th>Товар</th><th>Кол.</th><th>Сумма</th></tr>");
        for g in &self.goods {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
                g.name, g.quantity, g.amount
            );
        }
        let _ = write!(html, "</table><p>Итого: {total:.2} руб.</p>");

        // Fixed boundaries: mail-builder's default ones depend on the clock, and the
        // messages must be the same bytes on every run.
        let alternative = MimePart::new(
            ContentType::new("multipart/alternative").attribute("boundary", format!("alt-{i:08}")),
            vec![
                MimePart::new("text/plain", text),
                MimePart::new("text/html", html),
            ],
        );
        let file = MimePart::new(
            ContentType::new("text/plain").attribute("charset", "windows-1251"),
            attachment,
        )
        .attachment(format!("order_{i}.txt"));
        // Every third subject carries Cyrillic, so RFC 2047 decoding is part of the work.
        let subject = if i.is_multiple_of(3) {
            format!("ORDER: {i} Заказ с сайта")
        } else {
            format!("ORDER: {i}")
        };
        MessageBuilder::new()
            .from(("Сайт shop.example", "site@shop.example"))
            .to("orders@shop.example")
            .subject(subject)
            .message_id(format!("bench-{i}@shop.example"))
            .date(self.timestamp)
            .body(MimePart::new(
                ContentType::new("multipart/mixed").attribute("boundary", format!("mix-{i:08}")),
                vec![alternative, file],
            ))
            .write_to_vec()
            .expect("mail-builder writes into a Vec")
    }
}

/// A printed goods line (gets a tech card when stored), with an extra work 40% of the time.
fn goods_line(rng: &mut Rng) -> (GoodsLine, Value) {
    let name = rng.pick(&GOODS).to_string();
    let (material, material_code) = *rng.pick(&MATERIALS);
    let width = rng.range(5, 60) as f64 / 10.0;
    let height = rng.range(5, 30) as f64 / 10.0;
    let quantity = rng.range(1, 10);
    let price = rng.range(20, 150) * 10;
    let amount = (width * height * quantity as f64 * price as f64 * 100.0).round() / 100.0;
    let mut json = json!({
        "Номенклатура": name,
        "СтанокКод": rng.range(1, 5),
        "Разрешение": rng.pick(&RESOLUTIONS),
        "Материал": material,
        "МатериалКод": material_code,
        "Ширина": width,
        "Высота": height,
        "Количество": quantity,
        "Цена": price,
        "Сумма": amount,
        "Услуга": false,
    });
    if rng.chance(40) {
        let (kind, description) = *rng.pick(&EXTRA_WORKS);
        json[EXTRA_WORK_KEY] = json!([
            {"ВидРаботы": kind, "Количество": rng.range(1, 40), "Описание": description}
        ]);
    }
    (
        GoodsLine {
            name,
            quantity,
            amount,
        },
        json,
    )
}

/// A service line (delivery, mounting...): no machine, no tech card.
fn service_line(rng: &mut Rng) -> (GoodsLine, Value) {
    let name = rng.pick(&SERVICES).to_string();
    let quantity = rng.range(1, 3);
    let price = rng.range(5, 50) * 100;
    let amount = (quantity * price) as f64;
    let json = json!({
        "Номенклатура": name,
        "Услуга": true,
        "Количество": quantity,
        "Цена": price,
        "Сумма": amount,
    });
    (
        GoodsLine {
            name,
            quantity,
            amount,
        },
        json,
    )
}

/// The demo's `emes-fault` format (fault reports wait for triage) with a named workflow.
pub const FAULT_FORMAT: &str = r#"
[[format]]
name = "emes-fault"
kind = "service-request"
number-prefix = "BZ"
required = ["contact-phone"]
[format.fields]
type = "pending"
source = "日立官网"
contact = "{{姓名}} /{{性别|salutation}}"
gender = "{{性别}}"
contact-phone = "{{手机}}"
region = "{{省}}{{市}}{{区}}"
address = "{{省}}{{市}}{{区}}{{详细地址}}"
description = "{{描述}}"
identity = "{{身份}}"
elevator-no = "{{梯号}}"

[workflow]
resolved = "已解决"
accepted = "已确认"
rejected = "未解决"
"#;

/// Fault report `n` (an elevator maker's website form: UTF-8 JSON, no charset declared) from
/// `phone`, describing the fault as `description`.
pub fn fault_report(n: u32, phone: &str, description: &str) -> Vec<u8> {
    let payload = serde_json::json!({
        "姓名": "李雷", "性别": "男", "手机": phone, "省": "广东", "市": "广州", "区": "天河区",
        "详细地址": "体育西路1号", "描述": description, "身份": "物业"
    });
    let id = format!("fault-{n}@hitachi.example");
    let subject = format!("ORDER: {n} 官网报障");
    website_mail(&id, &subject, "报障", ("fault.json", &payload), None)
}

/// Website form mail `n`: the subject `ORDER: n <what>`, `payload` as a UTF-8 JSON attachment
/// without a charset (as the form scripts send it), and the `Date` header `sent` (Unix
/// seconds) when given.
pub fn form_mail(n: u32, what: &str, payload: &Value, sent: Option<i64>) -> Vec<u8> {
    let id = format!("form-{n}@hitachi.example");
    let subject = format!("ORDER: {n} {what}");
    website_mail(&id, &subject, what, ("form.json", payload), sent)
}

/// A form mail: a text body and the payload as a JSON attachment `(file name, payload)`.
fn website_mail(
    id: &str,
    subject: &str,
    body: &str,
    (file, payload): (&str, &Value),
    sent: Option<i64>,
) -> Vec<u8> {
    let attachment = MimePart::new(
        "application/octet-stream",
        serde_json::to_vec(payload).unwrap(),
    )
    .attachment(file.to_string());
    let mut message = MessageBuilder::new()
        .from("web@hitachi.example")
        .subject(subject.to_string())
        .message_id(id.to_string());
    if let Some(sent) = sent {
        message = message.date(sent);
    }
    message
        .body(MimePart::new(
            "multipart/mixed",
            vec![MimePart::new("text/plain", body.to_string()), attachment],
        ))
        .write_to_vec()
        .unwrap()
}
