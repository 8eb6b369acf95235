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

The EMES service-request mails (emes-cases.json) go through the same subject,
attachment and charset steps and then through a small re-implementation of the
`emes-consult` / `emes-fault` [[format]] templates (written out below and
compared with collectors.toml), chosen by their `when` as the one collector `emes`
does; its Maildir (emes/inbox) must hold exactly the accepted mails, with trace
headers prepended.

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

try:
    import tomllib  # Python 3.11+; without it the collectors.toml comparison is skipped
except ImportError:
    tomllib = None

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # importing generate must not leave __pycache__ in samples/
sys.path.insert(0, str(HERE))
from generate import expected_record  # noqa: E402  (payload -> record mapping; checked by hand below)

SUBJECT = re.compile(r"\bORDER\b[ \t]*:?[ \t]*(\S*)")
WHATWG = {"windows-1251": "windows-1251", "cp1251": "windows-1251", "x-cp1251": "windows-1251",
          "utf-8": "utf-8", "utf8": "utf-8", "koi8-r": "koi8-r", "koi8": "koi8-r",
          "gbk": "gbk", "gb2312": "gbk", "x-gbk": "gbk", "chinese": "gbk", "csgb2312": "gbk",
          "gb_2312": "gbk", "gb_2312-80": "gbk", "iso-ir-58": "gbk", "csiso58gb231280": "gbk",
          "gb18030": "gb18030"}
# WHATWG's (and so encoding_rs's) GBK decoder is the GB18030 decoder: four-byte sequences
# decode under a gbk / gb2312 label too, only the reported name differs.
PYTHON_CODEC = {"windows-1251": "cp1251", "utf-8": "utf-8", "koi8-r": "koi8_r", "gbk": "gb18030",
                "gb18030": "gb18030"}
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


def find_payload(raw: bytes):
    """-> ("accepted", (doc, source)) | ("skipped" | "quarantined", reason)"""
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
        return "accepted", (doc, source)
    return "quarantined", problem


def decode(raw: bytes):
    """-> ("accepted", record) | ("skipped" | "quarantined", reason)"""
    status, found = find_payload(raw)
    return (status, expected_record(*found)) if status == "accepted" else (status, found)


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


# --------------------------------------------------------------------------
# EMES service requests: the [[format]] blocks emes-consult / emes-fault
# --------------------------------------------------------------------------

# The two formats as collectors.toml writes them (check_emes_config compares), rendered here
# by a template reader of their own rather than by generate.py's mapping code.
EMES_COMMON = {"date": "{{提交时间}}", "source": "日立官网", "owner": "日立官网",
               "contact": "{{姓名}} /{{性别|salutation}}", "contact-name": "{{姓名}}",
               "gender": "{{性别}}", "contact-phone": "{{手机}}", "region": "{{省}}{{市}}{{区}}",
               "site": "{{详细地址}}", "building": "{{详细地址}}", "address": "{{省}}{{市}}{{区}}{{详细地址}}"}
EMES_FORMATS = {
    "emes-consult": {
        "number-prefix": "ZX", "required": ["contact-phone", "sub-type"], "when": {"业务": "*"},
        "fields": {"type": "consult", "sub-type": "{{业务|map:consult-type}}", **EMES_COMMON,
                   "content": "{{说明}}", "branch": "{{省|map:branch}}"},
        "maps": {"consult-type": {"加装电梯咨询": "加装", "别墅电梯咨询": "加装", "更新改造咨询": "加装",
                                  "维保服务咨询": "其他", "新梯采购咨询": "新梯", "智能楼宇咨询": "楼宇"},
                 "branch": {"北京市": "北京分公司", "上海市": "上海分公司", "广东省": "广州分公司",
                            "浙江省": "杭州分公司"}},
        "map-defaults": {"branch": "总部"},
    },
    "emes-fault": {
        "number-prefix": "BZ", "required": ["contact-phone"], "when": {"描述": "*"},
        "queue": "emes-triage",
        "fields": {"type": "pending", **EMES_COMMON, "description": "{{描述}}", "identity": "{{身份}}",
                   "elevator-no": "{{梯号}}"},
    },
}
# The one collector reading both forms: its formats in order, and its Maildir.
EMES_COLLECTOR = {"name": "emes", "queue": "emes-consult", "formats": ["emes-consult", "emes-fault"],
                  "path": "samples/emes/inbox"}
