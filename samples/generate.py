#!/usr/bin/env python3
"""Generate the sample e-mails that mailintake's integration tests read.

Run from the repository root (the script only ever writes below samples/):

    python3 samples/generate.py

It (re)creates:

* ``samples/eml/NN-short-name.eml`` - one e-mail per decoding rule (website
  order forms, forwards from managers, replies from clients, broken payloads);
* ``samples/cases.json`` - what the decoder must make of each file: the status
  (accepted / skipped / quarantined) and, for accepted mail, a subset of the
  decoded record, computed here from the very payload that went into the mail;
* ``samples/maildir/`` + ``samples/maildir.expected.json`` - a small Maildir
  inbox for the demo run, and the summary that one run over it must report;
* ``samples/emes/eml/NN-short-name.eml`` + ``samples/emes-cases.json`` - the
  EMES example of collectors.toml: an elevator maker's consult and fault-report
  forms (Chinese JSON keys, GBK / GB18030 / UTF-8 attachments) and the service
  requests the ``emes-consult`` / ``emes-fault`` formats must make of them;
* ``samples/emes/inbox/`` - the one Maildir the shipped collector ``emes`` reads:
  both forms, told apart by the formats' ``when``, into two queues;
* ``samples/README.md`` - what is here, with the table of cases.

``samples/verify.py`` checks all of it by parsing the files back.

Why generate instead of hand-writing .eml files: every message is serialised by
a real MIME implementation (CPython's ``email`` package: RFC 2047 subjects,
RFC 2231 file names, base64 / quoted-printable / 8bit / 7bit bodies, CRLF or LF
line ends), so the Rust decoder is tested against the shapes mail actually has
on the wire rather than against what its own author thinks MIME looks like.

The output is byte-stable: dates, Message-IDs and MIME boundaries are fixed
(boundaries are derived from the case name), so re-running the script gives
identical files and a diff only shows intended changes.  Only the standard
library is used.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import json
import quopri
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP, Policy, default
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
MSK = timezone(timedelta(hours=3))
INBOX = Address("Отдел заказов", addr_spec="orders@print.example")

# Policies: CPython's standard ones, so line ends are the library's own work.
LF = default  # "\n" line ends, as a local MDA / PHP mail() writes them
CRLF = SMTP   # "\r\n" line ends, as they travel over SMTP


# --------------------------------------------------------------------------
# Russian INN (taxpayer number) checksums
# --------------------------------------------------------------------------

INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _check_digit(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights)) % 11 % 10)


def inn10(first9: str) -> str:
    """A valid 10-digit (company) INN starting with the given 9 digits."""
    return first9 + _check_digit(first9, INN10_WEIGHTS)


def inn12(first10: str) -> str:
    """A valid 12-digit (person / sole trader) INN starting with the given 10 digits."""
    with11 = first10 + _check_digit(first10, INN12_WEIGHTS_11)
    return with11 + _check_digit(with11, INN12_WEIGHTS_12)


def inn_is_valid(inn: str) -> bool:
    if not inn.isdigit():
        return False
    if len(inn) == 10:
        return inn == inn10(inn[:9])
    if len(inn) == 12:
        return inn == inn12(inn[:10])
    return False


# --------------------------------------------------------------------------
# Payloads (seed format v0.1) and the record the decoder must make of them
# --------------------------------------------------------------------------

SEED_PAYLOAD = {
    "Тема": "Заказ №123 от 01.06.2019 бла бла бла",
    "Дата": "29.05.2019 15:15:00",
    "Описание": "Произвольный тест описание заказа строкой",
    "ИНН": "7709745454",
    "Телефон": "+7 925 642 42-90",
    "АдресЭлектроннойПочты": "adwcom@gmail.com",
    "КонтактноеЛицо": "Прилепский Алексей Анатольевич",
    "ФайлыМакета": [
        {"Файл": "https://demo.solvent.ru/cabinet/print/2019/DAC_noyXsAEV-Cx.jpg"},
        {"Файл": "https://demo.solvent.ru/cabinet/print/2019/DAC_noyXsAEV-Cx.jpg"},
    ],
    "Товары": [
        {
            "Номенклатура": "Ролап 123 22 22",
            "СтанокКод": 1,
            "Разрешеине": "360 dpi",
            "Материал": "Баннеры - Эконом (340 гр./м2) - 360 dpi",
            "МатериалКод": "00-00000021",
            "Ширина": 2,
            "Высота": 2,
            "Количество": 2,
            "Цена": 500,
            "Сумма": 1000,
            "Услуга": False,
            "ДополнительныеРаботы": [
                {"ВидРаботы": "Люверсы", "Количество": 2, "Описание": "шаг 30см"},
                {"ВидРаботы": "Проклейка", "Количество": 2, "Описание": "проклейка да"},
                {"ВидРаботы": "Карманы", "Количество": 2, "Описание": "везде"},
            ],
        },
        {"Номенклатура": "Доставка ", "Услуга": True, "Количество": 2, "Цена": 500, "Сумма": 1000},
    ],
}

BANNER = "Баннеры - Эконом (340 гр./м2) - 360 dpi"
LAYOUT_URL = "https://demo.solvent.ru/cabinet/print/2024/{}.jpg"


def payload(ref: str, date: str, contact: str, phone: str, *, email: str | None = None,
            inn: str | None = None, description: str | None = None, title: str = "Заказ №{ref} от {day}",
            layouts: tuple[str, ...] = (), goods: list[dict] | None = None) -> dict:
    """A website order/lead in the seed key order; optional keys are left out when None."""
    doc = {"Тема": title.format(ref=ref, day=date[:10]), "Дата": date, "Описание": description,
           "ИНН": inn, "Телефон": phone, "АдресЭлектроннойПочты": email, "КонтактноеЛицо": contact,
           "ФайлыМакета": [{"Файл": LAYOUT_URL.format(name)} for name in layouts]}
    if goods is not None:
        doc["Товары"] = goods
    return {key: value for key, value in doc.items() if value is not None}


def print_job(item: str, machine, material: str, material_code: str, width, height, qty, price, amount,
              *, resolution: str = "360 dpi", resolution_key: str = "Разрешение", extra=()) -> dict:
    """One printed goods line; extra = ((kind, quantity, description), ...)."""
    line = {"Номенклатура": item, "СтанокКод": machine, resolution_key: resolution, "Материал": material,
            "МатериалКод": material_code, "Ширина": width, "Высота": height, "Количество": qty,
            "Цена": price, "Сумма": amount, "Услуга": False}
    if extra:
        line["ДополнительныеРаботы"] = [{"ВидРаботы": k, "Количество": q, "Описание": d} for k, q, d in extra]
    return line


def service(item: str, qty, price, amount) -> dict:
    return {"Номенклатура": item, "Услуга": True, "Количество": qty, "Цена": price, "Сумма": amount}


def website_json(doc, *, ascii_only: bool = False) -> str:
    """JSON as the order form writes it: tab-indented; ascii_only mimics PHP json_encode() defaults."""
    text = json.dumps(doc, ensure_ascii=ascii_only, indent="\t")
    return text.replace("/", "\\/") if ascii_only else text


def _number(value):
    """Decoder rule: JSON numbers as they are, strings with '.' or ',' as decimal point."""
    if value is None:
        return None
    if isinstance(value, str):
        value = float(value.replace(",", "."))
    return int(value) if float(value).is_integer() else value


def _text(value):
    """Codes are strings in the record: JSON number 1 -> "1"."""
    return None if value is None else str(value)


def _date(value):
    if value is None:
        return None
    return datetime.strptime(value, "%d.%m.%Y %H:%M:%S").strftime("%Y-%m-%dT%H:%M:%S")


def expected_record(doc: dict, source: dict) -> dict:
    """The full record the decoder must produce for payload `doc` (see cases.json)."""
    lines = [{
        "item": g.get("Номенклатура"),
        "machine_code": _text(g.get("СтанокКод")),
        "resolution": g.get("Разрешение", g.get("Разрешеине")),
        "material": g.get("Материал"),
        "material_code": _text(g.get("МатериалКод")),
        "width": _number(g.get("Ширина")),
        "height": _number(g.get("Высота")),
        "quantity": _number(g.get("Количество")),
        "price": _number(g.get("Цена")),
        "amount": _number(g.get("Сумма")),
        "is_service": g.get("Услуга", False),
        "extra_work": [{"kind": w.get("ВидРаботы"), "quantity": _number(w.get("Количество")),
                        "description": w.get("Описание")} for w in g.get("ДополнительныеРаботы", [])],
    } for g in doc.get("Товары", [])]
    inn = doc.get("ИНН")
    return {
        "kind": "order" if lines else "lead",
        "title": doc.get("Тема"),
        "date": _date(doc.get("Дата")),
        "description": doc.get("Описание"),
        "inn": inn,
        "inn_valid": inn is not None and inn_is_valid(inn),
        "phone": doc.get("Телефон"),
        "email": doc.get("АдресЭлектроннойПочты"),
        "contact_name": doc.get("КонтактноеЛицо"),
        "layout_files": [f["Файл"] for f in doc.get("ФайлыМакета", [])],
        "lines": lines,
        "source": source,
    }


# --------------------------------------------------------------------------
# Mail clients (who sends what, and how their MIME looks)
# --------------------------------------------------------------------------

def boundary(style: str, seed: str, depth: int) -> str:
    """A MIME boundary in the given mailer's style, derived from `seed` so it is stable across runs."""
    h = hashlib.sha1(seed.encode()).hexdigest()
    if style == "phpmailer":    # PHPMailer: b1_<hash> outside, b2_<hash> nested
        return f"b{depth + 1}_{h[:32]}"
    if style == "thunderbird":  # Thunderbird: twelve dashes and 24 alphanumerics
        return "-" * 12 + base64.b32encode(bytes.fromhex(h))[:24].decode()
    if style == "outlook":      # Outlook (Express): ----=_NextPart_000_XXXX_01DB3D5A.XXXXXXXX
        return f"----=_NextPart_{depth:03d}_{h[:4].upper()}_01DB3D5A.{h[4:12].upper()}"
    if style == "dotnet":       # System.Net.Mail: --boundary_N_<guid>
        return f"--boundary_{depth}_{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    if style == "roundcube":    # Roundcube and most PHP scripts: =_<hash>
        return f"=_{h[:32]}"
    raise ValueError(style)


