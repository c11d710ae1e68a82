"""Reading uploaded registry spreadsheets (CSV, XLSX) into rows, and the report of rejected rows."""

import codecs
import csv
import io
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook

from sunflower.registries.spreadsheets import (
    Limits,
    RejectedRowsWriter,
    SpreadsheetError,
    label,
    neutralise,
    normalise_header,
    open_spreadsheet,
)

ID_1 = "230108199001011232"
ID_2 = "23010819850615002X"


def csv_bytes(*lines: str, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    return ("\r\n".join(line.replace(",", delimiter) for line in lines) + "\r\n").encode(encoding)


def xlsx_bytes(*rows: list, sheets: int = 1) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    for n in range(1, sheets):
        workbook.create_sheet(f"other {n}").append(["ignored"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def rows_of(data: bytes, kind: str = "person", **kwargs) -> list:
    return list(open_spreadsheet(data, kind, **kwargs).rows())


def refused(data: bytes, kind: str = "person", **kwargs) -> str:
    with pytest.raises(SpreadsheetError) as error:
        open_spreadsheet(data, kind, **kwargs)
    return error.value.message


# --- encodings and delimiters ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_given_chinese_headers_in_each_accepted_encoding_when_read_then_rows_carry_canonical_fields(encoding):
    # given
    data = csv_bytes("姓名,身份证号,联系电话,社区", f"张伟,{ID_1},13812345678,幸福社区", encoding=encoding)

    # when
    sheet = open_spreadsheet(data, "person")
    (row,) = sheet.rows()

    # then
    assert sheet.encoding == ("gb18030" if encoding == "gb18030" else "utf-8")
    assert row.line == 2
    assert row.fields == {"name": "张伟", "id_number": ID_1, "phone": "13812345678", "current_community": "幸福社区"}
    assert row.problems == ()


@pytest.mark.parametrize("delimiter", [",", "\t", ";"])
def test_given_english_headers_and_any_common_delimiter_when_read_then_the_delimiter_is_found(delimiter):
    # given
    data = csv_bytes("Name,ID Number,Phone", f"Zhang Wei,{ID_1},13812345678", delimiter=delimiter)

    # when
    sheet = open_spreadsheet(data, "person")

    # then
    assert sheet.delimiter == delimiter
    assert [r.fields for r in sheet.rows()] == [{"name": "Zhang Wei", "id_number": ID_1, "phone": "13812345678"}]


@pytest.mark.parametrize(
    "header, field",
    [
        ("  姓 名 ", "name"),
        ("*身份证号", "id_number"),
        ("身份证号码（必填）", "id_number"),
        ("ＩＤ＿Ｎｕｍｂｅｒ", "id_number"),  # full-width letters and underscore
        ("\ufeff姓名", "name"),
        ("公民身份号码", "id_number"),
        ("与户主关系", "relationship"),
        ("户籍地址", "registered_detail"),
        ("现住址", "current_detail"),
    ],
)
def test_headers_match_their_field_whatever_the_spacing_width_marks_or_notes(header, field):
    data = csv_bytes(f"{header},姓名,身份证号", "x,y,z")
    sheet = open_spreadsheet(data, "person")
    assert 0 in sheet.columns[field]
    assert normalise_header(header) == normalise_header(label("person", field).split(" (")[0]) or field


def test_given_a_file_that_is_neither_utf8_nor_gb18030_when_read_then_it_is_refused_naming_the_encodings():
    # given bytes invalid in both encodings (0x80 alone, 0xFF) on the second line
    data = "姓名,身份证号\n".encode() + b"\x80\xff\xfe,1\n"

    # when
    message = refused(data)

    # then
    assert "neither UTF-8 nor GB18030" in message
    assert "line 2" in message


def test_given_utf16_text_when_read_then_it_is_refused_with_how_to_save_it():
    data = codecs.BOM_UTF16_LE + "姓名\t身份证号\r\n".encode("utf-16-le")
    assert "UTF-16" in refused(data)


# --- headers ---------------------------------------------------------------------------------------


def test_given_title_rows_above_the_header_when_read_then_line_numbers_are_the_spreadsheets():
    # given a title and a blank line above the header, and a blank line between data rows
    data = csv_bytes("2025年人口登记表,,", ",,", "姓名,身份证号,备注", f"张伟,{ID_1},", ",,", f"李娜,{ID_2},")

    # when
    sheet = open_spreadsheet(data, "person")

    # then
    assert sheet.header_line == 3
    assert [(r.line, r.fields["name"]) for r in sheet.rows()] == [(4, "张伟"), (6, "李娜")]
    assert sheet.rows_estimate == 2


def test_given_missing_required_columns_when_read_then_the_error_names_them_in_both_languages():
    message = refused(csv_bytes("名称,法定代表人身份证号", "x,y"), "entity")
    assert "missing required columns: 统一社会信用代码 (credit_code)" in message
    assert "名称, 法定代表人身份证号" in message  # what the header did have


def test_given_unknown_columns_when_read_then_they_are_listed_and_ignored():
    sheet = open_spreadsheet(csv_bytes("姓名,身份证号,备注,Remarks", f"张伟,{ID_1},a,b"), "person")
    assert sheet.unknown_columns == ("备注", "Remarks")
    assert list(sheet.rows())[0].fields == {"name": "张伟", "id_number": ID_1}


@pytest.mark.parametrize(
    "kind, header",
    [
        ("person", "name,id_number"),
        ("entity", "名称,统一社会信用代码,法定代表人身份证号"),
        ("entity", "name,credit_code,legal_rep_id_number"),
        ("credit", "主体代码,信用类别,决定日期"),
        ("credit", "subject,category,date"),
        ("credit", "统一社会信用代码,类别,作出决定日期"),
    ],
)
def test_each_kind_accepts_its_required_columns_in_chinese_or_english(kind, header):
    sheet = open_spreadsheet(csv_bytes(header, ",".join("x" for _ in header.split(","))), kind)
    assert len(list(sheet.rows())) == 1


def test_given_a_credit_file_naming_subjects_in_two_columns_when_both_are_filled_differently_then_the_row_says_so():
    # given persons in one column and entities in another
    data = csv_bytes(
        "身份证号,统一社会信用代码,类别,决定日期",
        f"{ID_1},,表彰,2025-01-01",
        ",91230108MA1B2C3D4E,行政处罚,2025-01-02",
        f"{ID_1},91230108MA1B2C3D4E,行政处罚,2025-01-02",
    )

    # when
    first, second, both = rows_of(data, "credit")

    # then
    assert first.fields["subject"] == ID_1 and not first.problems
    assert second.fields["subject"] == "91230108MA1B2C3D4E" and not second.problems
    assert "subject: columns '身份证号' and '统一社会信用代码' give different values" in both.problems[0]


# --- file-level refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"  \r\n\r\n", codecs.BOM_UTF8])
def test_an_empty_file_is_refused(data):
    assert refused(data) == "the file is empty"


def test_a_file_with_only_a_header_is_refused():
    assert refused(csv_bytes("姓名,身份证号", ",")) == "the file has a header row (line 1) but no data rows below it"


@pytest.mark.parametrize(
    "data, looks_like",
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "legacy Excel .xls"),
        (b"\x7fELF\x02\x01\x01", "program"),
    ],
)
def test_a_file_that_is_not_a_spreadsheet_is_refused_saying_what_it_looks_like(data, looks_like):
    message = refused(data)
    assert message.startswith("the file is not a CSV or XLSX spreadsheet (it looks like")
    assert looks_like in message


def test_a_zip_that_is_not_a_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    assert "Word document" in refused(out.getvalue())


def test_binary_data_is_refused():
    assert "binary data" in refused("姓名,身份证号\n".encode() + b"\x00\x01\x02")


def test_a_file_over_the_size_limit_is_refused():
    data = csv_bytes("姓名,身份证号", f"张伟,{ID_1}")
    assert "over the 0 MB limit" in refused(data, limits=Limits(max_bytes=len(data) - 1))


def test_a_file_over_the_row_limit_is_refused_before_any_row_is_read():
    data = csv_bytes("姓名,身份证号", f"张伟,{ID_1}", f"李娜,{ID_2}", f"王芳,{ID_1}")
    assert refused(data, limits=Limits(max_rows=2)) == "the file has 3 rows, over the limit of 2; split it into smaller files"


def test_a_csv_with_a_quote_that_is_never_closed_is_refused_at_its_row():
    data = csv_bytes("姓名,身份证号", f"张伟,{ID_1}", f'"李娜,{ID_2}', f"王芳,{ID_1}")
    assert refused(data) == 'the CSV cannot be read at row 3: a quoted cell is never closed (a " without its partner)'


# --- rows ------------------------------------------------------------------------------------------


def test_a_quoted_cell_over_several_lines_is_one_row():
    data = csv_bytes("姓名,身份证号,现住址", f'张伟,{ID_1},"幸福社区\n3栋"', f"李娜,{ID_2},")
    assert [(r.line, r.fields.get("current_detail")) for r in rows_of(data)] == [(2, "幸福社区\n3栋"), (3, None)]


def test_a_row_wider_than_its_header_is_flagged_but_its_neighbours_are_not():
    data = csv_bytes("姓名,身份证号,现住址", f"张伟,{ID_1},友协大街,101号", f"李娜,{ID_2},友协大街101号")
    wide, fine = rows_of(data)
    assert wide.problems == ("has 4 cells but the header has 3 columns: is there an unquoted comma (,) inside a value?",)
    assert fine.problems == ()


@pytest.mark.parametrize("cell", ["=1+2", "=HYPERLINK(\"http://x\",\"y\")", "@SUM(A1)", "+cmd|'/C calc'!A0", "-2+3+cmd|' /C calc'!A0"])
def test_a_formula_in_a_cell_rejects_its_row_with_the_reason(cell):
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow([cell, ID_1])
    (row,) = rows_of(csv_bytes("姓名,身份证号", line.getvalue()))
    assert row.problems and row.problems[0].startswith("name: ") and "spreadsheet formula" in row.problems[0]


@pytest.mark.parametrize("phone", ["+86 138 1234 5678", "-", "0451-86123456"])
def test_values_that_merely_start_with_plus_or_minus_are_not_formulas(phone):
    (row,) = rows_of(csv_bytes("姓名,身份证号,电话", f"张伟,{ID_1},{phone}"))
    assert row.problems == ()


def test_an_id_number_excel_showed_in_scientific_notation_is_rejected_with_how_to_fix_it():
    (row,) = rows_of(csv_bytes("姓名,身份证号", "张伟,2.30108E+17"))
    assert "format the column as text" in row.problems[0]
    assert row.problems[0].startswith("id_number: 2.30108E+17")


# --- XLSX ------------------------------------------------------------------------------------------


def test_given_an_xlsx_with_chinese_headers_when_read_then_numbers_and_dates_become_text():
    # given
    data = xlsx_bytes(
        ["姓名", "身份证号", "出生日期", "联系电话", "楼栋"],
        ["张伟", ID_1, datetime(1990, 1, 1), 13812345678, 3.0],
        [None, None, None, None, None],
        ["李娜", ID_2, date(1985, 6, 15), "13912345678", 12.5],
        sheets=2,
    )

    # when
    sheet = open_spreadsheet(data, "person")
    first, second = sheet.rows()

    # then
    assert sheet.format == "xlsx"
    assert first.line == 2 and second.line == 4
    assert first.fields == {
        "name": "张伟", "id_number": ID_1, "birth_date": "1990-01-01", "phone": "13812345678", "current_building": "3"
    }
    assert second.fields["birth_date"] == "1985-06-15"
    assert second.fields["current_building"] == "12.5"
    assert first.problems == second.problems == ()


def test_given_an_id_number_excel_stored_as_a_float_when_read_then_the_row_is_rejected_with_how_to_fix_it():
    # given 230108199001011232 typed into a General-format cell: Excel keeps 15 significant digits
    data = xlsx_bytes(["姓名", "身份证号"], ["张伟", 2.30108199001011e17], ["李娜", ID_2])

    # when
    mangled, fine = rows_of(data)

    # then
    assert mangled.problems == (
        "id_number: Excel stored 2.30108199001011E+17 as a number and lost its last digits; format the column "
        "as text (设置单元格格式 → 文本) and enter the values again",
    )
    assert fine.problems == ()


def test_given_formula_cells_in_an_xlsx_when_read_then_their_rows_are_rejected():
    data = xlsx_bytes(["姓名", "身份证号", "电话"], ["张伟", ID_1, "=A2&B2"], ["李娜", ID_2, "13912345678"])
    formula, fine = rows_of(data)
    assert "phone: '=A2&B2' is a spreadsheet formula" in formula.problems[0]
    assert fine.problems == ()


def test_an_xlsx_header_only_is_refused():
    assert "no data rows" in refused(xlsx_bytes(["姓名", "身份证号"]))


def test_an_xlsx_that_would_expand_too_far_is_refused_as_a_zip_bomb():
    # given a workbook carrying a part that compresses a thousandfold
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx_bytes(["姓名", "身份证号"], ["张伟", ID_1]))) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in source.infolist():
            bomb.writestr(item, source.read(item))
        bomb.writestr("xl/media/padding.bin", b"\0" * (12 * 2**20))

    # when / then
    assert "possible zip bomb" in refused(out.getvalue())
    assert "possible zip bomb" in refused(xlsx_bytes(["姓名"]), limits=Limits(max_uncompressed_bytes=1000))


