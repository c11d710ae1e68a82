"""Read uploaded registry spreadsheets (CSV or XLSX) into rows of canonical fields; write import reports.

A file-level problem (not a spreadsheet, wrong encoding, too big, no usable header) raises
`SpreadsheetError` before any row is read; a problem of one row (a formula, a number Excel mangled,
a row wider than its header) travels with that row as `SheetRow.problems` so its neighbours still
import. Line numbers are those a person sees in the spreadsheet: the header is line 1 unless title
rows stand above it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO, Any

from sunflower.common.errors import ValidationFailed

MB = 1024 * 1024
CSV_FIELD_LIMIT = 1 * MB  # characters in one cell; the csv module's default (128 KiB) is too small
HEADER_SEARCH_ROWS = 10  # title rows a sheet may have above its header (e.g. "2024年人口登记表")
_MAX_SHOWN_COLUMNS = 12


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * MB
    max_rows: int = 1_000_000
    # An XLSX is a zip: refuse one that would expand to more than this (a zip bomb) ...
    max_uncompressed_bytes: int = 500 * MB
    # ... or whose parts expand more than this many times its own size (real sheets: 5-10x),
    # once they are big enough for that to matter.
    max_expansion: int = 20
    expansion_floor_bytes: int = 10 * MB


class SpreadsheetError(ValidationFailed):
    """The file as a whole cannot be imported; the message says why, for the person who uploaded it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


# --- columns -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    name: str  # canonical field name (see drafts.py)
    chinese: str  # the label shown to people, with the English name
    aliases: tuple[str, ...] = ()


def _address(prefix: str, chinese_prefix: str, extra: Mapping[str, tuple[str, ...]] = {}) -> list[FieldSpec]:
    parts = {
        "district": ("区县", "区", "所在区", "所属区县", "district"),
        "subdistrict": ("街道", "乡镇", "街道办事处", "所属街道", "subdistrict", "street_office", "township"),
        "community_id": ("社区编码", "社区代码", "社区编号", "community_id", "community_code"),
        "community": ("社区", "社区名称", "村居", "所属社区", "community"),
        "building": ("楼栋", "楼号", "栋", "幢", "楼栋号", "building"),
        "unit": ("单元", "单元号", "unit"),
        "room": ("房号", "房间号", "室", "门牌号", "户室号", "room"),
        "detail": ("详细地址", "地址", "住址", "address", "detail"),
    }
    specs = []
    for part, words in parts.items():
        chinese_words = [w for w in words if not w.isascii()]
        english_words = [w for w in words if w.isascii()]
        aliases = [f"{chinese_prefix}{w}" for w in chinese_words]
        aliases += [f"{prefix}_{w}" for w in english_words] + [f"{prefix}{w}" for w in english_words]
        aliases += list(extra.get(part, ()))
        specs.append(FieldSpec(f"{prefix}_{part}", f"{chinese_prefix}{chinese_words[0]}", tuple(aliases)))
    return specs


PERSON_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("name", "姓名", ("名字", "姓名全称", "name", "full_name", "person_name")),
    FieldSpec(
        "id_number", "身份证号",
        ("身份证号码", "公民身份号码", "公民身份证号", "身份证", "身份证件号码", "居民身份证号", "证件号码", "证件号",
         "id_number", "id_no", "id_card", "id_card_number", "identity_number", "national_id"),
    ),
    FieldSpec("sex", "性别", ("sex", "gender")),
    FieldSpec("birth_date", "出生日期", ("出生年月日", "出生年月", "生日", "birth_date", "date_of_birth", "birthday", "dob")),
    FieldSpec("phone", "联系电话", ("电话", "手机", "手机号", "手机号码", "电话号码", "联系方式", "phone", "mobile", "telephone", "tel")),
    FieldSpec("status", "人口状态", ("状态", "户籍状态", "人员状态", "status")),
    FieldSpec("household_no", "户号", ("户编号", "household_no", "household_number", "household")),
    FieldSpec("relationship", "与户主关系", ("关系", "与户主的关系", "relationship", "relation", "relationship_to_head")),
    *_address("registered", "户籍", {"detail": ("户籍地", "户籍所在地", "户籍地址", "registered_address")}),
    *_address(
        "current", "现住",
        {
            "district": ("区县", "居住区县", "现居住区县"),
            "subdistrict": ("街道", "居住街道", "所属街道"),
            "community_id": ("社区编码", "社区代码", "community_id", "community_code"),
            "community": ("社区", "居住社区", "所属社区", "community"),
            "building": ("楼栋", "楼号", "building"),
            "unit": ("单元", "unit"),
            "room": ("房号", "门牌号", "room"),
            "detail": ("现住址", "现住地址", "居住地址", "现居住地址", "住址", "地址", "current_address", "address"),
        },
    ),
)