SERVICE_KEYS = ["type", "sub-type", "source", "owner", "contact", "contact-phone", "gender", "region", "site",
                "building", "address", "content", "identity", "elevator-no", "customer-id"]
EXPRESSION = re.compile(r"\{\{([^|}]*)((?:\|[^}]*)?)\}\}")


def render(template: str, doc: dict, maps: dict, defaults: dict | None = None) -> str | None:
    """A field template against the form; None when it has expressions and all came out empty.
    Raises ValueError naming an unmapped value."""
    out, expressions, filled, pos = [], 0, 0, 0
    for m in EXPRESSION.finditer(template):
        out.append(template[pos:m.start()])
        pos = m.end()
        expressions += 1
        key = m.group(1).strip()
        value = doc.get(key)
        text = value if isinstance(value, str) else (
            json.dumps(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None)
        for name in filter(None, m.group(2).split("|")):
            if text is None:
                break
            if name == "salutation":
                text = {"男": "先生", "女": "女士"}.get(text.strip(), text.strip().lower())
            elif name.startswith("map:"):
                table = {**({None: defaults[name[4:]]} if defaults and name[4:] in defaults else {}),
                         **maps[name[4:]]}
                if text.strip() not in table and None in table:
                    text = table[None]
                    continue
                if text.strip() not in table:
                    raise ValueError(f"value `{text}` of `{key}` is not in the value table `{name[4:]}`")
                text = table[text.strip()]
            else:
                raise AssertionError(f"filter {name} not used by the EMES formats")
        if text:
            filled += 1
            out.append(text)
    out.append(template[pos:])
    return "".join(out) if expressions == 0 or filled else None


def decode_emes(raw: bytes):
    """-> ("accepted", record) | ("skipped" | "quarantined", reason), by the first of the
    collector's formats whose `when` holds (here only "*" = the key is there)."""
    status, found = find_payload(raw)
    if status != "accepted":
        return status, found
    doc, source = found
    fitting = [n for n in EMES_COLLECTOR["formats"]
               if all(doc.get(k) is not None for k in EMES_FORMATS[n]["when"])]
    if not fitting:
        tried = ", ".join(f"{n} ({next(iter(EMES_FORMATS[n]['when']))} is missing)"
                          for n in EMES_COLLECTOR["formats"])
        return "quarantined", f"no format fits the payload; tried {tried}"
    name = fitting[0]
    form = EMES_FORMATS[name]
    values = {}
    for target, template in form["fields"].items():
        try:
            values[target] = render(template, doc, form.get("maps", {}), form.get("map-defaults"))
        except ValueError as e:
            return "quarantined", f"field `{target}`: {e}"
    for target in form["required"]:
        if values.get(target) is None:
            keys = ", ".join(m.group(1).strip() for m in EXPRESSION.finditer(form["fields"][target]))
            return "quarantined", f"{target}: payload key {keys} is missing"
    service = {"number": None, **{key.replace("-", "_"): values.get(key) for key in SERVICE_KEYS}}
    service["type"] = service["type"] or "consult"
    date = values.get("date")
    record = {
        "kind": "service-request", "title": values.get("title"),
        "date": date.replace(" ", "T") if date else None,
        "description": values.get("description") or values.get("content"),
        "inn": None, "inn_valid": False,
        "phone": values.get("phone") or values.get("contact-phone"),
        "email": values.get("email"),
        "contact_name": values.get("contact-name") or values.get("contact"),
        "layout_files": [], "lines": [], "source": {**source, "format": name}, "service": service,
    }
    if form.get("queue"):
        record["queue"] = form["queue"]
    return "accepted", record


def check_emes_config() -> list[str]:
    """The formats and Maildir paths above are the ones collectors.toml ships."""
    if tomllib is None:
        print("note: no tomllib (Python < 3.11), collectors.toml not compared", file=sys.stderr)
        return []
    config = tomllib.loads((HERE.parent / "collectors.toml").read_text(encoding="utf-8"))
    problems = []
    formats = {f["name"]: f for f in config.get("format", [])}
    for name, want in EMES_FORMATS.items():
        have = formats.get(name)
        if have is None:
            problems.append(f"collectors.toml: no [[format]] {name}")
            continue
        got = {"number-prefix": have.get("number-prefix"), "required": have.get("required"),
               "when": have.get("when"), "fields": have.get("fields")}
        if "queue" in want or "queue" in have:
            got["queue"] = have.get("queue")
        if "maps" in want or "maps" in have:
            got["maps"] = have.get("maps")
        if have.get("map-defaults"):
            got["map-defaults"] = have["map-defaults"]
        if got != want:
            problems.append(f"collectors.toml: [[format]] {name} differs from verify.py: {got}")
    collectors = {c["name"]: c for c in config.get("collector", [])}
    want = EMES_COLLECTOR
    have = collectors.get(want["name"], {})
    path = want["path"].replace("samples/", "samples/demo-state/", 1)
    if (have.get("formats") != want["formats"] or have.get("queue") != want["queue"]
            or have.get("maildir", {}).get("path") != path):
        problems.append(f"collectors.toml: collector {want['name']} should read {path} with formats "
                        f"{want['formats']} into {want['queue']}")
    return problems


def check_emes_hand(cases: list[dict]) -> list[str]:
    """Two expectations written out by hand, so the shared mapping is checked too."""
    by_file = {Path(c["file"]).name: c.get("expect") for c in cases}
    consult = {
        "kind": "service-request", "title": None, "date": "2024-11-23T09:22:00", "inn": None,
        "inn_valid": False,
        "description": "新建办公楼项目，地上18层、地下2层，需要4台乘客电梯（1000kg，2.5m/s）和1台消防电梯，"
                       "请提供选型建议和报价。",
        "phone": "13812345678", "email": None, "contact_name": "张伟", "layout_files": [], "lines": [],
        "source": {"message_id": "consult-301@hitachi-elevator.example", "subject": "ORDER: 301 官网咨询",
                   "order_ref": "301", "attachment_name": "consult.json", "charset": "utf-8",
                   "format": "emes-consult"},
        "service": {"number": None, "type": "consult", "sub_type": "新梯", "source": "日立官网",
                    "owner": "日立官网", "contact": "张伟 /先生", "contact_phone": "13812345678", "gender": "男",
                    "region": "北京市北京市朝阳区", "site": "建国路88号SOHO现代城A座",
                    "building": "建国路88号SOHO现代城A座", "address": "北京市北京市朝阳区建国路88号SOHO现代城A座",
                    "content": "新建办公楼项目，地上18层、地下2层，需要4台乘客电梯（1000kg，2.5m/s）和1台消防电梯，"
                               "请提供选型建议和报价。",
                    "identity": None, "elevator_no": None, "customer_id": None},
    }
    fault = {
        "kind": "service-request", "description": "电梯门关闭时反复开启，无法正常运行，已暂停使用并张贴告示。",
        "phone": "021-62345678", "email": None, "contact_name": "孙丽", "queue": "emes-triage",
        "date": "2024-11-23T12:03:00",
        "source": {"message_id": "fault-402@hitachi-elevator.example", "subject": "ORDER: 402 故障报修",
                   "order_ref": "402", "attachment_name": "报修单.txt", "charset": "gbk",
                   "format": "emes-fault"},
        "service": {"number": None, "type": "pending", "sub_type": None, "source": "日立官网",
                    "owner": "日立官网", "contact": "孙丽 /女士", "contact_phone": "021-62345678", "gender": "女",
                    "region": "上海市上海市徐汇区", "site": "漕溪北路18号上实大厦", "building": "漕溪北路18号上实大厦",
                    "address": "上海市上海市徐汇区漕溪北路18号上实大厦", "content": None, "identity": "物业",
                    "elevator_no": "2", "customer_id": None},
    }
    return ([f"emes 01{m}" for m in subset(consult, by_file.get("01-consult-new-lift-utf8.eml"))]
            + [f"emes 08{m}" for m in subset(fault, by_file.get("08-fault-property-gbk-number.eml"))])


def check_emes_coverage(cases: list[dict]) -> list[str]:
    """The charsets, transfer encodings, line ends and form values the brief asks for are all there."""
    problems = []
    accepted = [c for c in cases if c["status"] == "accepted"]
    charsets = {c["expect"]["source"]["charset"] for c in accepted}
    for want in ("utf-8", "gbk", "gb18030", "windows-1251"):
        if want not in charsets:
            problems.append(f"emes: no accepted case in {want}")
    consults = [c for c in accepted if c["expect"]["source"]["format"] == "emes-consult"]
    faults = [c for c in accepted if c["expect"]["source"]["format"] == "emes-fault"]
    sub_types = sorted(c["expect"]["service"]["sub_type"] for c in consults)
    if len(consults) != 6 or sorted(EMES_FORMATS["emes-consult"]["maps"]["consult-type"].values()) != sub_types:
        problems.append(f"emes: want one accepted consult per 业务, got sub types {sub_types}")
    if len(faults) != 3 or {c["expect"]["service"]["identity"] for c in faults} != {"业主", "物业"}:
        problems.append("emes: want three fault reports from both 业主 and 物业")
    ctes, ends = set(), set()
    for c in cases:
        raw = (HERE / c["file"]).read_bytes()
        ctes |= {m.lower() for m in re.findall(rb"Content-Transfer-Encoding: (\S+)", raw)}
        ends.add("crlf" if b"\r\n" in raw else "lf")
        if c["status"] == "accepted" and c["expect"]["source"]["charset"] == "gb18030":
            try:
                c["expect"]["description"].encode("gbk")
                problems.append(f"{c['file']}: 说明 is GBK-encodable, so GB18030 does not matter")
            except UnicodeEncodeError:
                pass
    if not {b"base64", b"quoted-printable", b"8bit"} <= ctes or ends != {"crlf", "lf"}:
        problems.append(f"emes: transfer encodings {sorted(ctes)}, line ends {sorted(ends)}")
    return problems


def check_emes_maildirs(cases: list[dict]) -> list[str]:
    """Each Maildir holds exactly its collector's accepted mails: trace headers + the .eml bytes."""
    problems = []
    emls = {c["expect"]["source"]["message_id"]: c for c in cases if c["status"] == "accepted"}
    for collector, path in [(EMES_COLLECTOR["name"], EMES_COLLECTOR["path"])]:
        root = HERE.parent / path
        for sub in ("new", "cur", "tmp"):
            if not (root / sub / ".keep").is_file():
                problems.append(f"{path}/{sub}: missing .keep")
        found = []
        for sub in ("new", "cur"):
            for file in sorted((root / sub).iterdir()):
                if file.name.startswith("."):
                    continue
                raw = file.read_bytes()
                name = f"{path}/{sub}/{file.name}"
                problems += check_file(raw, name)
                status, record = decode_emes(raw)
                case = emls.get(record["source"]["message_id"]) if status == "accepted" else None
                if case is None or case["collector"] != collector:
                    problems.append(f"{name}: {status}, not one of {collector}'s accepted cases")
                    continue
                eml = (HERE / case["file"]).read_bytes()
                if not raw.endswith(eml) or not raw.startswith(b"Return-Path: <"):
                    problems.append(f"{name}: not trace headers + {case['file']}")
                problems += [f"{name}: {m}" for m in subset(case["expect"], record)]
                found.append(case["file"])
        want = sorted(c["file"] for c in emls.values() if c["collector"] == collector)
        if sorted(found) != want:
            problems.append(f"{path}: holds {sorted(found)}, want {want}")
    return problems


def check_emes() -> tuple[int, list[str]]:
    cases = json.loads((HERE / "emes-cases.json").read_text(encoding="utf-8"))
    problems = check_emes_config() + check_emes_hand(cases) + check_emes_coverage(cases)
    for case in cases:
        raw = (HERE / case["file"]).read_bytes()
        problems += check_file(raw, case["file"])
        status, result = decode_emes(raw)
        if status != case["status"]:
            problems.append(f"{case['file']}: status {status} ({result}), manifest says {case['status']}")
        elif status == "accepted":
            problems += [f"{case['file']}: {m}" for m in subset(case["expect"], result)]
            if set(case["expect"]) != set(result) or set(case["expect"]["service"]) != set(result["service"]):
                problems.append(f"{case['file']}: expect is not the full record")
        elif case["reason_contains"] not in result:
            problems.append(f"{case['file']}: reason {result!r} lacks {case['reason_contains']!r}")
    eml = sorted(p.name for p in (HERE / "emes" / "eml").iterdir())
    if eml != sorted(Path(c["file"]).name for c in cases):
        problems.append("emes/eml/ and emes-cases.json list different files")
    return len(cases), problems + check_emes_maildirs(cases)


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
    emes_count, emes_problems = check_emes()
    problems += emes_problems
    for line in problems:
        print(line)
    print(f"{len(cases)} cases, maildir, {emes_count} EMES cases, emes maildirs: {'FAILED' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