def test_an_xlsx_declaring_xml_entities_is_refused():
    # given a sheet with a DOCTYPE that declares an entity (the start of a billion-laughs bomb)
    original = xlsx_bytes(["姓名", "身份证号"], ["张伟", ID_1])
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            body = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>' + body
            target.writestr(item, body)

    # when / then
    assert "XML entities" in refused(out.getvalue())


def test_a_damaged_xlsx_is_refused():
    data = xlsx_bytes(["姓名", "身份证号"], ["张伟", ID_1])
    assert "damaged" in refused(data[: len(data) // 2])


# --- the report ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_cells_excel_would_run_are_neutralised_with_a_leading_quote(cell):
    assert neutralise(cell) == "'" + cell


def test_the_report_is_a_utf8_csv_with_bom_listing_line_reasons_and_the_row_with_formulas_neutralised():
    # given
    out = io.BytesIO()
    writer = RejectedRowsWriter(out, ["姓名", "=danger"])

    # when
    writer.add(7, ["id_number: is required", "phone: '=1+2' is a spreadsheet formula"], ["=cmd|' /C calc'!A0", "张伟"])
    writer.close()

    # then
    data = out.getvalue()
    assert data.startswith(codecs.BOM_UTF8)
    header, row = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    assert header == ["行号 line", "原因 reasons", "姓名", "'=danger"]
    assert row == ["7", "id_number: is required; phone: '=1+2' is a spreadsheet formula", "'=cmd|' /C calc'!A0", "张伟"]
    assert writer.count == 1
