"""Claims as code: the three verdicts, the thresholds a recipe declares, the sub-claim blocks
its check is built from, and the verdict that is frozen when a run finishes.

A verdict is **inconclusive** when the arms differ by less than their seed-to-seed
spread, when every arm sits at the ceiling, or when a baseline sits at chance; otherwise it
**holds** or **does not hold**. An arm is `(mean, spread, n)` over seeds, the spread being
the sample standard deviation (0 with one seed: a single seed can never show a difference
beyond the spread honestly, so a one-seed ordering is read at face value only where the
claim is a tolerance, not an ordering).

The blocks, each returning a `Verdict`:
- `within(reference, arm, tol)`: `arm` loses at most `tol` against `reference`;
- `close(a, b, tol)`: |a − b| ≤ tol;
- `beats(high, low, margin)`: `high` is above `low` by at least `margin`, beyond the spread;
- `combine(verdicts)`: any "does not hold" wins, then any "inconclusive".

A recipe declares its thresholds once (`Recipe.thresholds`, a `Thresholds`), and its check
receives them resolved for the run's scale; `spatialmix show ID` prints them.
"""

import dataclasses
import enum
import hashlib
import inspect
import math
import statistics
import sys
import time
import types

CEILING = 0.99  # accuracy at or above this in every arm cannot separate the arms


class Verdict(str, enum.Enum):
    """The answer of a claim check. A str, so it compares to and prints as its text."""

    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    INCONCLUSIVE = "inconclusive"

    def __str__(self):
        return self.value

    __format__ = lambda self, spec: format(self.value, spec)  # noqa: E731  (f-strings print the text)


HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = Verdict.HOLDS, Verdict.DOES_NOT_HOLD, Verdict.INCONCLUSIVE


@dataclasses.dataclass(frozen=True)
class Finding:
    """What a check found: the verdict, one paragraph with the numbers, and a table of the arms."""

    verdict: Verdict
    summary: str
    table: str = ""

    def __post_init__(self):
        object.__setattr__(self, "verdict", Verdict(self.verdict))


# ---------------------------------------------------------------------------- thresholds

@dataclasses.dataclass(frozen=True)
class Threshold:
    """One number a claim is judged by, what it means, and its unit for printing
    ("pts": a fraction shown as percentage points; "%": a fraction shown as a percentage;
    anything else is printed after the number). `by_scale` overrides the value at a scale."""

    value: float
    meaning: str
    unit: str = "pts"
    by_scale: dict = dataclasses.field(default_factory=dict)

    def at(self, scale):
        return self.by_scale.get(scale, self.value)

    def text(self, value=None):
        value = self.value if value is None else value
        if self.unit in ("pts", "%"):
            return f"{100 * value:g} {'pts' if self.unit == 'pts' else '%'}"
        return f"{value:g}{(' ' + self.unit) if self.unit else ''}"


class Thresholds:
    """A recipe's thresholds by name: `Thresholds(close=Threshold(0.03, "..."), ...)`."""

    def __init__(self, **thresholds):
        self.items = dict(thresholds)

    def at(self, scale=None):
        """The values at `scale`, as attributes (`t.close`): what a check receives."""
        return types.SimpleNamespace(**{k: (v.at(scale) if scale else v.value) for k, v in self.items.items()})

    def values(self, scale=None):
        return vars(self.at(scale))

    def lines(self):
        """One line per threshold, for `spatialmix show`."""
        out = []
        for name, t in self.items.items():
            extra = "".join(f"; {s} scale: {t.text(v)}" for s, v in t.by_scale.items())
            out.append(f"{name} = {t.text()}{extra}: {t.meaning}")
        return out

    def __bool__(self):
        return bool(self.items)


NO_THRESHOLDS = Thresholds()


# ---------------------------------------------------------------------------- arms and blocks

def arms(rows, metric, by):
    """{key: (mean, spread, n)} of `metric` grouped by the columns `by` (a tuple)."""
    groups = {}
    for row in rows:
        if row.get(metric) in (None, ""):
            continue
        key = tuple(row[c] for c in by)
        groups.setdefault(key, []).append(float(row[metric]))
    return {k: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)) for k, v in groups.items()}


def separated(a, b):
    """True if mean(a) − mean(b) exceeds the arms' combined seed-to-seed spread."""
    (ma, sa, _), (mb, sb, _) = a, b
    return abs(ma - mb) > math.hypot(sa, sb)


def at_ceiling(*arms_):
    return all(a[0] >= CEILING for a in arms_)


