"""Tests of the temporary password generator."""

from __future__ import annotations

import secrets
import string
from collections import Counter
from types import SimpleNamespace

import pytest

from workflows import passwords
from workflows.passwords import DIGITS, LETTERS, generate_temporary_password

# Chi-square critical value for 9 degrees of freedom at p = 0.001: a fair generator fails
# this test once in a thousand runs, a biased one (say a digit never in last place) always.
CHI_SQUARE_9_DOF_P001 = 27.88

LOOK_ALIKES = set("IlOo01")


@pytest.fixture(scope="module")
def samples() -> list[str]:
    """Ten thousand passwords shared by the shape tests."""
    return [generate_temporary_password() for _ in range(10_000)]


def test_alphabets() -> None:
    """Letters are ASCII minus I, l, O, o in both cases; digits are 2 to 9."""
    assert set(LETTERS) == set(string.ascii_letters) - set("IlOo")
    assert len(LETTERS) == len(set(LETTERS)) == 48
    assert DIGITS == "23456789"


def test_shape(samples: list[str]) -> None:
    """Every password has 10 characters: 9 letters and exactly 1 digit, no look-alikes."""
    for password in samples:
        assert len(password) == 10
        assert sum(char in DIGITS for char in password) == 1
        assert sum(char in LETTERS for char in password) == 9
        assert set(password) <= set(LETTERS) | set(DIGITS)
        assert not set(password) & LOOK_ALIKES


def test_whole_alphabet_and_both_cases_appear(samples: list[str]) -> None:
    """Across samples every letter and digit shows up, upper and lower case included."""
    seen = set("".join(samples))
    assert seen == set(LETTERS) | set(DIGITS)
    assert any(char.isupper() for char in seen)
    assert any(char.islower() for char in seen)


def test_passwords_differ(samples: list[str]) -> None:
    """Ten thousand draws from 2**56 possibilities do not repeat."""
    assert len(set(samples)) == len(samples)


def test_digit_position_is_uniform() -> None:
    """The digit's position passes a chi-square test over the 10 places."""
    draws = 100_000
    positions = Counter(
        next(index for index, char in enumerate(generate_temporary_password()) if char in DIGITS)
        for _ in range(draws)
    )
    expected = draws / 10
    statistic = sum((positions[index] - expected) ** 2 / expected for index in range(10))
    assert statistic < CHI_SQUARE_9_DOF_P001


def test_module_draws_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every draw goes through the secrets module, which the generator looks up at call time."""
    calls: list[str] = []

    def choice(sequence: str) -> str:
        """Record the alphabet drawn from, then draw from the real secrets."""
        calls.append("digit" if sequence == DIGITS else "letter")
        return secrets.choice(sequence)

    def randbelow(bound: int) -> int:
        """Record the draw and always put the digit in position 3."""
        calls.append(f"randbelow({bound})")
        return 3

    monkeypatch.setattr(passwords, "secrets", SimpleNamespace(choice=choice, randbelow=randbelow))
    password = generate_temporary_password()
    assert Counter(calls) == {"letter": 9, "digit": 1, "randbelow(10)": 1}
    assert password[3] in DIGITS
    assert "random" not in vars(passwords)
