"""The temporary password generator: the insurer's shape, drawn uniformly from `secrets`."""

from __future__ import annotations

import random
import secrets
import string
from collections import Counter
from types import SimpleNamespace

import pytest

from workflows import passwords
from workflows.passwords import generate_temporary_password

# Characters members confuse when they retype a password from an e-mail.
LOOK_ALIKES = frozenset("IlOo01")
# Chi-square critical value for 9 degrees of freedom at p = 0.001.
CHI_SQUARE_9_DOF_P001 = 27.88


@pytest.fixture(scope="module")
def samples() -> list[str]:
    """Ten thousand passwords from the real generator, shared by the shape tests."""
    return [generate_temporary_password() for _ in range(10_000)]


def _is_letter(char: str) -> bool:
    return char in string.ascii_letters


def test_every_password_has_nine_letters_and_one_digit(samples: list[str]) -> None:
    for password in samples:
        assert len(password) == 10
        assert sum(char.isdigit() for char in password) == 1
        assert sum(_is_letter(char) for char in password) == 9


def test_no_password_holds_a_look_alike(samples: list[str]) -> None:
    assert not set("".join(samples)) & LOOK_ALIKES


def test_every_unambiguous_letter_of_both_cases_and_digit_appears(samples: list[str]) -> None:
    unambiguous = (set(string.ascii_letters) | set(string.digits)) - LOOK_ALIKES
    assert set("".join(samples)) == unambiguous


def test_ten_thousand_passwords_never_repeat(samples: list[str]) -> None:
    assert len(set(samples)) == len(samples)


def test_the_digit_lands_uniformly_on_each_of_the_ten_places(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a uniform source, the algorithm puts the digit at each place equally often.

    The source is a seeded `random.Random` standing in for `secrets`, so the statistic is the same
    on every run: a biased placement (say, never last) fails every time, a fair one never does.
    That the real source is `secrets` is proved by the next test.
    """
    rng = random.Random(20261203)
    monkeypatch.setattr(
        passwords, "secrets", SimpleNamespace(choice=rng.choice, randbelow=rng.randrange)
    )
    draws = 100_000
    positions = Counter(
        next(i for i, char in enumerate(generate_temporary_password()) if char.isdigit())
        for _ in range(draws)
    )
    expected = draws / 10
    statistic = sum((positions[place] - expected) ** 2 / expected for place in range(10))
    assert statistic < CHI_SQUARE_9_DOF_P001


def test_every_draw_comes_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """9 letters, 1 digit and the digit's place: eleven draws, all through `secrets`."""
    calls: list[str] = []

    def choice(sequence: str) -> str:
        calls.append("digit" if sequence.isdigit() else "letter")
        return secrets.choice(sequence)

    def randbelow(bound: int) -> int:
        calls.append(f"randbelow({bound})")
        return 3

    monkeypatch.setattr(passwords, "secrets", SimpleNamespace(choice=choice, randbelow=randbelow))
    password = generate_temporary_password()
    assert Counter(calls) == {"letter": 9, "digit": 1, "randbelow(10)": 1}
    assert password[3].isdigit()
    assert "random" not in vars(passwords)
