import pytest

from consult.core.text import mask_phone, natural_key, strip_suffix


def test_natural_key_orders_numbers_like_people_count():
    names = ["10号楼", "2号楼", "1号楼", "1-10", "1-9"]
    assert sorted(names, key=natural_key) == ["1-9", "1-10", "1号楼", "2号楼", "10号楼"]
    assert natural_key("501") < natural_key("1501")
    assert natural_key("0501") == natural_key("501")


def test_mask_phone_keeps_only_the_ends():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "861******5678"
    assert mask_phone("1234") == "****"
    assert mask_phone("") == ""
    assert mask_phone(None) == ""


def test_strip_suffix_removes_habitual_words_only_at_the_end():
    assert strip_suffix("2单元", "单元") == "2"
    assert strip_suffix("单元", "单元") == "单元"  # nothing would be left
    assert strip_suffix("501室", "室", "号") == "501"
    assert strip_suffix(" 3 ", "室") == "3"


def test_text_width_counts_wide_characters_as_one_em():
    from consult.core.display import text_width

    assert text_width("未表态", 14) == 42
    assert text_width("No answer", 10) == pytest.approx(54)
    # Full-width punctuation and Latin in the same label.
    assert text_width("（A）", 10) == 26
    assert text_width("", 14) == 0
