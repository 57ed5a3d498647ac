import pytest

from shared.company_id import is_valid


@pytest.mark.parametrize("value", ["25083325", "27082440", "45274649", "00006947", "49240901"])
def test_real_company_ids_are_valid(value):
    assert is_valid(value)


@pytest.mark.parametrize("value", ["25083326", "12345678", "2508332", "250833250", "2508332a", "", "２５０８３３２５"])
def test_wrong_check_digit_length_or_characters_are_invalid(value):
    assert not is_valid(value)


def test_remainder_zero_and_one_map_to_check_digits_one_and_zero():
    # r = 0 -> (11 - 0) % 10 = 1; r = 1 -> (11 - 1) % 10 = 0
    assert is_valid("00000001")  # sum 0
    assert is_valid("00000060")  # 6*2 = 12, r = 1 -> 0
