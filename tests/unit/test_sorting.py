import pytest

from consult.core.sorting import Sort, parse

KEYS = ["address", "area", "owner"]


@pytest.mark.parametrize(("value", "expected"), [
    ("area", Sort("area")), ("-area", Sort("area", True)), ("owner", Sort("owner")),
    (None, Sort("address")), ("", Sort("address")), ("-", Sort("address")),
    ("phone", Sort("address")), ("--area", Sort("address")), ("area;drop", Sort("address")),
])
def test_parse_takes_known_keys_and_falls_back_to_the_default(value, expected):
    assert parse(value, KEYS, "address") == expected


def test_a_default_can_be_descending_and_must_be_a_key():
    assert parse(None, ["seq"], "-seq") == Sort("seq", True)
    with pytest.raises(ValueError):
        parse(None, KEYS, "phone")


def test_header_links_turn_the_current_column_round_and_start_others_their_way():
    current = Sort("area")
    assert current.link_value("area") == "-area"
    assert Sort("area", True).link_value("area") == "area"
    assert current.link_value("owner") == "owner"
    assert current.link_value("cast", descending_first=True) == "-cast"
    assert (current.aria("area"), Sort("area", True).aria("area"), current.aria("owner")) == (
        "ascending", "descending", "none")
    assert Sort("area", True).value == "-area" and current.value == "area"
