"""Agreement between two partitions of the same items: adjusted Rand index and NMI.

Used by :func:`qi_helpers.identify.declared_units.compare_to_declared` to score the microsystems
found against the units staff declared, and by the tests and benchmarks against the demo's
planted teams. Adjusted Rand index: Hubert & Arabie (1985), J Classif 2:193-218. Normalised mutual
information: Strehl & Ghosh (2002), J Mach Learn Res 3:583-617; Vinh, Epps & Bailey (2010),
J Mach Learn Res 11:2837-2854.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import comb

from qi_helpers.errors import DataError

__all__ = ["adjusted_rand_index", "normalised_mutual_information"]


def _table(labels_a: pd.Series, labels_b: pd.Series) -> np.ndarray:
    common = labels_a.index.intersection(labels_b.index)
    a = pd.factorize(labels_a[common].astype("string"))[0]
    b = pd.factorize(labels_b[common].astype("string"))[0]
    if not len(common):
        return np.zeros((0, 0))
    table = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(a.max() + 1, b.max() + 1))
    return table.toarray()


def adjusted_rand_index(labels_a: pd.Series, labels_b: pd.Series) -> float:
    """Adjusted Rand index of two partitions of the same items (Hubert & Arabie 1985).

    1 for identical partitions, about 0 for chance agreement. Items are matched by index; items
    in only one of the two series are ignored.
    """
    table = _table(labels_a, labels_b)
    pairs = comb(table, 2).sum()
    rows, cols = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    total = comb(table.sum(), 2)
    expected = rows * cols / total if total else 0.0
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else float((pairs - expected) / (maximum - expected))


def normalised_mutual_information(
    labels_a: pd.Series, labels_b: pd.Series, *, average: str = "arithmetic"
) -> float:
    """Normalised mutual information of two partitions of the same items.

    Parameters
    ----------
    labels_a, labels_b : Series
        Cluster labels, matched by index (items in only one series are ignored).
    average : {"arithmetic", "geometric", "max", "min"}
        How the two entropies are combined in the denominator: ``geometric`` is Strehl & Ghosh's
        NMI, ``arithmetic`` (the default, as scikit-learn) and ``max`` are the variants compared by
        Vinh et al.

    Returns
    -------
    float
        Between 0 (independent) and 1 (identical partitions, up to renaming). Two partitions
        that are both a single cluster give 1.

    Notes
    -----
    With :math:`n_{ij}` items in cluster :math:`i` of A and :math:`j` of B, :math:`a_i, b_j` the
    margins and :math:`N` the total,

    .. math:: I(A;B) = \\sum_{ij} \\frac{n_{ij}}{N} \\log \\frac{N n_{ij}}{a_i b_j}, \\quad
              H(A) = -\\sum_i \\frac{a_i}{N} \\log \\frac{a_i}{N},

    and :math:`NMI = I / \\mathrm{mean}(H(A), H(B))`. Strehl & Ghosh (2002), Cluster ensembles,
    J Mach Learn Res 3:583-617; Vinh, Epps & Bailey (2010), Information theoretic measures for
    clusterings comparison, J Mach Learn Res 11:2837-2854.
    """
    table = _table(labels_a, labels_b)
    total = table.sum()
    if total == 0:
        raise DataError("normalised_mutual_information: the two label series share no item.")
    p = table / total
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    nz = p > 0
    mutual = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0 and hb == 0:
        return 1.0
    means = {
        "arithmetic": (ha + hb) / 2,
        "geometric": np.sqrt(ha * hb),
        "max": max(ha, hb),
        "min": min(ha, hb),
    }
    if average not in means:
        raise DataError(f"average must be one of {', '.join(means)}, got {average!r}.")
    denominator = means[average]
    return 0.0 if denominator == 0 else float(max(0.0, min(1.0, mutual / denominator)))