@dataclass(frozen=True)
class Client:
    name: str
    address: str
    policy: Policy
    boundary_style: str
    headers: tuple[tuple[str, str], ...] = ()
    body_charset: str = "utf-8"
    body_cte: str | None = None          # None: let the library choose
    subject_in_base64: bool = False      # PHPMailer encodes the whole non-ASCII subject

    @property
    def sender(self) -> Address:
        return Address(self.name, addr_spec=self.address)

    @property
    def domain(self) -> str:
        return self.address.split("@")[1]


SHOP_PHPMAILER = Client("Интернет-магазин Solvent", "noreply@shop.example", CRLF, "phpmailer",
                        (("X-Mailer", "PHPMailer 6.0.7 (https://github.com/PHPMailer/PHPMailer)"),),
                        body_cte="quoted-printable", subject_in_base64=True)
SHOP_PHP_MAIL = Client("Solvent", "www-data@shop.example", LF, "roundcube",
                       (("X-Mailer", "PHP/7.4.33"), ("X-PHP-Originating-Script", "33:order.php")),
                       body_charset="windows-1251", body_cte="base64")
OLD_SHOP = Client("Рекламная мастерская", "robot@old-shop.example", LF, "roundcube",
                  (("X-Mailer", "PHP/5.2.17"),), body_charset="koi8-r", body_cte="8bit")
DOTNET_SHOP = Client("Печать онлайн", "noreply@net-shop.example", CRLF, "dotnet", body_cte="base64")
MANAGER_TB = Client("Ольга Смирнова", "o.smirnova@print.example", LF, "thunderbird",
                    (("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) "
                                    "Gecko/20100101 Thunderbird/115.5.0"),
                     ("Content-Language", "ru")), body_cte="8bit")
CLIENT_OUTLOOK = Client("Дмитрий Кузнецов", "d.kuznetsov@client.example", CRLF, "outlook",
                        (("X-Mailer", "Microsoft Outlook 16.0"),
                         ("Thread-Index", "AdsdPXJ1mZ0vN6kzQ4y2m8c1b0aHnQ=="), ("Content-Language", "ru")),
                        body_charset="windows-1251", body_cte="base64")
CLIENT_OE = Client("Сергей", "sergey@client.example", CRLF, "outlook",
                   (("X-Mailer", "Microsoft Outlook Express 6.00.2900.5512"), ("X-Priority", "3")),
                   body_charset="windows-1251", body_cte="quoted-printable")


# --------------------------------------------------------------------------
# MIME shapes
# --------------------------------------------------------------------------

def encoded_words(text: str, charset: str, chunk: int = 30) -> list[str]:
    """RFC 2047 B-encoded words, each holding at most `chunk` characters (never splits one)."""
    return [f"=?{charset}?B?{base64.b64encode(text[i:i + chunk].encode(charset)).decode()}?="
            for i in range(0, len(text), chunk)]


def new_message(client: Client, subject: str, msgid: str, when: datetime,
                policy: Policy | None = None, to: Address = INBOX) -> EmailMessage:
    """Top-level headers as `client` writes them; policy overrides the client's line ends."""
    msg = EmailMessage(policy=policy or client.policy)
    msg["From"] = client.sender
    msg["To"] = to
    if client.subject_in_base64 and not subject.isascii():
        msg.set_raw("Subject", "\n ".join(encoded_words(subject, "UTF-8")))
    else:
        msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = f"<{msgid}>"
    for name, value in client.headers:
        msg[name] = value
    return msg


def set_body(msg: EmailMessage, client: Client, text: str, html: str | None = None) -> None:
    """Body text (the decoder ignores it); with html, a multipart/alternative."""
    msg.set_content(text, charset=client.body_charset, cte=client.body_cte)
    if html is not None:
        msg.add_alternative(html, subtype="html", charset=client.body_charset, cte=client.body_cte)


def encode_body(data: bytes, cte: str) -> str:
    if cte == "base64":
        return base64.encodebytes(data).decode("ascii")
    if cte == "quoted-printable":
        return quopri.encodestring(data).decode("ascii")
    if cte == "8bit":
        return data.decode("ascii", "surrogateescape")
    if cte == "7bit":
        return data.decode("ascii")
    raise ValueError(cte)


def named_part(client: Client, data: bytes, content_type: str, filename: str, *,
               charset: str | None = None, cte: str = "base64", disposition: str | None = "attachment",
               name_param: bool = False) -> MIMEPart:
    """A file part; name_param adds Content-Type name= (Thunderbird/Outlook style),
    disposition=None leaves Content-Disposition out (then name= carries the name)."""
    part = MIMEPart(policy=client.policy)
    part["Content-Type"] = content_type
    if charset:
        part.set_param("charset", charset)
    if name_param or disposition is None:
        part.set_param("name", filename)
    if disposition:
        part["Content-Disposition"] = disposition
        part.set_param("filename", filename, header="Content-Disposition")
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(encode_body(data, cte))
    return part


def encoded_word_named_part(client: Client, data: bytes, filename: str, charset: str) -> MIMEPart:
    """Old-mailer style: the file name as an RFC 2047 word inside quotes (not RFC 2231)."""
    word = encoded_words(filename, charset, chunk=len(filename))[0]
    part = MIMEPart(policy=client.policy)
    part.set_raw("Content-Type", f'application/octet-stream;\n name="{word}"')
    part.set_raw("Content-Transfer-Encoding", "base64")
    part.set_raw("Content-Disposition", f'attachment;\n filename="{word}"')
    part.set_payload(encode_body(data, "base64"))
    return part


def message_part(inner: EmailMessage, filename: str) -> MIMEPart:
    """Forward as attachment: a message/rfc822 part, named after the subject like Thunderbird does."""
    part = MIMEPart(policy=inner.policy)
    part.set_content(inner, cte="7bit", disposition="attachment", filename=filename)
    part.set_param("name", filename)
    return part


def attach(msg: EmailMessage, *parts: MIMEPart) -> EmailMessage:
    if msg.get_content_type() != "multipart/mixed":
        msg.make_mixed()
    for part in parts:
        msg.attach(part)
    return msg


def finalize(msg: EmailMessage, client: Client, seed: str) -> None:
    """Deterministic boundaries (otherwise the library picks random ones), and no MIME-Version
    header inside sub-parts (add_alternative() leaves one on the HTML part)."""
    def visit(part, depth, path):
        if depth:
            del part["MIME-Version"]
        if part.get_content_maintype() != "multipart":
            return  # an attached message/rfc822 keeps the boundaries of its own sender
        part.set_boundary(boundary(client.boundary_style, f"{seed}/{path}", depth))
        for i, sub in enumerate(part.get_payload()):
            visit(sub, depth + 1, f"{path}.{i}")
    visit(msg, 0, "0")


