import io

import pytest
from openpyxl import Workbook

from consult.core.errors import ImportRejected
from consult.core.tabular import (
    Column,
    column_letter,
    neutralize_formula,
    normalize_header,
    read_table,
    restore_formula_text,
    write_csv,
    write_xlsx,
)

COLUMNS = (Column("building", ("building", "楼栋")), Column("room", ("room", "房号")),
           Column("phone", ("phone", "电话"), required=False))


def read(data: bytes, name: str = "f.csv"):
    return read_table(data, name, COLUMNS)


def test_utf8_with_and_without_bom_and_gb18030_read_the_same():
    text = "楼栋,房号,备注\n1号楼,101,多余列\n"
    for data in (text.encode(), b"\xef\xbb\xbf" + text.encode(), text.encode("gb18030"),
                 text.encode("utf-16")):
        table = read(data)
        assert table.rows == [(2, {"building": "1号楼", "room": "101"})]
        assert table.where("room") == "B (房号)"


def test_tab_separated_unicode_text_from_excel():
    table = read("building\troom\n1\t101\n".encode("utf-16"))
    assert table.rows == [(2, {"building": "1", "room": "101"})]


def test_headers_are_matched_loosely():
    assert normalize_header(" Room (号) ") == "room"
    assert normalize_header("\ufeff楼栋*") == "楼栋"
    table = read("BUILDING, Room（室号）\n1,2\n".encode())
    assert table.rows[0][1] == {"building": "1", "room": "2"}


def test_blank_rows_are_skipped_and_lines_are_physical():
    table = read(b"building,room\n\n1,101\n,,\n2,201\n")
    assert [line for line, _ in table.rows] == [3, 5]


def test_missing_required_column_is_reported_with_accepted_names():
    with pytest.raises(ImportRejected) as e:
        read(b"building,phone\n1,2\n")
    assert e.value.errors[0].column == "room"
    assert "房号" in e.value.errors[0].message


def test_duplicate_columns_and_empty_files_are_rejected():
    with pytest.raises(ImportRejected) as e:
        read("building,楼栋,room\n1,1,1\n".encode())
    assert e.value.errors[0].column.startswith("B")
    for data in (b"", b"   \n", b"building,room\n", b"\n\n"):
        with pytest.raises(ImportRejected):
            read(data)


def test_binary_and_old_excel_files_are_refused():
    with pytest.raises(ImportRejected):
        read(b"\x00\x01\x02garbage")
    with pytest.raises(ImportRejected):
        read(b"\xd0\xcf\x11\xe0", "old.xls")
    with pytest.raises(ImportRejected):
        read(b"PK\x03\x04not really a zip", "f.xlsx")


def test_xlsx_cells_become_text():
    wb = Workbook()
    ws = wb.active
    ws.append(["楼栋", "房号", "电话"])
    ws.append(["1号楼", 501, 13812345678])
    ws.append([None, None, None])
    ws.append([2, 502.0, None])
    buffer = io.BytesIO()
    wb.save(buffer)
    table = read(buffer.getvalue(), "f.xlsx")
    assert table.rows == [(2, {"building": "1号楼", "room": "501", "phone": "13812345678"}),
                          (4, {"building": "2", "room": "502", "phone": ""})]


def test_column_letters():
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "A", "Z", "AA", "AB", "ZZ", "AAA"]


def test_formulas_are_neutralised_on_export_and_restored_on_import():
    assert neutralize_formula("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert neutralize_formula("+86 138 1234 5678") == "+86 138 1234 5678"
    assert neutralize_formula("-12") == "-12"
    assert neutralize_formula("@SUM(1)") == "'@SUM(1)"
    assert restore_formula_text("'=1+2") == "=1+2"
    data = write_csv(["building", "room"], [["=1+2", "101"]])
    assert b"'=1+2" in data
    assert read(data).rows[0][1]["building"] == "=1+2"
    xlsx = write_xlsx(["building", "room"], [["=1+2", "101"]], title="t")
    assert read(xlsx, "f.xlsx").rows[0][1]["building"] == "=1+2"
