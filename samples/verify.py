#!/usr/bin/env python3
"""Check the generated samples against an independent reading of the decoding rules.

    python3 samples/verify.py

For every entry of cases.json the .eml file is parsed back with CPython's own
e-mail parser and decoded by the small reference decoder below (subject rule,
attachment search, charset order, JSON -> record).  The result must equal the
manifest: same status, the reason keyword for rejected mail, and for accepted
mail the record must match `expect` as a subset (here it is the full record).
The Maildir summary is recomputed from the files on disk the same way.  Also
checks file sizes (1-6 KB) and that each file uses one kind of line end.

Standard library only; exits non-zero on the first list of mismatches.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from email import message_from_bytes
from email.policy import default
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # importing generate must not leave __pycache__ in samples/
sys.path.insert(0, str(HERE))
from generate import expected_record  # noqa: E402  (payload -> record mapping; checked by hand below)

SUBJECT = re.compile(r"\bORDER\b[ \t]*:?[ \t]*(\S*)")
WHATWG = {"windows-1251": "windows-1251", "cp1251": "windows-1251", "x-cp1251": "windows-1251",
          "utf-8": "utf-8", "utf8": "utf-8", "koi8-r": "koi8-r", "koi8": "koi8-r"}
PYTHON_CODEC = {"windows-1251": "cp1251", "utf-8": "utf-8", "koi8-r": "koi8_r"}
BOMS = [(codecs.BOM_UTF8, "utf-8", "utf-8"), (codecs.BOM_UTF16_LE, "utf-16le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16be", "utf-16-be")]


def detect(data: bytes, declared: str | None) -> tuple[str, str]:
    """(charset name for the record, decoded text) by the rule: BOM, declared-if-valid, UTF-8, windows-1251."""
    for bom, name, codec in BOMS:
        if data.startswith(bom):
            return name, data[len(bom):].decode(codec)
    candidates = []
    if declared and declared.lower() in WHATWG:
        candidates.append(WHATWG[declared.lower()])
    candidates += ["utf-8", "windows-1251"]
    for name in candidates:
        try:
            return name, data.decode(PYTHON_CODEC[name])
        except UnicodeDecodeError:
            continue
    raise AssertionError("windows-1251 never fails here")


def decode(raw: bytes):
    """-> ("accepted", record) | ("skipped" | "quarantined", reason)"""
    msg = message_from_bytes(raw, policy=default)
    subject = str(msg.get("Subject", ""))
    match = SUBJECT.search(subject)
    if not match:
        return "skipped", "subject does not carry ORDER"
    problem = "no json attachment"
    for part in msg.walk():
        name = part.get_filename()
        if part.is_multipart() or name is None or part.get_content_maintype() in ("image", "message"):
            continue
        charset, text = detect(part.get_payload(decode=True), part.get_param("charset"))
        try:
            doc = json.loads(text)
        except ValueError:
            problem = "attachment json does not parse"
            continue
        if not isinstance(doc, dict):
            problem = "attachment json is not an object"
            continue
        source = {"message_id": msg["Message-ID"].strip().strip("<>"), "subject": subject,
                  "order_ref": match.group(1) or None, "attachment_name": name, "charset": charset}
        return "accepted", expected_record(doc, source)
    return "quarantined", problem


def subset(expect, actual, path="") -> list[str]:
    if isinstance(expect, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected object, got {actual!r}"]
        return [m for k, v in expect.items() for m in subset(v, actual.get(k), f"{path}.{k}")]
    if isinstance(expect, list):
        if not isinstance(actual, list) or len(actual) != len(expect):
            return [f"{path}: expected {len(expect)} items, got {actual!r}"]
        return [m for i, (e, a) in enumerate(zip(expect, actual)) for m in subset(e, a, f"{path}[{i}]")]
    same = expect == actual and (isinstance(expect, bool) == isinstance(actual, bool))
    return [] if same else [f"{path}: expected {expect!r}, got {actual!r}"]


def check_seed(cases: list[dict]) -> list[str]:
    """The one expectation written out by hand, so the shared mapping is checked too."""
    seed = cases[0]["expect"]
    hand = {
        "kind": "order", "title": "Заказ №123 от 01.06.2019 бла бла бла", "date": "2019-05-29T15:15:00",
        "inn": "7709745454", "inn_valid": True, "phone": "+7 925 642 42-90", "email": "adwcom@gmail.com",
        "contact_name": "Прилепский Алексей Анатольевич",
        "layout_files": ["https://demo.solvent.ru/cabinet/print/2019/DAC_noyXsAEV-Cx.jpg"] * 2,
        "lines": [
            {"item": "Ролап 123 22 22", "machine_code": "1", "resolution": "360 dpi",
             "material": "Баннеры - Эконом (340 гр./м2) - 360 dpi", "material_code": "00-00000021",
             "width": 2, "height": 2, "quantity": 2, "price": 500, "amount": 1000, "is_service": False,
             "extra_work": [{"kind": "Люверсы", "quantity": 2, "description": "шаг 30см"},
                            {"kind": "Проклейка", "quantity": 2, "description": "проклейка да"},
                            {"kind": "Карманы", "quantity": 2, "description": "везде"}]},
            {"item": "Доставка ", "machine_code": None, "resolution": None, "material": None,
             "material_code": None, "width": None, "height": None, "quantity": 2, "price": 500,
             "amount": 1000, "is_service": True, "extra_work": []}],
        "source": {"message_id": "order-123@shop.example", "subject": "ORDER: 123", "order_ref": "123",
                   "attachment_name": "order.txt", "charset": "windows-1251"},
    }
    return [f"seed{m}" for m in subset(hand, seed)]


def check_file(raw: bytes, name: str) -> list[str]:
    problems = []
    if not 1024 <= len(raw) <= 6 * 1024:
        problems.append(f"{name}: {len(raw)} bytes, want 1-6 KB")
    crlf, lf = raw.count(b"\r\n"), raw.count(b"\n")
    if crlf not in (0, lf):
        problems.append(f"{name}: mixed line ends ({crlf} CRLF of {lf})")
    return problems


def check_maildir() -> list[str]:
    expected = json.loads((HERE / "maildir.expected.json").read_text(encoding="utf-8"))
    got = {"fetched": 0, "accepted": 0, "skipped": 0, "quarantined": 0, "duplicates": 0, "records": []}
    seen = set()
    for sub in ("new", "cur"):
        for path in sorted((HERE / "maildir" / sub).iterdir()):
            if path.name.startswith(".") or "S" in path.name.partition(":2,")[2]:
                continue
            got["fetched"] += 1
            status, record = decode(path.read_bytes())
            if status == "accepted":
                if record["source"]["message_id"] in seen:
                    got["duplicates"] += 1
                    continue
                seen.add(record["source"]["message_id"])
                got["records"].append({"kind": record["kind"], "order_ref": record["source"]["order_ref"],
                                       "lines": len(record["lines"])})
            got[status] += 1
    return [] if got == expected else [f"maildir: expected {expected}, got {got}"]


def main() -> int:
    cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
    problems = check_seed(cases) + check_maildir()
    for case in cases:
        raw = (HERE / case["file"]).read_bytes()
        problems += check_file(raw, case["file"])
        status, result = decode(raw)
        if status != case["status"]:
            problems.append(f"{case['file']}: status {status} ({result}), manifest says {case['status']}")
        elif status == "accepted":
            problems += [f"{case['file']}: {m}" for m in subset(case["expect"], result)]
        elif case["reason_contains"] not in result:
            problems.append(f"{case['file']}: reason {result!r} lacks {case['reason_contains']!r}")
    eml = sorted(p.name for p in (HERE / "eml").iterdir())
    if eml != sorted(Path(c["file"]).name for c in cases):
        problems.append("eml/ and cases.json list different files")
    for line in problems:
        print(line)
    print(f"{len(cases)} cases, maildir: {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