ENTITY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "name", "名称",
        ("企业名称", "单位名称", "机构名称", "市场主体名称", "主体名称", "名称(字号)", "name", "entity_name", "company_name",
         "company", "organisation", "organization"),
    ),
    FieldSpec(
        "credit_code", "统一社会信用代码",
        ("社会信用代码", "信用代码", "统一代码", "credit_code", "uscc", "unified_social_credit_code", "social_credit_code"),
    ),
    FieldSpec(
        "legal_rep_id_number", "法定代表人身份证号",
        ("法定代表人身份证号码", "法定代表人证件号码", "法定代表人证件号", "法人身份证号", "法人身份证号码", "法人代表身份证号",
         "负责人身份证号", "负责人身份证号码", "legal_rep_id_number", "legal_representative_id_number", "legal_rep_id",
         "legal_rep_id_no"),
    ),
    FieldSpec("entity_type", "企业类型", ("类型", "主体类型", "市场主体类型", "单位类型", "entity_type", "type", "company_type")),
    FieldSpec("registered_capital", "注册资本", ("注册资金", "registered_capital", "capital")),
    FieldSpec("industry_code", "行业代码", ("国民经济行业代码", "行业分类代码", "所属行业代码", "industry_code", "industry")),
    FieldSpec("established_on", "成立日期", ("成立时间", "注册日期", "登记日期", "established_on", "established", "date_established", "founded")),
    FieldSpec("status", "登记状态", ("经营状态", "企业状态", "状态", "status")),
    *_address("address", "", {"detail": ("住所", "注册地址", "经营地址", "经营场所", "企业地址", "address")}),
)

CREDIT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        "subject", "主体代码",
        ("行政相对人代码", "相对人代码", "主体标识", "主体证件号码", "证件号码", "身份证号或统一社会信用代码",
         "统一社会信用代码或身份证号", "subject", "subject_id", "subject_code"),
    ),
    FieldSpec("category", "信用类别", ("类别", "记录类别", "信息类别", "信用信息类别", "category", "credit_category")),
    FieldSpec(
        "decided_on", "决定日期",
        ("作出决定日期", "处罚决定日期", "许可决定日期", "认定日期", "日期", "decided_on", "decision_date", "date"),
    ),
    FieldSpec(
        "department", "决定机关",
        ("部门", "决定部门", "作出决定机关", "处罚机关", "许可机关", "认定部门", "认定机关", "department", "authority"),
    ),
    FieldSpec(
        "decision_number", "决定书文号",
        ("文号", "行政处罚决定书文号", "许可文书号", "行政许可决定书文号", "decision_number", "document_number", "decision_no"),
    ),
    FieldSpec("summary", "内容摘要", ("摘要", "内容", "事由", "处罚事由", "说明", "summary", "description", "content")),
    FieldSpec("valid_until", "有效期至", ("有效期", "截止日期", "有效截止日期", "valid_until", "expires_on", "valid_to")),
    FieldSpec("publicity_until", "公示截止期", ("公示期至", "公示截止日期", "公示期限", "publicity_until", "public_until")),
)

# Credit records name their subject by id number or credit code: either column may hold it.
_CREDIT_SUBJECT_COLUMNS = ("身份证号", "身份证号码", "公民身份号码", "统一社会信用代码", "社会信用代码", "id_number", "credit_code")

