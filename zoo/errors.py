"""The one exception type for user errors across spatialmix."""


class SpatialmixError(ValueError):
    """A user error: an unknown name, a value out of range, a missing dataset.

    The message is one line that says what is wrong and how to fix it; the CLI
    prints it as is and exits 2.
    """


def check(condition, message):
    """Raise `SpatialmixError(message)` unless `condition` holds."""
    if not condition:
        raise SpatialmixError(message)


def check_choice(what, value, allowed):
    check(value in allowed, f"unknown {what} {value!r}; choose one of: {', '.join(map(str, allowed))}")


def check_positive_int(what, value, minimum=1):
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    check(ok, f"{what} must be an integer >= {minimum}, got {value!r}")
