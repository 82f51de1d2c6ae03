"""Claim checks: arms, their mean ± spread over seeds, and the three verdicts.

A verdict is **inconclusive** when the arms differ by less than their seed-to-seed
spread, or when every arm sits at the ceiling; otherwise it **holds** or **does not
hold**. Spread is the sample standard deviation over seeds (0 with one seed, which
therefore can never beat the spread test honestly: cpu scale uses >= 2 seeds).
"""

import math
import statistics

CEILING = 0.99  # accuracy at or above this in every arm cannot separate the arms


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
    """True if mean(a) - mean(b) exceeds the arms' combined seed-to-seed spread."""
    (ma, sa, _), (mb, sb, _) = a, b
    return abs(ma - mb) > math.hypot(sa, sb)


def at_ceiling(*arms_):
    return all(a[0] >= CEILING for a in arms_)


def combine(verdicts):
    """Several sub-claims into one verdict: any 'does not hold' wins, then any 'inconclusive';
    no sub-claim at all is inconclusive."""
    if not verdicts:
        return "inconclusive"
    if "does not hold" in verdicts:
        return "does not hold"
    return "holds" if all(v == "holds" for v in verdicts) else "inconclusive"


def pct(arm):
    mean, spread, n = arm
    return f"{100 * mean:.1f} ± {100 * spread:.1f} %"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)