FIELDS: dict[str, tuple[FieldSpec, ...]] = {"person": PERSON_FIELDS, "entity": ENTITY_FIELDS, "credit": CREDIT_FIELDS}
REQUIRED: dict[str, tuple[str, ...]] = {
    "person": ("name", "id_number"),
    "entity": ("name", "credit_code", "legal_rep_id_number"),
    "credit": ("subject", "category", "decided_on"),
}
# Long digit strings that Excel turns into 15-significant-digit numbers.
IDENTIFIER_FIELDS = frozenset(
    {"id_number", "legal_rep_id_number", "credit_code", "subject", "phone", "household_no", "decision_number"}
)

_BRACKETED = re.compile(r"\(.*?\)|\[.*?\]|【.*?】|<.*?>")
_IGNORED_IN_HEADERS = re.compile(r"[\s_\-*:.·/、]+")


def normalise_header(text: str) -> str:
    """Compare headers by letters only: full-width folded, BOM, spaces, marks and (notes) dropped."""
    text = unicodedata.normalize("NFKC", text.replace("\ufeff", "")).strip().lower()
    without_notes = _BRACKETED.sub("", text)
    text = without_notes if _IGNORED_IN_HEADERS.sub("", without_notes) else text
    return _IGNORED_IN_HEADERS.sub("", text)