def tiny_png(size: int = 16) -> bytes:
    """A valid size x size RGB PNG (a diagonal gradient), built with zlib only."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixels = b"".join(b"\0" + bytes(c for x in range(size) for c in (x * 16, y * 16, 200)) for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(pixels, 9)) + chunk(b"IEND", b""))


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

@dataclass
class Case:
    nn: int
    slug: str
    status: str
    why: str
    client: Client
    message: EmailMessage
    reason_contains: str | None = None
    expect: dict | None = None
    raw: bytes = field(init=False, default=b"")

    @property
    def file(self) -> str:
        return f"eml/{self.nn:02d}-{self.slug}.eml"

    def render(self) -> bytes:
        finalize(self.message, self.client, self.slug)
        self.raw = self.message.as_bytes(policy=self.client.policy)
        return self.raw

    def manifest(self) -> dict:
        entry = {"file": self.file, "status": self.status, "why": self.why}
        if self.reason_contains:
            entry["reason_contains"] = self.reason_contains
        if self.expect is not None:
            entry["expect"] = self.expect
        return entry


def when(nn: int) -> datetime:
    return datetime(2024, 11, 18, 9, 0, tzinfo=MSK) + timedelta(minutes=37 * nn)


def site_text(ref: str) -> tuple[str, str]:
    text = (f"Новый заказ с сайта shop.example.\nНомер заказа: {ref}\n"
            "Данные заказа во вложении.\n\n-- \nЭто письмо создано автоматически, не отвечайте на него.\n")
    html = (f"<html><body><p>Новый заказ с сайта <b>shop.example</b>.</p>"
            f"<p>Номер заказа: <b>{ref}</b></p><p>Данные заказа во вложении.</p></body></html>\n")
    return text, html


def website_mail(client: Client, subject: str, msgid: str, nn: int, parts: list[MIMEPart], *,
                 ref: str = "", html: bool = True) -> EmailMessage:
    """The common shape: a text (or text+HTML) body and the given file parts."""
    msg = new_message(client, subject, msgid, when(nn))
    text, markup = site_text(ref)
    set_body(msg, client, text, markup if html else None)
    return attach(msg, *parts)


def accepted(nn, slug, why, client, msg, doc, *, order_ref, attachment, charset) -> Case:
    source = {"message_id": msg["Message-ID"].strip("<>"), "subject": str(msg["Subject"]),
              "order_ref": order_ref, "attachment_name": attachment, "charset": charset}
    return Case(nn, slug, "accepted", why, client, msg, expect=expected_record(doc, source))


def rejected(nn, slug, status, reason, why, client, msg) -> Case:
    return Case(nn, slug, status, why, client, msg, reason_contains=reason)


def json_part(client, doc, *, encoding="cp1251", bom=b"", filename="order.txt", content_type="text/plain",
              charset="windows-1251", cte="base64", **kw) -> MIMEPart:
    """The order form's attachment: the tab-indented JSON in `encoding`, after an optional BOM."""
    return named_part(client, bom + website_json(doc).encode(encoding), content_type, filename,
                      charset=charset, cte=cte, **kw)


def simple_order(nn, slug, why, client, ref, doc, *, charset_name, subject=None, **part_kw) -> Case:
    """Website mail "ORDER: <ref>" with one JSON attachment built by json_part(**part_kw)."""
    subject = subject or f"ORDER: {ref}"
    part = json_part(client, doc, **part_kw)
    msg = website_mail(client, subject, f"order-{ref}@{client.domain}", nn, [part], ref=ref)
    return accepted(nn, slug, why, client, msg, doc, order_ref=ref,
                    attachment=part_kw.get("filename", "order.txt"), charset=charset_name)


def banner_order(ref: str, date: str, contact: str, phone: str, **kw) -> dict:
    """A typical one-banner order used where only the MIME shape matters."""
    goods = [print_job("Баннер 3х1 м", 1, BANNER, "00-00000021", 3, 1, 1, 1050, 1050,
                       extra=(("Люверсы", 8, "по углам и через 50 см"),)),
             service("Доставка ", 1, 450, 450)]
    return payload(ref, date, contact, phone, goods=goods, layouts=(f"banner-{ref}",), **kw)


def forwarded_inline() -> Case:
    """04: a manager forwards the site mail inline from Thunderbird; the file is re-attached."""
    ref, client = "77", MANAGER_TB
    doc = banner_order(ref, "17.11.2024 21:40:12", "Волкова Ирина", "8 (903) 555-12-07",
                       email="volkova@client.example", inn=inn10("504201377"))
    original_date = format_datetime(when(4) - timedelta(hours=11))
    msg = new_message(client, f"Fwd: ORDER: {ref}", f"fwd-{ref}@print.example", when(4))
    text, _ = site_text(ref)
    quoted = (f"Коллеги, заказ пришёл на мой ящик, пересылаю.\n\n\n"
              f"-------- Перенаправленное сообщение --------\n"
              f"Тема: \tORDER: {ref}\nДата: \t{original_date}\n"
              f"От: \t{SHOP_PHPMAILER.sender}\nКому: \to.smirnova@print.example\n\n\n{text}")
    set_body(msg, client, quoted)
    part = json_part(client, doc, encoding="utf-8", charset="UTF-8", name_param=True)
    attach(msg, part)
    return accepted(4, "fwd-inline", "A Thunderbird inline forward ('Fwd: ORDER: 77') still matches; the "
                    "quoted original in the body is ignored and the re-attached file is decoded.",
                    client, msg, doc, order_ref=ref, attachment="order.txt", charset="utf-8")


def forwarded_as_attachment() -> Case:
    """19: the site mail travels as a message/rfc822 part inside the manager's mail."""
    ref, client, inner_client = "88", MANAGER_TB, SHOP_PHPMAILER
    doc = banner_order(ref, "18.11.2024 07:55:31", "Ковалёв Пётр", "+79161234567", inn="7709745454")
    inner = new_message(inner_client, f"ORDER: {ref}", f"order-{ref}@shop.example",
                        when(19) - timedelta(hours=2), policy=client.policy)  # line ends of the outer mail
    text, html = site_text(ref)
    set_body(inner, inner_client, text, html)
    attach(inner, json_part(inner_client, doc))
    finalize(inner, inner_client, "inner-88")

    msg = new_message(client, f"Fwd: ORDER: {ref}", f"fwd-{ref}@print.example", when(19))
    set_body(msg, client, "Пересылаю письмо с сайта целиком, заказ во вложении.\n")
    attach(msg, message_part(inner, f"ORDER: {ref}.eml"))
    return accepted(19, "fwd-as-attachment", "Forward-as-attachment: the JSON file is found inside the "
                    "attached message/rfc822; source keeps the outer Message-ID and subject.",
                    client, msg, doc, order_ref=ref, attachment="order.txt", charset="windows-1251")


def png_before_json() -> Case:
    ref, client = "213", SHOP_PHPMAILER
    doc = banner_order(ref, "18.11.2024 10:02:00", "Никитин Олег", "+7 (495) 600-00-13",
                       email="nikitin@client.example")
    image = named_part(client, tiny_png(), "image/png", "preview.png")
    part = json_part(client, doc, encoding="utf-8", charset="utf-8")
    msg = website_mail(client, f"ORDER: {ref}", f"order-{ref}@shop.example", 13, [image, part], ref=ref)
    return accepted(13, "png-then-json", "An image attachment before the JSON file is passed over; the "
                    "JSON file after it is used.", client, msg, doc,
                    order_ref=ref, attachment="order.txt", charset="utf-8")


def encoded_word_name() -> Case:
    ref, client = "212", CLIENT_OE
    doc = banner_order(ref, "18.11.2024 11:20:45", "Сергей", "89035551212")
    name = f"Заказ {ref}.txt"
    part = encoded_word_named_part(client, website_json(doc).encode("cp1251"), name, "windows-1251")
    msg = new_message(client, f"ORDER: {ref}", f"order-{ref}@{client.domain}", when(12))
    set_body(msg, client, "Добрый день! Заказ во вложении.\nСергей\n")
    attach(msg, part)
    return accepted(12, "encoded-word-filename", "A file name given as an RFC 2047 encoded word "
                    "(=?windows-1251?B?...?=) is decoded for attachment_name.",
                    client, msg, doc, order_ref=ref, attachment=name, charset="windows-1251")


