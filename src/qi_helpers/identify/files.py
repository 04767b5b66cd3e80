"""Writing an identification of microsystems as Parquet tables (``outputs/data``).

:func:`write_identification` writes the registry and membership tables of
:class:`qi_helpers.identify.microsystems.Identification`, and optionally the 5 Ps profiles
(:mod:`qi_helpers.identify.profiles`) and the comparison with the declared units
(:class:`qi_helpers.identify.declared_units.Comparison`), each atomically through
:func:`qi_helpers.io.write_parquet`.
"""

from __future__ import annotations

from pathlib import Path

from qi_helpers.identify.declared_units import Comparison
from qi_helpers.identify.microsystems import Identification
from qi_helpers.identify.profiles import Profiles, write_profiles
from qi_helpers.io import write_parquet

__all__ = ["write_identification"]


def write_identification(
    result: Identification,
    folder: str | Path,
    profiles: Profiles | None = None,
    comparison: Comparison | None = None,
) -> list[Path]:
    """Write the registry and membership tables as Parquet under ``folder`` (atomically).

    Parameters
    ----------
    result : Identification
    folder : str or Path
        Usually ``outputs/data``.
    profiles : qi_helpers.identify.profiles.Profiles, optional
        Also write ``profiles.parquet`` (the mixes) and ``profile_summary.parquet``
        (see :func:`qi_helpers.identify.profiles.write_profiles`).
    comparison : Comparison, optional
        Also write ``declared_purity.parquet`` and ``declared_differences.parquet`` (the staff
        whose team differs from their declared unit: for the coach, not for publishing).

    Returns
    -------
    list of Path
        ``registry.parquet``, ``membership_staff.parquet``, ``membership_patients.parquet``,
        ``membership_locations.parquet``, ``merges.parquet`` (and the optional tables).
    """
    folder = Path(folder)
    out = []
    for name, frame in [
        ("registry", result.registry),
        ("membership_staff", result.staff),
        ("membership_patients", result.patients),
        ("membership_locations", result.locations),
        ("merges", result.merges),
    ]:
        out.append(write_parquet(folder / f"{name}.parquet", frame))
    if profiles is not None:
        out += write_profiles(profiles, folder)
    if comparison is not None:
        out.append(write_parquet(folder / "declared_purity.parquet", comparison.purity))
        out.append(write_parquet(folder / "declared_differences.parquet", comparison.differences))
    return out
