import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.registry.service import format_area, parse_area


@pytest.mark.parametrize(("text", "dm2"), [
    ("85.32", 8532), ("85.3", 8530), ("85", 8500), (" 120.00 ", 12000), ("0.01", 1),
    ("1,024.50", 102450), ("76.5㎡", 7650), ("99.99m²", 9999),
])
def test_parse_area_accepts_up_to_two_decimals(text, dm2):
    assert parse_area(text) == dm2


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "missing"), ("abc", "not a number"), ("-5", "greater than zero"), ("0", "greater than"),
    ("85.321", "two decimal"), ("NaN", "not a number"), ("Infinity", "not a number"),
    ("1e9", "implausibly"),
])
def test_parse_area_rejects_with_a_reason(text, fragment):
    with pytest.raises(ValueError) as e:
        parse_area(text)
    assert fragment in str(e.value)


@given(st.integers(min_value=1, max_value=100_000_00))
def test_format_and_parse_round_trip(dm2):
    assert parse_area(format_area(dm2)) == dm2
    assert format_area(dm2).count(".") == 1 and len(format_area(dm2).split(".")[1]) == 2