def body_only() -> Case:
    ref, client = "225", SHOP_PHP_MAIL
    doc = banner_order(ref, "18.11.2024 12:00:00", "Белова Анна", "+7 921 000-22-25")
    msg = new_message(client, f"ORDER: {ref}", f"order-{ref}@shop.example", when(25))
    set_body(msg, client, "Новый заказ с сайта:\n\n" + website_json(doc) + "\n")
    return rejected(25, "json-in-body", "quarantined", "attachment", "JSON pasted into the body text is "
                    "not a payload: an ORDER mail without a JSON attachment is quarantined.", client, msg)


def png_only() -> Case:
    ref, client = "228", SHOP_PHPMAILER
    msg = website_mail(client, f"ORDER: {ref}", f"order-{ref}@shop.example", 28,
                       [named_part(client, tiny_png(), "image/png", "layout.png")], ref=ref)
    return rejected(28, "png-only", "quarantined", "attachment", "An ORDER mail whose only attachment is "
                    "an image has no payload and is quarantined.", client, msg)


def wrong_subject(nn, slug, subject, client, why) -> Case:
    """Skipped cases: a perfectly good JSON attachment, so only the subject decides."""
    doc = banner_order("5", "18.11.2024 13:00:00", "Кузнецов Дмитрий", "+7 916 555-00-05")
    msg = new_message(client, subject, f"q-{nn}@{client.domain}", when(nn))
    set_body(msg, client, "Добрый день!\nПодскажите, пожалуйста, по заказу во вложении.\n")
    attach(msg, json_part(client, doc, encoding="utf-8", charset="utf-8"))
    return rejected(nn, slug, "skipped", "subject", why, client, msg)


