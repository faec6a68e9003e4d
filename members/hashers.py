"""Password hashing: Argon2id tuned above OWASP's minimum (m=19 MiB, t=2, p=1)."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class GuichetArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with m=64 MiB, t=2, p=1; README gives the measured cost on a 2-core box."""

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 65536  # KiB
    parallelism = 1