def within(reference, arm, tol, *, chance=None):
    """`arm` loses at most `tol` against `reference`: holds if reference − arm ≤ tol; does not
    hold if the loss is larger and beyond the seed spread. With `chance` (1 / classes), a
    reference within `tol` of chance has nothing to lose: inconclusive (the floor's
    counterpart of the ceiling)."""
    if chance is not None and reference[0] - chance <= tol:
        return INCONCLUSIVE
    if reference[0] - arm[0] <= tol:
        return HOLDS
    return DOES_NOT_HOLD if separated(reference, arm) else INCONCLUSIVE


def close(a, b, tol):
    """|a − b| ≤ tol: holds; a larger difference beyond the seed spread does not hold."""
    if abs(a[0] - b[0]) <= tol:
        return HOLDS
    return DOES_NOT_HOLD if separated(a, b) else INCONCLUSIVE


def beats(high, low, margin=0.0):
    """`high` is above `low` by at least `margin`, beyond the seed spread: holds. Does not hold
    if `high` is below `low` beyond the spread, or the gap falls short of `margin` by more
    than the spread. Inconclusive otherwise."""
    gap, spread = high[0] - low[0], math.hypot(high[1], low[1])
    if gap >= margin and separated(high, low):
        return HOLDS
    if separated(high, low) or (gap < margin and margin - gap > spread):
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def exceeds(arm, threshold):
    """A measured quantity (mean, spread, n) is at least `threshold` beyond its spread: holds;
    at most `threshold` beyond its spread: does not hold; inconclusive otherwise."""
    if arm[0] - threshold >= 0 and arm[0] - threshold > arm[1]:
        return HOLDS
    if threshold - arm[0] > arm[1]:
        return DOES_NOT_HOLD
    return INCONCLUSIVE


def combine(verdicts, expected=None):
    """Several sub-claims into one verdict: any "does not hold" wins, then any "inconclusive";
    no sub-claim at all is inconclusive. With `expected`, fewer sub-claims than that (cells
    not finished) cannot hold."""
    verdicts = [Verdict(v) for v in verdicts]
    if DOES_NOT_HOLD in verdicts:
        return DOES_NOT_HOLD
    if not verdicts or (expected is not None and len(verdicts) < expected):
        return INCONCLUSIVE
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def pct(arm):
    mean, spread, n = arm
    return f"{100 * mean:.1f} ± {100 * spread:.1f} %"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- judging a run

def judge(recipe, scale, rows):
    """The recipe's check on `rows` with its thresholds at `scale`: a Finding."""
    return recipe.check(rows, recipe.thresholds.at(scale))


def check_hash(recipe):
    """sha256 of the check's source, of the blocks it is built from (this module) and of its
    paper's shared helpers: when it changes, a frozen verdict may no longer be what the code says."""
    parts = [inspect.getsource(recipe.check), inspect.getsource(sys.modules[__name__])]
    package = recipe.check.__module__.rsplit(".", 1)[0]
    common = sys.modules.get(f"{package}._common")
    if common is not None:
        parts.append(inspect.getsource(common))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def verdict_record(recipe, scale, rows, finding):
    """What verdict.json holds: the verdict, the numbers behind it (the summary, the table and
    the recipe metric's arms per grid point), the thresholds it was judged by, and the hash
    of the check's source."""
    axes = [a for a in recipe.scales[scale].grid if rows and a in rows[0]]
    stats = arms(rows, recipe.metric, tuple(axes)) if axes else {}
    return {
        "recipe": recipe.id, "scale": scale, "verdict": str(finding.verdict), "summary": finding.summary,
        "table": finding.table, "cells": len(rows),
        "metric": recipe.metric, "arms": {"/".join(k): {"mean": m, "spread": s, "n": n}
                                          for k, (m, s, n) in stats.items()},
        "arm_axes": axes, "thresholds": recipe.thresholds.values(scale), "check_sha256": check_hash(recipe),
        "frozen": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def differences(frozen, recipe, scale, rows):
    """Why today's check could say something else than a frozen verdict: [reason, ...]."""
    reasons = []
    now = recipe.thresholds.values(scale)
    then = frozen.get("thresholds") or {}
    for name in sorted(set(now) | set(then)):
        if now.get(name) != then.get(name):
            reasons.append(f"threshold {name} {then.get(name, 'absent')} → {now.get(name, 'absent')}")
    if frozen.get("check_sha256") != check_hash(recipe):
        reasons.append("the check's code changed since the run")
    if frozen.get("cells") != len(rows):
        reasons.append(f"{len(rows)} cells now, {frozen.get('cells')} when frozen")
    return reasons