def build_cases() -> list[Case]:
    # 01: the seed payload, exactly as the website sends it.
    seed = simple_order(1, "seed-order", "The seed order: multipart/alternative body plus a base64 cp1251 "
                        "order.txt; all payload keys, the Разрешеине misspelling, a service line.",
                        SHOP_PHPMAILER, "123", SEED_PAYLOAD, charset_name="windows-1251")

    lead_doc = payload("124", "18.11.2024 09:37:10", "Смирнов Андрей", "+7 (812) 309-44-10",
                       email="smirnov@client.example", description="Перезвоните, нужен расчёт баннера 3х6 м",
                       goods=[])
    lead = simple_order(2, "lead-octet-stream", "An empty Товары list makes a lead; an application/octet-stream "
                        "part without charset, not UTF-8, decodes as windows-1251.",
                        SHOP_PHP_MAIL, "124", lead_doc, charset_name="windows-1251", subject="ORDER:124",
                        filename="lead.json", content_type="application/octet-stream", charset=None)

    d03 = banner_order("5", "18.11.2024 10:51:03", "Орлова Мария", "+7 926 111-05-05",
                       email="orlova@client.example", inn="7709745454")
    rfc2047 = simple_order(3, "rfc2047-subject-qp", "Subject fully RFC 2047 encoded (ORDER inside the encoded "
                           "word) with trailing text; quoted-printable attachment declared charset cp1251.",
                           SHOP_PHPMAILER, "5", d03, charset_name="windows-1251",
                           subject="ORDER: 5 Заказ с сайта", charset="cp1251", cte="quoted-printable")

    d05 = banner_order("205", "18.11.2024 12:05:00", "Тарасов Илья", "+7 495 123-02-05")
    bom = simple_order(5, "utf8-bom", "A UTF-8 byte order mark without a declared charset gives utf-8 "
                       "(the BOM is not part of the JSON).", DOTNET_SHOP, "205", d05, charset_name="utf-8",
                       encoding="utf-8", bom=codecs.BOM_UTF8, filename="order.json",
                       content_type="application/json", charset=None)

    d06 = banner_order("206", "18.11.2024 12:42:00", "Ефимова Светлана", "+7 903 206-06-06")
    mislabelled = simple_order(6, "mislabelled-utf8", "Declared charset=utf-8 but the bytes are cp1251: not "
                               "valid UTF-8, so the declaration is ignored and windows-1251 is used.",
                               SHOP_PHPMAILER, "206", d06, charset_name="windows-1251", charset="utf-8")

    d07 = banner_order("207", "18.11.2024 13:19:00", "Жуков Артём", "+7 812 207-07-07",
                       description="Старый сайт, кодировка КОИ-8",
                       title="Заказ N {ref} от {day}")  # KOI8-R has no "№"
    koi8 = simple_order(7, "koi8r", "A declared koi8-r charset is honoured (the bytes are valid KOI8-R) and "
                        "reported as koi8-r.", OLD_SHOP, "207", d07, charset_name="koi8-r",
                        encoding="koi8_r", charset="koi8-r")

    d08 = banner_order("208", "18.11.2024 13:56:00", "Зайцева Ольга", "+7 916 208-08-08")
    utf8 = simple_order(8, "utf8-no-charset", "Plain UTF-8 bytes with no charset parameter are detected "
                        "as utf-8.", SHOP_PHPMAILER, "208", d08, charset_name="utf-8", encoding="utf-8",
                        filename="order.json", content_type="application/json", charset=None)

    d09 = banner_order("209", "18.11.2024 14:33:00", "Ильин Максим", "+7 495 209-09-09")
    inline = simple_order(9, "inline-with-filename", "A Content-Disposition: inline part that has a filename "
                          "is a payload candidate too.", SHOP_PHPMAILER, "209", d09,
                          charset_name="windows-1251", disposition="inline")

    d10 = banner_order("210", "18.11.2024 15:10:00", "Сергей", "89035551210")
    name_only = simple_order(10, "content-type-name-only", "A part named only by Content-Type name= (no "
                             "Content-Disposition at all, Outlook Express style) is found.",
                             CLIENT_OE, "210", d10, charset_name="windows-1251",
                             content_type="application/octet-stream", charset=None, disposition=None)

    d11 = banner_order("9", "18.11.2024 15:47:00", "Лебедева Наталья", "+7 926 909-09-09")
    rfc2231 = simple_order(11, "rfc2231-filename", "A non-ASCII file name in RFC 2231 form (filename*=utf-8'') "
                           "is decoded for attachment_name.", MANAGER_TB, "9", d11, charset_name="utf-8",
                           encoding="utf-8", charset="utf-8", filename="заказ №9.txt")

    d14 = payload("214", "18.11.2024 17:38:00", "Морозов Виктор", "+7 (343) 214-14-14",
                  email="morozov@client.example", inn=inn10("665800214"),
                  layouts=("roll-up-214", "sticker-214"),
                  goods=[print_job("Ролл-ап 0,8х2", "3", "Пленка самоклеящаяся (глянец)", "00-00000104",
                                   "0,8", "2", "2", "500.50", "1001,00", resolution="720 dpi",
                                   extra=(("Ламинация", "2", "глянец"),)),
                         print_job("Наклейки", 2, "Пленка Oracal 641", "00-00000077", "1.25", 0.5, 3,
                                   "120,40", "361.2"),
                         service("Монтаж", "1", "1500", "1500.00")])
    strings = simple_order(14, "numbers-as-strings", "Numbers arriving as strings (\"2\", \"500.50\", "
                           "\"1001,00\") become numbers; correct spelling Разрешение; explicit Услуга.",
                           SHOP_PHPMAILER, "214", d14, charset_name="utf-8", encoding="utf-8", charset="utf-8")

    d15 = {"Телефон": "+7 (916) 123-45-67", "КонтактноеЛицо": "Анна"}
    minimal = simple_order(15, "minimal-lead", "A payload with only Телефон and КонтактноеЛицо is a lead; "
                           "every other field is null / empty.", SHOP_PHP_MAIL, "215", d15,
                           charset_name="utf-8", encoding="utf-8", filename="order.json",
                           content_type="application/json", charset=None, cte="8bit")

    d16 = banner_order("216", "18.11.2024 18:52:00", "Гусев Роман", "+7 921 216-16-16", inn="7709745455")
    bad_inn = simple_order(16, "invalid-inn", "An INN with a wrong check digit is kept as given, "
                           "inn_valid=false, and the record is still accepted.",
                           SHOP_PHPMAILER, "216", d16, charset_name="windows-1251")

    d17 = banner_order("217", "18.11.2024 19:29:00", "ИП Павлова Екатерина Сергеевна", "+7 (861) 217-17-17",
                       email="ip.pavlova@client.example", inn=inn12("2310031475"))
    ascii_part = named_part(SHOP_PHP_MAIL, website_json(d17, ascii_only=True).encode("ascii"), "text/plain",
                            "order.txt", charset="utf-8", cte="7bit")
    msg17 = website_mail(SHOP_PHP_MAIL, "ORDER: 217", "order-217@shop.example", 17, [ascii_part],
                         ref="217", html=False)
    inn_12 = accepted(17, "inn12-ascii-json", "A valid 12-digit INN gives inn_valid=true; the JSON is PHP "
                      "json_encode() style (\\uXXXX escapes, \\/ slashes) sent as 7bit.", SHOP_PHP_MAIL,
                      msg17, d17, order_ref="217", attachment="order.txt", charset="utf-8")

    d18 = banner_order("218", "18.11.2024 20:06:00", "Титов Глеб", "+7 495 218-18-18")
    eight_bit = simple_order(18, "8bit-cp1251", "An 8bit (unencoded) cp1251 attachment with declared "
                             "windows-1251 is decoded.", SHOP_PHP_MAIL, "218", d18,
                             charset_name="windows-1251", cte="8bit")

    d20 = payload("220", "18.11.2024 21:20:00", "Соколов Денис Игоревич", "+7 (495) 220-20-20",
                  email="sokolov@client.example", inn=inn10("771522020"),
                  description="Срочно!\nЛюверсы по периметру, \"шаг\" 30 см.",
                  layouts=("facade-220", "rollup-220", "sticker-220"),
                  goods=[print_job("Баннер на фасад 6х3", 2, BANNER, "00-00000021", 6, 3, 1, 5400, 5400,
                                   extra=(("Люверсы", 36, "шаг 50 см"), ("Проклейка", 1, "по периметру"))),
                         print_job("Ролап 0,85х2", 1, "Пленка для ролапа - 1440 dpi", "00-00000145", 0.85, 2,
                                   2, 1800, 3600, resolution="1440 dpi", resolution_key="Разрешеине"),
                         service("Макет", 1, 800, 800),
                         print_job("Наклейки", 3, "Пленка Oracal 641", "00-00000077", 0.5, 0.5, 10, 95, 950),
                         service("Монтаж", 1, 2500, 2500),
                         service("Доставка ", 1, 600, 600)])
    six = simple_order(20, "six-lines", "Six goods lines mixing print jobs and services, in order; "
                       "colon-less subject 'ORDER 220'; a description with a newline and quotes.",
                       SHOP_PHPMAILER, "220", d20, charset_name="windows-1251", subject="ORDER 220")

    broken_doc = banner_order("226", "18.11.2024 22:00:00", "Фомин Юрий", "+7 903 226-26-26")
    broken_json = website_json(broken_doc).encode("cp1251")
    broken = website_mail(SHOP_PHPMAILER, "ORDER: 226", "order-226@shop.example", 26,
                          [named_part(SHOP_PHPMAILER, broken_json[:len(broken_json) * 2 // 3], "text/plain",
                                      "order.txt", charset="windows-1251")], ref="226")

    array_doc = [banner_order("227", "18.11.2024 22:30:00", "Фомин Юрий", "+7 903 226-26-26")]
    array = website_mail(SHOP_PHPMAILER, "ORDER: 227", "order-227@shop.example", 27,
                         [json_part(SHOP_PHPMAILER, array_doc, encoding="utf-8", charset="utf-8",
                                    filename="order.json", content_type="application/json")], ref="227")

    d29 = banner_order("229", "18.11.2024 23:10:00", "Яковлев Степан", "+7 495 229-29-29")
    utf16 = simple_order(29, "utf16le-bom", "A UTF-16LE byte order mark wins over everything else; the part "
                         "is application/octet-stream without charset.", DOTNET_SHOP, "229", d29,
                         charset_name="utf-16le", encoding="utf-16-le", bom=codecs.BOM_UTF16_LE,
                         filename="order.json", content_type="application/octet-stream", charset=None)

    return [
        seed, lead, rfc2047, forwarded_inline(), bom, mislabelled, koi8, utf8, inline, name_only,
        rfc2231, encoded_word_name(), png_before_json(), strings, minimal, bad_inn, inn_12, eight_bit,
        forwarded_as_attachment(), six,
        wrong_subject(21, "reply-question", "Re: question about delivery", CLIENT_OUTLOOK,
                      "A subject without the ORDER keyword is skipped even with a valid JSON attachment."),
        wrong_subject(22, "reorder", "REORDER 5", MANAGER_TB,
                      "ORDER must be a whole word: 'REORDER 5' is skipped."),
        wrong_subject(23, "orders", "ORDERS 5", SHOP_PHPMAILER,
                      "ORDER must be a whole word: 'ORDERS 5' is skipped."),
        wrong_subject(24, "lowercase-order", "order: 5", SHOP_PHP_MAIL,
                      "The keyword is case-sensitive: 'order: 5' is skipped."),
        body_only(),
        rejected(26, "truncated-json", "quarantined", "json", "A named text attachment whose JSON does not "
                 "parse (truncated) is quarantined.", SHOP_PHPMAILER, broken),
        rejected(27, "json-array", "quarantined", "object", "A JSON attachment that is an array, not an "
                 "object, is quarantined.", SHOP_PHPMAILER, array),
        png_only(),
        utf16,
    ]


# --------------------------------------------------------------------------
# Maildir demo inbox
# --------------------------------------------------------------------------

# (sub-folder, file name, case number); read in order new/ then cur/, by name
# (which is also the order of the names alone).  The file in cur/ ...:2, is a
# byte-identical second delivery of case 01 (same Message-ID, same payload).
MAILDIR = [
    ("new", "1732350000.M1P100.mx.example", 1),
    ("new", "1732350060.M2P101.mx.example", 2),
    ("new", "1732350120.M3P102.mx.example", 4),
    ("new", "1732350180.M4P103.mx.example", 21),
    ("cur", "1732350240.M5P104.mx.example:2,S", 20),
    ("cur", "1732350300.M6P105.mx.example:2,", 1),
    ("cur", "1732350360.M7P106.mx.example:2,F", 25),
]


def delivered(case: Case, arrived: int, *, mailbox: str = INBOX.addr_spec, mx: str = "mx.print.example",
              tz: timezone = MSK) -> bytes:
    """What the local MDA stores: the message with its trace headers prepended."""
    nl = "\r\n" if b"\r\n" in case.raw[:200] else "\n"  # keep the message's own line ends
    relay = f"mail.{case.client.domain}"
    trace = [f"Return-Path: <{case.client.address}>", f"Delivered-To: {mailbox}",
             f"Received: from {relay} ({relay} [192.0.2.{case.nn}])",
             f"\tby {mx} (Postfix) with ESMTPS id 4Xs9Q{case.nn:02d}",
             f"\tfor <{mailbox}>; {format_datetime(datetime.fromtimestamp(arrived, tz))}"]
    return (nl.join(trace) + nl).encode() + case.raw


def is_seen(name: str) -> bool:
    """A Maildir file whose flags (after ``:2,``) include S has been seen already."""
    return "S" in name.partition(":2,")[2]


def write_maildir(cases: dict[int, Case]) -> dict:
    root = HERE / "maildir"
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
        (root / sub / ".keep").write_bytes(b"")
    summary = {"fetched": 0, "accepted": 0, "skipped": 0, "quarantined": 0, "duplicates": 0, "records": []}
    seen = set()
    for sub, name, nn in MAILDIR:
        case = cases[nn]
        (root / sub / name).write_bytes(delivered(case, int(name.split(".")[0])))
        if is_seen(name):
            continue  # already seen (S flag): the collector leaves it alone
        summary["fetched"] += 1
        if case.status == "accepted" and case.expect["source"]["message_id"] in seen:
            summary["duplicates"] += 1
            continue
        summary[case.status] += 1
        if case.status == "accepted":
            seen.add(case.expect["source"]["message_id"])
            summary["records"].append({"kind": case.expect["kind"], "order_ref": case.expect["source"]["order_ref"],
                                       "lines": len(case.expect["lines"])})
    return summary


# --------------------------------------------------------------------------
# EMES: an elevator maker's website forms ([[format]] emes-consult / emes-fault)
# --------------------------------------------------------------------------
#
# The shipped collectors.toml maps two Chinese website forms to service requests with
# declarative [[format]] blocks.  These mails exercise that mapping and the charsets
# Chinese form mailers use (GBK / GB2312 / GB18030, UTF-8 with and without BOM), plus one
# windows-1251 attachment.  Output: emes/eml/, emes/consult/ + emes/fault/ (Maildirs of the
# collectors emes-consult and emes-fault), emes-cases.json.

CST = timezone(timedelta(hours=8))
EMES_INBOX = Address("EMES 客服中心", addr_spec="emes@hitachi-elevator.example")
EMES_MX = "mx.hitachi-elevator.example"

EMES_PHPMAILER = Client("日立电梯官网", "noreply@hitachi-elevator.example", CRLF, "phpmailer",
                        (("X-Mailer", "PHPMailer 6.8.1 (https://github.com/PHPMailer/PHPMailer)"),),
                        body_cte="quoted-printable", subject_in_base64=True)
EMES_PHP_MAIL = Client("官网表单", "www@hitachi-elevator.example", LF, "roundcube",
                       (("X-Mailer", "PHP/5.6.40"), ("X-PHP-Originating-Script", "48:form.php")),
                       body_charset="gbk", body_cte="base64")
EMES_DOTNET = Client("日立电梯报修平台", "repair@hitachi-elevator.example", CRLF, "dotnet", body_cte="base64")
EMES_8BIT = Client("官网", "web@hitachi-elevator.example", LF, "roundcube", (("X-Mailer", "PHP/7.4.3"),),
                   body_cte="8bit")

# [format.maps.consult-type] of collectors.toml: 业务 -> sub-type.
CONSULT_TYPES = {"加装电梯咨询": "加装", "别墅电梯咨询": "加装", "更新改造咨询": "加装",
                 "维保服务咨询": "其他", "新梯采购咨询": "新梯", "智能楼宇咨询": "楼宇"}
SALUTATIONS = {"男": "先生", "女": "女士"}
# One mailbox, one collector: the formats' `when` tells the forms apart (业务 is only on the
# consult form, 描述 only on the fault form); the fault reports go to the triage queue.
EMES_COLLECTOR = "emes"
EMES_QUEUES = {"consult": None, "fault": "emes-triage"}
EMES_SUBJECTS = {"consult": "官网咨询", "fault": "故障报修", "join": "加入我们"}


def consult_form(business: str, name: str, gender: str, phone: str | None, email: str, province: str,
                 city: str, district: str, street: str, note: str) -> dict:
    """The consult form in the website's key order; 手机 left out when None."""
    doc = {"业务": business, "姓名": name, "性别": gender, "手机": phone, "邮箱": email, "省": province,
           "市": city, "区": district, "详细地址": street, "说明": note}
    return {key: value for key, value in doc.items() if value is not None}


def fault_form(name: str, gender: str, phone: str, email: str, province: str, city: str, district: str,
               street: str, problem: str, identity: str, elevator) -> dict:
    return {"姓名": name, "性别": gender, "手机": phone, "邮箱": email, "省": province, "市": city,
            "区": district, "详细地址": street, "描述": problem, "身份": identity, "梯号": elevator}


def form_json(doc: dict, style: str) -> str:
    """JSON as the form scripts write it: "pretty" (4 spaces), "compact", or "escaped"
    (every non-ASCII character as \\uXXXX, PHP json_encode() default)."""
    if style == "pretty":
        return json.dumps(doc, ensure_ascii=False, indent=4)
    if style == "compact":
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    if style == "escaped":
        return json.dumps(doc, ensure_ascii=True, separators=(",", ":"))
    raise ValueError(style)


def encode_escaping(text: str, codec: str) -> bytes:
    """`text` in `codec`; a character the codec lacks is written as a JSON \\uXXXX escape
    (valid because every non-ASCII character of the JSON text is inside a string)."""
    out = []
    for ch in text:
        try:
            out.append(ch.encode(codec))
        except UnicodeEncodeError:
            out.append(json.dumps(ch)[1:-1].encode("ascii"))
    return b"".join(out)


def emes_expected(form: str, doc: dict, source: dict) -> dict:
    """The record `mailintake parse --json --collector emes-<form>` must print (`.record`)."""
    def value(key):  # {{key}}: a string verbatim, a number as JSON writes it; missing or "" -> None
        v = doc.get(key)
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            return None
        return (v if isinstance(v, str) else str(v)) or None

    def concat(*keys):  # {{a}}{{b}}...: None only when every key is missing
        parts = [value(k) for k in keys]
        return None if all(p is None for p in parts) else "".join(p or "" for p in parts)

    consult = form == "consult"
    name, gender = value("姓名"), value("性别")
    submitted = value("提交时间")
    contact = None if name is None and gender is None else f"{name or ''} /{SALUTATIONS[gender] if gender else ''}"
    service = {
        "number": None,  # given when stored, not by parse
        "type": "consult" if consult else "pending",
        "sub_type": CONSULT_TYPES[doc["业务"]] if consult else None,
        "source": "日立官网", "owner": "日立官网",
        "contact": contact, "contact_phone": value("手机"), "gender": gender,
        "region": concat("省", "市", "区"), "site": value("详细地址"), "building": value("详细地址"),
        "address": concat("省", "市", "区", "详细地址"),
        "content": value("说明") if consult else None,
        "identity": None if consult else value("身份"),
        "elevator_no": None if consult else value("梯号"),
        "customer_id": None,
    }
    expected = {
        "kind": "service-request", "title": None,
        "date": submitted.replace(" ", "T") if submitted else None,
        "description": service["content"] if consult else value("描述"),
        "inn": None, "inn_valid": False,
        "phone": service["contact_phone"],
        "email": None,  # 邮箱 is deliberately not mapped
        "contact_name": name,  # without the salutation; `contact` has it
        "layout_files": [], "lines": [],
        "source": {**source, "format": f"emes-{form}"},
        "service": service,
    }
    if EMES_QUEUES[form]:
        expected["queue"] = EMES_QUEUES[form]
    return expected


@dataclass
class EmesCase(Case):
    collector: str = ""

    @property
    def file(self) -> str:
        return f"emes/eml/{self.nn:02d}-{self.slug}.eml"

    def manifest(self) -> dict:
        entry = {"file": self.file, "collector": self.collector, "status": self.status, "why": self.why}
        if self.reason_contains:
            entry["reason_contains"] = self.reason_contains
        if self.expect is not None:
            entry["expect"] = self.expect
        return entry


def emes_when(nn: int) -> datetime:
    return datetime(2024, 11, 23, 9, 0, tzinfo=CST) + timedelta(minutes=23 * nn)


def emes_text(form: str, ref: str, doc: dict) -> tuple[str, str]:
    what = {"consult": f"在线咨询（{doc.get('业务')}）", "fault": "故障报修"}.get(form, "在线留言")
    text = (f"您好！\n官网收到一条新的{what}，编号 {ref}。\n表单数据见附件（JSON），请及时处理。\n\n"
            "-- \n本邮件由日立电梯官网自动发送，请勿直接回复。\n")
    html = (f"<html><body><p>您好！</p><p>官网收到一条新的<b>{what}</b>，编号 <b>{ref}</b>。</p>"
            "<p>表单数据见附件（JSON），请及时处理。</p></body></html>\n")
    return text, html


def emes_case(nn: int, slug: str, why: str, client: Client, form: str, ref: str, doc: dict, *,
              codec: str, charset_name: str | None, filename: str, charset: str | None,
              content_type: str = "text/plain", cte: str = "base64", bom: bytes = b"", style: str = "pretty",
              disposition: str | None = "attachment", reason: str | None = None) -> EmesCase:
    """Form mail "ORDER: <ref> 官网咨询|故障报修" with the form's JSON attached: `codec` bytes after
    `bom`, declared `charset` (None: no parameter).  `reason` makes it a quarantined case.
    The form's submission time (提交时间, the site's local time) is a minute before the mail."""
    doc = {**doc, "提交时间": (emes_when(nn) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")}
    data = bom + encode_escaping(form_json(doc, style), codec)
    part = named_part(client, data, content_type, filename, charset=charset, cte=cte, disposition=disposition)
    msg = new_message(client, f"ORDER: {ref} {EMES_SUBJECTS[form]}", f"{form}-{ref}@hitachi-elevator.example",
                      emes_when(nn), to=EMES_INBOX)
    set_body(msg, client, *emes_text(form, ref, doc))
    attach(msg, part)
    collector = EMES_COLLECTOR
    if reason is not None:
        return EmesCase(nn, slug, "quarantined", why, client, msg, reason_contains=reason, collector=collector)
    source = {"message_id": msg["Message-ID"].strip("<>"), "subject": str(msg["Subject"]), "order_ref": ref,
              "attachment_name": filename, "charset": charset_name}
    return EmesCase(nn, slug, "accepted", why, client, msg, expect=emes_expected(form, doc, source),
                    collector=collector)


def build_emes_cases() -> list[EmesCase]:
    return [
        emes_case(1, "consult-new-lift-utf8", "新梯采购咨询 -> sub_type 新梯. application/json consult.json in "
                  "UTF-8 without a charset parameter (detected as utf-8), base64, CRLF.",
                  EMES_PHPMAILER, "consult", "301",
                  consult_form("新梯采购咨询", "张伟", "男", "13812345678", "zhangwei@example.cn", "北京市",
                               "北京市", "朝阳区", "建国路88号SOHO现代城A座",
                               "新建办公楼项目，地上18层、地下2层，需要4台乘客电梯（1000kg，2.5m/s）和1台消防电梯，"
                               "请提供选型建议和报价。"),
                  codec="utf-8", charset_name="utf-8", filename="consult.json", charset=None,
                  content_type="application/json"),
        emes_case(2, "consult-retrofit-gbk", "加装电梯咨询 -> sub_type 加装. form.txt declared charset=gbk, "
                  "GBK bytes, compact JSON, base64, LF; the phone number keeps its spaces.",
                  EMES_PHP_MAIL, "consult", "302",
                  consult_form("加装电梯咨询", "李秀英", "女", "139 0571 2233", "lixiuying@example.cn", "浙江省",
                               "杭州市", "西湖区", "文三路259号3幢2单元",
                               "老小区6层住宅，单元门口有约2.2米宽的空地，想了解加装电梯的方案、工期和补贴政策。"),
                  codec="gbk", charset_name="gbk", filename="form.txt", charset="gbk", style="compact"),
        emes_case(3, "consult-villa-utf8-bom", "别墅电梯咨询 -> sub_type 加装. A UTF-8 BOM and no charset "
                  "parameter gives utf-8; the file name 咨询表单.json is RFC 2231 encoded; quoted-printable, CRLF.",
                  EMES_DOTNET, "consult", "303",
                  consult_form("别墅电梯咨询", "王芳", "女", "+86 137-1234-5678", "wangfang@example.cn", "广东省",
                               "深圳市", "南山区", "香山里花园12栋",
                               "三层别墅（含地下室共4站），井道尺寸约1.5米×1.5米，希望安装家用电梯，预算30万元左右。"),
                  codec="utf-8", charset_name="utf-8", filename="咨询表单.json", charset=None,
                  content_type="application/json", cte="quoted-printable", bom=codecs.BOM_UTF8),
        emes_case(4, "consult-modernisation-gb18030", "更新改造咨询 -> sub_type 加装. Declared charset=gb18030; "
                  "说明 holds 㐀 (U+3400) and 𠀀 (U+20000), four-byte GB18030 sequences that GBK cannot encode; "
                  "base64, LF, 8bit UTF-8 body.",
                  EMES_8BIT, "consult", "304",
                  consult_form("更新改造咨询", "陈建国", "男", "13698765432", "chenjg@example.cn", "上海市",
                               "上海市", "浦东新区", "张杨路1500号㐀园小区",
                               "小区名“㐀园”（㐀 U+3400、𠀀 U+20000 是GBK里没有的字），2005年安装的2台电梯经常困人，"
                               "想咨询整梯更新改造。"),
                  codec="gb18030", charset_name="gb18030", filename="consult.txt", charset="gb18030"),
        emes_case(5, "consult-maintenance-cp1251", "维保服务咨询 -> sub_type 其他. Declared charset=windows-1251: "
                  "Latin names and Russian 说明/详细地址 as cp1251 bytes, every Chinese character (keys, 业务, 性别) "
                  "as a \\uXXXX escape; quoted-printable, CRLF.",
                  EMES_PHPMAILER, "consult", "305",
                  consult_form("维保服务咨询", "Ivanov Sergei", "男", "+7 916 555-03-05", "ivanov@example.ru",
                               "Moscow", "Moscow", "Tverskoy", "ул. Тверская, д. 7, офис 12",
                               "Нужен договор на техническое обслуживание двух лифтов Hitachi в бизнес-центре. "
                               "Прошу перезвонить в рабочее время."),
                  codec="cp1251", charset_name="windows-1251", filename="consult.txt", charset="windows-1251",
                  cte="quoted-printable", style="pretty"),
        emes_case(6, "consult-smart-building-gb2312", "智能楼宇咨询 -> sub_type 楼宇. Declared charset=gb2312 "
                  "(encoding_rs treats it as GBK, so the record says gbk); 8bit, LF, compact JSON.",
                  EMES_PHP_MAIL, "consult", "306",
                  consult_form("智能楼宇咨询", "刘洋", "男", "18611112222", "liuyang@example.cn", "四川省",
                               "成都市", "高新区", "天府大道中段1号",
                               "新建商业综合体，需要电梯群控、门禁联动和楼宇自控系统的整体方案。"),
                  codec="gbk", charset_name="gbk", filename="form.json", charset="gb2312", cte="8bit",
                  style="compact"),
        emes_case(7, "fault-owner-utf8", "Fault report from an owner (身份 业主): type pending, description = "
                  "描述, identity and elevator_no set; declared charset=utf-8, 8bit, CRLF.",
                  EMES_DOTNET, "fault", "401",
                  fault_form("赵磊", "男", "15011223344", "zhaolei@example.cn", "江苏省", "南京市", "鼓楼区",
                             "中山北路30号3号楼", "3号楼2单元电梯运行中突然停在7楼和8楼之间，有人被困约20分钟，"
                             "已由物业救出。", "业主", "3-2-1"),
                  codec="utf-8", charset_name="utf-8", filename="fault.json", charset="utf-8",
                  content_type="application/json", cte="8bit"),
        emes_case(8, "fault-property-gbk-number", "Fault report from property management (身份 物业), "
                  "declared charset=GBK (upper case), quoted-printable, LF; 梯号 is a JSON number (2) and "
                  "becomes the text \"2\".",
                  EMES_PHP_MAIL, "fault", "402",
                  fault_form("孙丽", "女", "021-62345678", "sunli@example.cn", "上海市", "上海市", "徐汇区",
                             "漕溪北路18号上实大厦", "电梯门关闭时反复开启，无法正常运行，已暂停使用并张贴告示。",
                             "物业", 2),
                  codec="gbk", charset_name="gbk", filename="报修单.txt", charset="GBK", cte="quoted-printable"),
        emes_case(9, "fault-bom-beats-label", "A UTF-8 BOM wins over the declared charset=gbk (mislabelled); "
                  "the part has only Content-Type name=form.txt (no Content-Disposition); base64, CRLF.",
                  EMES_PHPMAILER, "fault", "403",
                  fault_form("周杰", "男", "13300001111", "zhoujie@example.cn", "湖北省", "武汉市", "江汉区",
                             "解放大道688号", "电梯运行时有异常响声，轿厢抖动明显。", "业主", "B座2号梯"),
                  codec="utf-8", charset_name="utf-8", filename="form.txt", charset="gbk", bom=codecs.BOM_UTF8,
                  disposition=None, style="compact"),
        emes_case(10, "consult-unmapped-type", "业务 电梯租赁咨询 is not in the consult-type table (and there is "
                  "no map default): quarantined, the reason names the value. UTF-8, 8bit, LF.",
                  EMES_8BIT, "consult", "310",
                  consult_form("电梯租赁咨询", "黄敏", "女", "13577778888", "huangmin@example.cn", "福建省",
                               "厦门市", "思明区", "鹭江道8号", "展会期间需要临时租用施工电梯一台，约三个月。"),
                  codec="utf-8", charset_name=None, filename="consult.json", charset="utf-8", cte="8bit",
                  reason="电梯租赁咨询"),
        emes_case(11, "consult-no-phone", "A consult without 手机: contact-phone is required, so the mail is "
                  "quarantined and the reason names contact-phone. GBK, base64, LF.",
                  EMES_PHP_MAIL, "consult", "311",
                  consult_form("新梯采购咨询", "吴刚", "男", None, "wugang@example.cn", "山东省", "青岛市", "市南区",
                               "香港中路10号", "请通过邮件联系我，不方便接电话。"),
                  codec="gbk", charset_name=None, filename="form.txt", charset="gbk",
                  reason="contact-phone: payload key 手机 is missing"),
        emes_case(12, "other-form-matches-none", "The site's job application form reaches the same mailbox: "
                  "neither 业务 (consult) nor 描述 (fault) is there, so no format fits and the mail is "
                  "quarantined naming both formats tried; never an empty fault report. UTF-8, 8bit, LF.",
                  EMES_8BIT, "join", "312",
                  {"姓名": "郑强", "性别": "男", "手机": "13900001234", "职位": "安装工程师",
                   "简历": "十年电梯安装经验。"},
                  codec="utf-8", charset_name=None, filename="form.json", charset="utf-8", cte="8bit",
                  reason="no format fits the payload; tried emes-consult (业务 is missing), "
                         "emes-fault (描述 is missing)"),
    ]


# The Maildir of the shipped demo collector: (folder, sub-folder, file name, case number).
EMES_MAILDIR = [
    ("inbox", "new", "1732360000.M1P200.mx.example", 1),
    ("inbox", "new", "1732360060.M2P201.mx.example", 2),
    ("inbox", "new", "1732360120.M3P202.mx.example", 3),
    ("inbox", "new", "1732360180.M4P203.mx.example", 4),
    ("inbox", "new", "1732360240.M5P204.mx.example", 5),
    ("inbox", "new", "1732360300.M6P205.mx.example", 6),
    ("inbox", "new", "1732360360.M7P206.mx.example", 7),
    ("inbox", "new", "1732360420.M8P207.mx.example", 8),
    ("inbox", "new", "1732360480.M9P208.mx.example", 9),
]


def write_emes(cases: list[EmesCase]) -> None:
    root = HERE / "emes"
    shutil.rmtree(root, ignore_errors=True)
    (root / "eml").mkdir(parents=True)
    for case in cases:
        raw = case.render()
        if not 1024 <= len(raw) <= 6 * 1024:
            print(f"warning: {case.file} is {len(raw)} bytes (want 1-6 KB)", file=sys.stderr)
        (HERE / case.file).write_bytes(raw)
    for folder in ("inbox",):
        for sub in ("new", "cur", "tmp"):
            (root / folder / sub).mkdir(parents=True)
            (root / folder / sub / ".keep").write_bytes(b"")
    by_nn = {case.nn: case for case in cases}
    for folder, sub, name, nn in EMES_MAILDIR:
        case = by_nn[nn]
        assert case.status == "accepted", case.file
        (root / folder / sub / name).write_bytes(delivered(case, int(name.split(".")[0]),
                                                           mailbox=EMES_INBOX.addr_spec, mx=EMES_MX, tz=CST))
    write_json(HERE / "emes-cases.json", [case.manifest() for case in cases])


# --------------------------------------------------------------------------
# README (generated, so the table of cases never drifts from cases.json)
# --------------------------------------------------------------------------

README_INTRO = """\
# Sample mail for mailintake

Generated by `generate.py` with CPython's standard `email` package - do not edit
the files by hand; change the script and run, from the repository root:

    python3 samples/generate.py   # rewrites eml/, cases.json, maildir/, maildir.expected.json, emes/,
                                  # emes-cases.json, README.md
    python3 samples/verify.py     # re-reads every file with Python's parser and checks the manifest

Output is byte-stable (fixed dates, Message-IDs and MIME boundaries).

| path | what |
|---|---|
| `eml/NN-name.eml` | one message per decoding rule (below) |
| `cases.json` | per file: `status` (`accepted` / `skipped` / `quarantined`), `why`, `reason_contains` (a word the reason must contain) and, for accepted mail, `expect` - the full decoded record, to be matched as a subset (numbers compare as numbers, lists element-wise in full length) |
| `maildir/` | a Maildir inbox for the demo run: `new/`, `cur/` (`:2,`, `:2,S`, `:2,F`), `tmp/`; `.keep` files are ignored |
| `maildir.expected.json` | what one run over `maildir/` reports; `records` in reading order (new/ then cur/, each by file name) |
| `emes/eml/NN-name.eml` | the EMES service-request forms ([below](#emes-service-requests)) |
| `emes-cases.json` | per file: `collector` (`emes`, whose `formats` apply), `status`, `why`, `reason_contains` and, for accepted mail, `expect` - the full `.record` of `mailintake parse --json --collector NAME FILE` (`source.format` says which form matched) |
| `emes/inbox/` | the Maildir of the shipped collector `emes`: the six accepted consults and the three fault reports, all in `new/` |
| `verify.py` | independent reference decoder used to check all of the above |

Notes on choices the rules leave open:

* `source.message_id` / `source.subject` are the received (outer) message's, also for
  a forward-as-attachment (19); `attachment_name` is the inner file's name.
* The Maildir holds a byte-identical second copy of case 01 in `cur/` (same
  Message-ID, same payload), so it is a duplicate however duplicates are keyed.
  `fetched` = accepted + skipped + quarantined + duplicates.
* Case 29 (UTF-16LE with BOM) is an addition to the original list: it exercises the
  "BOM first" rule where UTF-8 detection would give a different answer.

## Cases

| # | file | status | charset / reason | rule |
|---|---|---|---|---|
"""


README_EMES = """
## EMES service requests

The `[[format]]` blocks `emes-consult` and `emes-fault` of `collectors.toml` map an
elevator maker's website forms (Chinese JSON keys) to service requests; the subject
keyword is the default `ORDER` (`ORDER: 301 官网咨询`, `ORDER: 401 故障报修`). Both forms
arrive in one mailbox, read by one collector `emes` (`formats = ["emes-consult",
"emes-fault"]`): a payload with 业务 is a consult (queue `emes-consult`), one with 描述 a fault
report (the format's `queue = "emes-triage"`); one with neither is quarantined (case 12).

* Consult form: 业务 (-> `sub_type` by the consult-type table), 姓名, 性别, 手机, 邮箱, 省,
  市, 区, 详细地址, 说明 (-> `content`, and `description` through the fallback). 邮箱 is not
  mapped, so `email` stays null.
* Fault form: 姓名, 性别, 手机, 邮箱, 省, 市, 区, 详细地址, 描述 (-> `description`),
  身份 (-> `identity`), 梯号 (-> `elevator_no`); `type` is `pending` (triage queue).
* Both forms send 提交时间 (the submission time, site local time): the record's `date`.
* `contact` = 姓名 + ` /` + 先生|女士 (`contact_name` = 姓名 alone), `region` = 省市区, `address` = 省市区 + 详细地址,
  `phone` = `contact_phone` = 手机 verbatim; `service.number` is null (given when stored).
* Charsets are reported by their encoding_rs names: a declared `gb2312` or `gbk` gives
  `gbk` (its decoder is the GB18030 one, as WHATWG specifies), `gb18030` gives `gb18030`,
  a UTF-8 BOM gives `utf-8` whatever is declared.
* Case 05 is a windows-1251 attachment: the text is cp1251 Cyrillic and ASCII, every
  Chinese character (the keys, 业务, 性别) is a `\\uXXXX` JSON escape.

| # | file | collector | status | charset / reason | rule |
|---|---|---|---|---|---|
"""


def write_readme(cases: list[Case], emes: list[EmesCase]) -> None:
    rows = []
    for case in cases:
        detail = case.expect["source"]["charset"] if case.expect else f'"{case.reason_contains}"'
        rows.append(f"| {case.nn:02d} | `{case.file}` | {case.status} | {detail} | {case.why} |")
    emes_rows = []
    for case in emes:
        detail = case.expect["source"]["charset"] if case.expect else f'"{case.reason_contains}"'
        emes_rows.append(f"| {case.nn:02d} | `{case.file}` | {case.collector} | {case.status} | {detail} "
                         f"| {case.why} |")
    maildir = ["", "Maildirs (all messages in `new/`, trace headers prepended, `.keep` files in "
               "`new/`, `cur/`, `tmp/`):", ""]
    maildir += [f"* `emes/{folder}/{sub}/{name}` - case {nn:02d}" for folder, sub, name, nn in EMES_MAILDIR]
    text = README_INTRO + "\n".join(rows) + "\n" + README_EMES + "\n".join(emes_rows) + "\n" + "\n".join(maildir)
    (HERE / "README.md").write_text(text + "\n", encoding="utf-8")


# --------------------------------------------------------------------------

def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    cases = build_cases()
    eml_dir = HERE / "eml"
    shutil.rmtree(eml_dir, ignore_errors=True)
    eml_dir.mkdir()
    for case in cases:
        raw = case.render()
        if not 1024 <= len(raw) <= 6 * 1024:
            print(f"warning: {case.file} is {len(raw)} bytes (want 1-6 KB)", file=sys.stderr)
        (HERE / case.file).write_bytes(raw)
    write_json(HERE / "cases.json", [case.manifest() for case in cases])
    write_json(HERE / "maildir.expected.json", write_maildir({case.nn: case for case in cases}))
    emes = build_emes_cases()
    write_emes(emes)
    write_readme(cases, emes)
    print(f"wrote {len(cases)} cases, cases.json, maildir/, maildir.expected.json, {len(emes)} EMES cases "
          f"(emes/, emes-cases.json) and README.md under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
