"""Password policy (issue 13): length 12 or a passphrase, not the user name, not common."""

from __future__ import annotations

import pytest

from dosimetry_core.errors import InvalidInputError
from dosimetry_core.store.password_policy import (
    check_password,
    common_passwords,
    is_passphrase,
)


@pytest.mark.parametrize(
    "password",
    ["password", "password123!", "Password1234", "qwerty123456", "iloveyou1234", "dosimetry2026"],
)
def test_common_passwords_are_refused_with_the_field(password: str) -> None:
    with pytest.raises(InvalidInputError, match="commonly used password") as err:
        check_password(password if len(password) >= 12 else password + "!" * 12, "bob")
    assert err.value.field == "password"


@pytest.mark.parametrize("password", ["short", "tech-pass-1", "a b c d", "abcdefghijk"])
def test_short_passwords_that_are_not_passphrases_are_refused(password: str) -> None:
    with pytest.raises(InvalidInputError, match="too short: use at least 12 characters"):
        check_password(password, "bob")


def test_passphrases_and_long_passwords_are_accepted() -> None:
    assert is_passphrase("otter maple fig lamp")
    assert not is_passphrase("otter maple fig")
    check_password("otter maple fig lamp", "bob")  # 20 characters, 4 words
    check_password("sun-fox-ink-owl", "bob")  # 15 characters, a 4-word passphrase
    check_password("Kidney-dose-4.85-Gy", "bob")


def test_the_user_name_is_refused_also_with_digits_appended() -> None:
    for password in ("alexander.smith", "Alexander.Smith2026"):
        with pytest.raises(InvalidInputError, match="must not be the user name"):
            check_password(password, "alexander.smith")


def test_the_list_is_the_installed_corpus_not_a_handful() -> None:
    words = common_passwords()
    assert len(words) > 30_000  # zxcvbn's 30 000 passwords plus the local words
    assert {"123456", "password", "letmein", "dosimetry"} <= words


def test_absurdly_long_passwords_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="too long"):
        check_password("x" * 5000, "bob")