def _alias_table(kind: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for spec in FIELDS[kind]:
        for alias in (spec.name, spec.chinese, *spec.aliases):
            table.setdefault(normalise_header(alias), spec.name)
    if kind == "credit":
        for alias in _CREDIT_SUBJECT_COLUMNS:
            table.setdefault(normalise_header(alias), "subject")
    return table


_ALIASES = {kind: _alias_table(kind) for kind in FIELDS}


def label(kind: str, name: str) -> str:
    """How a column is named to people: 身份证号 (id_number)."""
    spec = next((s for s in FIELDS[kind] if s.name == name), None)
    return f"{spec.chinese} ({name})" if spec and spec.chinese else name


def column_field(kind: str, header: str) -> str | None:
    return _ALIASES[kind].get(normalise_header(header)) if header.strip() else None


# --- what reading yields -------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetRow:
    line: int  # as numbered in the spreadsheet
    cells: tuple[str, ...]  # the cells as given, as text, for the report
    fields: dict[str, str]  # canonical field -> text
    problems: tuple[str, ...] = ()  # reasons found while reading, before any validation


@dataclass
class Spreadsheet:
    kind: str
    format: str  # "csv" or "xlsx"
    header_line: int
    headers: tuple[str, ...]
    columns: dict[str, tuple[int, ...]]  # canonical field -> the columns holding it
    unknown_columns: tuple[str, ...]
    rows_estimate: int | None  # data rows (an XLSX's stated dimension includes blank rows)
    encoding: str | None = None
    delimiter: str | None = None
    _source: Any = field(default=None, repr=False)

    def rows(self) -> Iterator[SheetRow]:
        """Every non-blank row below the header, in order."""
        width = len(self.headers)
        for line, raw in self._source():
            if line <= self.header_line:
                continue
            cells = tuple(_text(v) for v in raw)
            if not any(c.strip() for c in cells):
                continue
            problems: list[str] = []
            if self.format == "csv" and len(cells) > width and any(c.strip() for c in cells[width:]):
                problems.append(
                    f"has {len(cells)} cells but the header has {width} columns: is there an unquoted "
                    f"{_DELIMITER_NAMES.get(self.delimiter or ',', self.delimiter)} inside a value?"
                )
            fields: dict[str, str] = {}
            for name, indexes in self.columns.items():
                values = [(i, raw[i]) for i in indexes if i < len(raw) and _text(raw[i]).strip()]
                if not values:
                    continue
                texts = {_text(v).strip() for _, v in values}
                if len(texts) > 1:
                    shown = " and ".join(repr(self.headers[i]) for i, _ in values)
                    problems.append(f"{name}: columns {shown} give different values; fill in only one")
                index, value = values[0]
                text, problem = _cell(value, name)
                if problem:
                    problems.append(problem)
                fields[name] = text
            yield SheetRow(line, cells, fields, tuple(problems))


_DELIMITER_NAMES = {",": "comma (,)", "\t": "tab", ";": "semicolon (;)"}


def _text(value: Any) -> str:
    """A cell as the text a person would see in it (numbers without Excel's float noise)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(getattr(value, "text", value))  # openpyxl's ArrayFormula and the like


_SCIENTIFIC = re.compile(r"[+-]?\d+(\.\d+)?[eE][+-]?\d+")
_NUMBER_LIKE = re.compile(r"[+-][\d\s().,-]*")  # -5, +86 138 0000 0000, a lone "-"


def _cell(value: Any, name: str) -> tuple[str, str | None]:
    """The cell's text for a field, and the reason it cannot be used as it is."""
    text = _text(value).strip()
    if isinstance(value, float) and abs(value) >= 1e15:
        return text, (
            f"{name}: Excel stored {text.upper()} as a number and lost its last digits; format the column "
            "as text (设置单元格格式 → 文本) and enter the values again"
        )
    if name in IDENTIFIER_FIELDS and _SCIENTIFIC.fullmatch(text):
        return text, (
            f"{name}: {text} is how Excel shows a long number it has rounded, so the last digits are lost; "
            "format the column as text (设置单元格格式 → 文本) and enter the values again"
        )
    if text[:1] in ("=", "@") or (text[:1] in ("+", "-") and not _NUMBER_LIKE.fullmatch(text)):
        shown = text if len(text) <= 30 else text[:29] + "…"
        return text, f"{name}: {shown!r} is a spreadsheet formula, not a value; enter the value itself (粘贴为数值)"
    return text, None


# --- opening a file ------------------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Excel .xls (or Word .doc) or password-protected workbook"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a Windows program"),
    (b"{\\rtf", "an RTF document"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
_NOT_A_SPREADSHEET = "the file is not a CSV or XLSX spreadsheet"
_SAVE_AS = "save it from Excel or WPS as CSV UTF-8 (逗号分隔) or Excel workbook (.xlsx)"


def open_spreadsheet(data: bytes, kind: str, *, file_name: str = "", limits: Limits = Limits()) -> Spreadsheet:
    """Recognise the file, find its header row and map its columns; raise SpreadsheetError if it cannot be read."""
    if kind not in FIELDS:
        raise SpreadsheetError(f"unknown import kind {kind!r}; use person, entity or credit")
    if len(data) > limits.max_bytes:
        raise SpreadsheetError(
            f"the file is {len(data) / MB:.1f} MB, over the {limits.max_bytes / MB:.0f} MB limit; split it into smaller files"
        )
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise SpreadsheetError("the file is empty")
    if data.startswith(b"PK\x03\x04"):
        return _open_xlsx(data, kind, limits)
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise SpreadsheetError(f"{_NOT_A_SPREADSHEET} (it looks like {what}); {_SAVE_AS}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpreadsheetError(
            "the file is UTF-16 text (Excel's 'Unicode text'), which is not supported; " + _SAVE_AS
        )
    if b"\x00" in data:
        raise SpreadsheetError(f"{_NOT_A_SPREADSHEET}: it contains binary data (NUL bytes); {_SAVE_AS}")
    return _open_csv(data, kind, limits)


def _decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as as_utf8:
        utf8_error = as_utf8
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    line = data.count(b"\n", 0, utf8_error.start) + 1
    bad = data[utf8_error.start : utf8_error.start + 4].hex(" ")
    raise SpreadsheetError(
        f"the text is neither UTF-8 nor GB18030 (first bad bytes {bad} on line {line}); "
        f"{_SAVE_AS}, or check that this is the right file"
    )


def _open_csv(data: bytes, kind: str, limits: Limits) -> Spreadsheet:
    text, encoding = _decode(data)
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    head = "\n".join(text.splitlines()[:HEADER_SEARCH_ROWS])
    best: tuple[int, int, str] | None = None  # (known columns, columns, delimiter)
    for delimiter in (",", "\t", ";"):
        rows = _csv_rows(head, delimiter, limit=HEADER_SEARCH_ROWS)
        known = max((sum(1 for c in row if column_field(kind, c)) for _, row in rows), default=0)
        columns = max((len(row) for _, row in rows), default=0)
        if best is None or (known, columns) > best[:2]:
            best = (known, columns, delimiter)
    assert best is not None
    delimiter = best[2]

    def source() -> Iterator[tuple[int, list[str]]]:
        yield from _csv_records(text, delimiter)

    header_line, headers = _find_header(kind, _first_rows(source()), encoding)
    # A pass over the whole file before anything is written: a broken quote or an oversized cell
    # fails the file here, and the count gives progress its denominator.
    data_rows = 0
    try:
        for line, row in source():
            if line > header_line and any(c.strip() for c in row):
                data_rows += 1
    except _BrokenCsv as exc:
        raise SpreadsheetError(str(exc)) from None
    return _spreadsheet(kind, "csv", header_line, headers, data_rows, limits, source, encoding=encoding, delimiter=delimiter)


class _BrokenCsv(Exception):
    pass


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Rows numbered as a spreadsheet numbers them: a quoted cell over several lines is one row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = str(exc)
            if "end of data" in reason:
                reason = "a quoted cell is never closed (a \" without its partner)"
            raise _BrokenCsv(f"the CSV cannot be read at row {number + 1}: {reason}") from None
        number += 1
        yield number, row


def _csv_rows(text: str, delimiter: str, *, limit: int) -> list[tuple[int, list[str]]]:
    rows = []
    try:
        for number, row in _csv_records(text, delimiter):
            rows.append((number, row))
            if number >= limit:
                break
    except _BrokenCsv:
        pass  # the head was cut mid-row; what was read still shows the delimiter
    return rows


def _first_rows(rows: Iterable[tuple[int, list[Any]]]) -> list[tuple[int, list[Any]]]:
    found = []
    try:
        for number, row in rows:
            found.append((number, row))
            if number >= HEADER_SEARCH_ROWS:
                break
    except _BrokenCsv as exc:
        raise SpreadsheetError(str(exc)) from None
    finally:
        close = getattr(rows, "close", None)
        if close:
            close()  # an XLSX reader lets go of its workbook
    return found


def _find_header(kind: str, rows: list[tuple[int, list[Any]]], encoding: str | None) -> tuple[int, tuple[str, ...]]:
    """The first of the top rows that names every required column (title rows may stand above it)."""
    required = REQUIRED[kind]
    best: tuple[int, int, tuple[str, ...]] | None = None  # (known, line, headers)
    for line, row in rows:
        headers = tuple(_text(c).strip() for c in row)
        fields = {column_field(kind, h) for h in headers} - {None}
        if all(name in fields for name in required):
            return line, headers
        if best is None or len(fields) > best[0]:
            best = (len(fields), line, headers)
    need = ", ".join(label(kind, name) for name in required)
    if best is None or not any(best[2]):
        raise SpreadsheetError(f"no header row found; the first row must name the columns, at least {need}")
    known, line, headers = best
    present = {column_field(kind, h) for h in headers}
    missing = ", ".join(label(kind, name) for name in required if name not in present)
    shown = [h for h in headers if h][:_MAX_SHOWN_COLUMNS]
    more = "…" if len([h for h in headers if h]) > len(shown) else ""
    message = f"missing required columns: {missing} (the header on line {line} has: {', '.join(shown)}{more})"
    if known == 0 and encoding == "gb18030":
        message += "; the file was read as GB18030: if those names look garbled, " + _SAVE_AS
    raise SpreadsheetError(message)


def _spreadsheet(kind: str, fmt: str, header_line: int, headers: tuple[str, ...], rows_estimate: int | None,
                 limits: Limits, source, **extra: Any) -> Spreadsheet:
    if rows_estimate is not None and rows_estimate > limits.max_rows:
        raise SpreadsheetError(
            f"the file has {rows_estimate:,} rows, over the limit of {limits.max_rows:,}; split it into smaller files"
        )
    columns: dict[str, list[int]] = {}
    unknown = []
    for index, header in enumerate(headers):
        name = column_field(kind, header)
        if name:
            columns.setdefault(name, []).append(index)
        elif header:
            unknown.append(header)
    if rows_estimate == 0:
        raise SpreadsheetError(f"the file has a header row (line {header_line}) but no data rows below it")
    return Spreadsheet(
        kind=kind, format=fmt, header_line=header_line, headers=headers,
        columns={k: tuple(v) for k, v in columns.items()}, unknown_columns=tuple(unknown),
        rows_estimate=rows_estimate, _source=source, **extra,
    )


def _open_xlsx(data: bytes, kind: str, limits: Limits) -> Spreadsheet:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise SpreadsheetError(f"the file starts like a ZIP/XLSX but is damaged ({exc}); {_SAVE_AS}") from None
    if "xl/workbook.xml" not in names:
        what = ("a Word document (.docx)" if "word/document.xml" in names
                else "a PowerPoint presentation (.pptx)" if "ppt/presentation.xml" in names
                else "an OpenDocument file" if "mimetype" in names
                else "a ZIP archive")
        raise SpreadsheetError(f"{_NOT_A_SPREADSHEET} (it looks like {what}); {_SAVE_AS}")
    if expanded > limits.max_uncompressed_bytes or (
        expanded > limits.expansion_floor_bytes and expanded > limits.max_expansion * len(data)
    ):
        raise SpreadsheetError(
            f"the workbook would expand from {len(data) / MB:.1f} MB to {expanded / MB:.0f} MB when opened, "
            f"more than a spreadsheet should (limit {limits.max_uncompressed_bytes / MB:.0f} MB or "
            f"{limits.max_expansion}x); it is refused as a possible zip bomb"
        )
    from defusedxml import DefusedXmlException
    from openpyxl import load_workbook

    def load():
        return load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False)

    def failure(exc: Exception) -> SpreadsheetError:
        cause: BaseException | None = exc
        while cause is not None:  # openpyxl wraps what went wrong in errors of its own
            if isinstance(cause, DefusedXmlException):
                return SpreadsheetError("the workbook declares XML entities, which are refused (a possible XML bomb)")
            cause = cause.__cause__ or cause.__context__
        return SpreadsheetError(f"the workbook cannot be read ({type(exc).__name__}: {exc}); {_SAVE_AS}")

    try:
        workbook = load()
        if not workbook.worksheets:
            raise SpreadsheetError("the workbook has no worksheet")
        sheet = workbook.worksheets[0]
        stated = sheet.max_row  # from the sheet's stated dimension; None if it states none
    except SpreadsheetError:
        raise
    except Exception as exc:  # openpyxl raises many kinds on damaged workbooks
        raise failure(exc) from None

    def source() -> Iterator[tuple[int, tuple]]:
        book = load()
        try:
            worksheet = book.worksheets[0]
            worksheet.reset_dimensions()  # read every row, whatever the stated dimension says
            yield from enumerate(worksheet.iter_rows(values_only=True), start=1)
        except SpreadsheetError:
            raise
        except Exception as exc:
            raise failure(exc) from None
        finally:
            book.close()

    try:
        header_line, headers = _find_header(kind, _first_rows(source()), None)
        if stated is None:
            stated = sum(1 for line, row in source() if line > header_line and any(_text(c).strip() for c in row))
            estimate = stated
        else:
            estimate = max(stated - header_line, 0)
            if estimate == 0:
                estimate = sum(1 for line, row in source() if line > header_line and any(_text(c).strip() for c in row))
    finally:
        workbook.close()
    return _spreadsheet(kind, "xlsx", header_line, headers, estimate, limits, source)


# --- the report of rejected rows -----------------------------------------------------------------

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """A cell that Excel would run as a formula, made inert with a leading quote (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


class RejectedRowsWriter:
    """CSV of rejected rows (line, reasons, then the row as uploaded), UTF-8 with a BOM so Excel reads it."""

    def __init__(self, out: IO[bytes], headers: Iterable[str]) -> None:
        out.write(codecs.BOM_UTF8)
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        self._csv = csv.writer(self._text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        self._csv.writerow([neutralise(h) for h in ("行号 line", "原因 reasons", *headers)])
        self.count = 0

    def add(self, line: int, reasons: Iterable[str], cells: Iterable[str]) -> None:
        self._csv.writerow([str(line), neutralise("; ".join(reasons)), *(neutralise(c) for c in cells)])
        self.count += 1

    def close(self) -> None:
        self._text.flush()
        self._text.detach()
