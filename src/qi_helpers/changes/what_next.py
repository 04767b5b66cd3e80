"""What the team does next, in words, from workbook 03's verdicts.

The Act step of the PDSA cycle (Langley et al., The Improvement Guide, 2009): adopt and
standardise what improved, keep testing where there is no signal yet, investigate a balancing
measure that worsened before spreading, and look after the patients a change left behind
(:mod:`qi_helpers.changes.equity`). The paragraph ends with the caveat on serial correlation of the
effects' intervals (:data:`qi_helpers.changes.effects.SERIAL_CORRELATION_NOTE`).
"""

from __future__ import annotations

import pandas as pd

from qi_helpers.changes.effects import SERIAL_CORRELATION_NOTE
from qi_helpers.privacy.html import escape_markdown as md

__all__ = ["what_next"]


def what_next(verdicts: pd.DataFrame) -> str:
    """A short "what next" paragraph (Markdown) for the team, from the verdicts.

    Follows the Act step of the PDSA cycle (Langley et al. 2009): adopt and standardise what
    improved, keep testing where there is no signal yet, investigate a balancing measure that
    worsened before spreading, and look after the patients a change left behind. Every name
    from data goes through :func:`qi_helpers.privacy.html.escape_markdown`: it shows as itself.
    """
    if verdicts.empty:
        return "**What next:** no measured data yet; agree the measures and start collecting them."
    lines = []
    balance_hit = verdicts[verdicts["balancing_flag"].fillna(False).astype(bool)]
    harmed = set(balance_hit["change"].dropna())
    for _, r in verdicts[verdicts["verdict"] == "improved"].iterrows():
        name, change = md(r["name"]), md(r["change"])
        if r["change"] in harmed:
            lines.append(
                f"- **{name}** improved after *{change}*, but a balancing measure "
                "worsened: investigate the balancing measure before you adopt or spread it."
            )
        elif r["decision"] == "abandon":
            lines.append(
                f"- **{name}** improved while *{change}* was tested, yet the team "
                "abandoned it: check whether something else explains the improvement."
            )
        else:
            lines.append(
                f"- **{name}** improved after *{change}*: adopt and standardise the "
                "new way of working, and keep measuring to hold the gain."
            )
        if isinstance(r.get("subgroups_flagged"), str) and r["subgroups_flagged"]:
            groups = r["subgroups_flagged"].replace(";", ", ")
            lines.append(
                f"  - Not every patient group shared it ({md(groups)}): talk with those patients "
                "and adapt the change for them."
            )
    names = dict(zip(verdicts["measure_id"], verdicts["name"], strict=True))
    for _, r in balance_hit.iterrows():
        outcome = names.get(r["balances"], r["balances"]) if pd.notna(r["balances"]) else None
        outcome = md(outcome) if outcome else "the outcome"
        lines.append(
            f"- **{md(r['name'])}** (balancing measure for {outcome}) worsened "
            f"after *{md(r['change'])}*: investigate the balancing measure with the team."
        )
    others = verdicts[(verdicts["verdict"] == "worsened") & ~verdicts["balancing_flag"]]
    for _, r in others.iterrows():
        about = f"after *{md(r['change'])}*" if pd.notna(r["change"]) else "without a change"
        lines.append(
            f"- **{md(r['name'])}** worsened {about}: study what happened before the next cycle."
        )
    for _, r in verdicts[verdicts["verdict"] == "no change"].iterrows():
        lines.append(
            f"- *{md(r['change'])}* showed no change in **{md(r['name'])}** and was abandoned: the "
            "data support that decision; try a different change idea."
        )
    for _, r in verdicts[verdicts["verdict"] == "no signal yet"].iterrows():
        more = (
            f" (about {int(r['periods_needed'])} more periods)"
            if pd.notna(r["periods_needed"])
            else ""
        )
        lines.append(
            f"- **{md(r['name'])}**: no signal yet after *{md(r['change'])}*; keep testing and "
            f"collecting data{more}, or adapt the change in the next cycle."
        )
    unstable = verdicts[
        (verdicts["verdict"] == "baseline only") & (verdicts["baseline_stable"] == False)  # noqa: E712
    ]
    if len(unstable):
        names = ", ".join(md(n) for n in sorted(unstable["name"].astype(str)))
        lines.append(
            f"- The baseline of {names} is unstable without a change: find the special cause "
            "before testing a change there."
        )
    little = verdicts[verdicts["verdict"] == "too little data"]
    if len(little):
        names = ", ".join(md(n) for n in sorted(set(little["name"].astype(str))))
        lines.append(f"- Too little data to judge yet: {names}.")
    if not lines:
        lines.append(
            "- No change tested yet: the charts show the baseline. Use them to choose "
            "what to test first."
        )
    return "**What next:**\n\n" + "\n".join(lines) + f"\n\n*{SERIAL_CORRELATION_NOTE}*"
