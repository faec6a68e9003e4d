"""Secret answers (an insurer's rule kept as a documented exception): normalised, then hashed."""

from __future__ import annotations

import unicodedata

from django.contrib.auth.hashers import check_password, make_password


def normalise_secret_answer(answer: str) -> str:
    """Case, accents and spacing do not count: 'Saint-Étienne ' == 'saint etienne'."""
    decomposed = unicodedata.normalize("NFKD", answer or "")
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    spaced = "".join(" " if (c.isspace() or c in "-'\u2019._") else c for c in stripped)
    return " ".join(spaced.casefold().split())


def secret_answer_hash(answer: str) -> str:
    """The stored form of an answer: a password hash of its normalised text."""
    return make_password(normalise_secret_answer(answer))


def secret_answer_matches(answer: str, stored_hash: str) -> bool:
    """Compare a typed answer with a stored hash (one hash computation either way)."""
    normalised = normalise_secret_answer(answer)
    if not stored_hash:
        make_password(normalised)  # same cost as a real check: no timing oracle
        return False
    return check_password(normalised, stored_hash)
