from sqlalchemy import func, select

from consult.extensions import db
from consult.registry.models import Building, Household
from tests import factories

EN = {"CONSULT_LANG": "en"}
IMPORT = ["registry", "import-households"]
EXPORT = ["registry", "export-households"]


def count(compound) -> int:
    return db.session.scalar(select(func.count(Household.id)).join(Household.building)
                             .where(Building.compound_id == compound.id))


def test_import_households_command_with_progress(runner, tmp_path, compound):
    path = tmp_path / "households.csv"
    path.write_text("楼栋,单元,楼层,房号,面积,业主\n1号楼,1,9,901,55.5,甲\n2号楼,1,9,901,66,乙\n",
                    encoding="utf-8-sig")
    result = runner.invoke(args=[*IMPORT, str(path), "--compound", "劳动局家属院"],
                           env=EN)
    assert result.exit_code == 0, result.output
    assert "2 new" in result.output and "Importing" in result.output
    assert count(compound) == 10


def test_bad_file_lists_every_error_and_exits_1(runner, tmp_path, compound):
    path = tmp_path / "bad.csv"
    path.write_bytes("楼栋,单元,房号,面积,业主\n1号楼,1,901,-1,甲\n1号楼,1,901,50,乙\n8号楼,1,1,1,丙\n"
                     .encode("gb18030"))
    result = runner.invoke(args=[*IMPORT, str(path), "--compound", "劳动局家属院"],
                           env=EN)
    assert result.exit_code == 1
    assert "Line 2, column D (面积)" in result.output
    assert "Line 3, column C (房号): Duplicate of line 2" in result.output
    assert "Line 4, column A (楼栋)" in result.output
    assert count(compound) == 8


def test_errors_are_printed_in_chinese_by_default(runner, tmp_path, compound):
    path = tmp_path / "bad.csv"
    path.write_text("楼栋,房号,面积,业主\n1号楼,901,abc,甲\n", encoding="utf-8")
    result = runner.invoke(args=[*IMPORT, str(path), "--compound", "劳动局家属院"],
                           env={"CONSULT_LANG": "", "LANG": "C.UTF-8", "LC_ALL": ""})
    assert result.exit_code == 1 and "第 2 行" in result.output


def test_unknown_compound_and_missing_file(runner, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("楼栋,房号,面积,业主\n1号楼,1,1,甲\n", encoding="utf-8")
    result = runner.invoke(args=[*IMPORT, str(path), "--compound", "无此小区"],
                           env=EN)
    assert result.exit_code == 1 and "no compound named" in result.output
    result = runner.invoke(args=[*IMPORT, str(tmp_path / "missing.csv")], env=EN)
    assert result.exit_code != 0


def test_export_then_reimport_changes_nothing(runner, tmp_path, compound):
    for name in ("out.csv", "out.xlsx"):
        path = tmp_path / name
        result = runner.invoke(args=[*EXPORT, str(path), "--compound",
                                     "劳动局家属院"], env=EN)
        assert result.exit_code == 0, result.output
        result = runner.invoke(args=[*IMPORT, str(path)], env=EN)
        assert "0 new, 0 changed, 8 unchanged" in result.output, result.output
    result = runner.invoke(args=[*EXPORT, str(tmp_path / "out.txt")], env=EN)
    assert result.exit_code == 1


def test_issue_access_codes_for_a_compound(runner, tmp_path, compound):
    out = tmp_path / "codes.csv"
    result = runner.invoke(args=["accounts", "issue-access-codes", "--compound", "劳动局家属院",
                                 "-o", str(out)], env=EN)
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 9 and lines[0] == "楼栋,单元,房号,访问码"
    assert len(lines[1].split(",")[3].replace(" ", "")) == 12


def test_create_user_command(runner):
    result = runner.invoke(args=["accounts", "create-user", "chief", "--name", "主任", "--role",
                                 "admin"], input="a-strong-password\na-strong-password\n", env=EN)
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["accounts", "create-user", "x", "--name", "n"], input="pw\npw\n",
                           env=EN)
    assert result.exit_code == 1


def test_ambiguous_compound_names_need_the_community(runner, tmp_path, compound):
    factories.make_compound("劳动局家属院")
    path = tmp_path / "f.csv"
    path.write_text("楼栋,房号,面积,业主\n1号楼,1,1,甲\n", encoding="utf-8")
    result = runner.invoke(args=[*IMPORT, str(path), "--compound", "劳动局家属院"],
                           env=EN)
    assert result.exit_code == 1 and "community/compound" in result.output
    result = runner.invoke(args=[*IMPORT, str(path), "--compound",
                                 f"{compound.community.name}/劳动局家属院"], env=EN)
    assert result.exit_code == 0, result.output
