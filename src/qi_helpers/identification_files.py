"""Writing an identification of microsystems as Parquet tables (``outputs/data``).

:func:`write_identification` writes the registry and membership tables of
:class:`qi_helpers.microsystems.Identification`, and optionally the 5 Ps profiles
(:mod:`qi_helpers.profiles`) and the comparison with the declared units
(:class:`qi_helpers.declared_units.Comparison`), each atomically through
:func:`qi_helpers.tables.write_parquet`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qi_helpers.declared_units import Comparison
    from qi_helpers.microsystems import Identification
    from qi_helpers.profiles import Profiles

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
    profiles : qi_helpers.profiles.Profiles, optional
        Also write ``profiles.parquet`` (the mixes) and ``profile_summary.parquet``
        (see :func:`qi_helpers.profiles.write_profiles`).
    comparison : Comparison, optional
        Also write ``declared_purity.parquet`` and ``declared_differences.parquet`` (the staff
        whose team differs from their declared unit: for the coach, not for publishing).

    Returns
    -------
    list of Path
        ``registry.parquet``, ``membership_staff.parquet``, ``membership_patients.parquet``,
        ``membership_locations.parquet``, ``merges.parquet`` (and the optional tables).
    """
    from qi_helpers.tables import write_parquet

    folder = Path(folder)
    out = []
    for name, frame in [
        ("registry", result.registry),
        ("membership_staff", result.staff),
        ("membership_patients", result.patients),
        ("membership_locations", result.locations),
        ("merges", result.merges),
    ]:
        out.append(write_parquet(frame, folder / f"{name}.parquet"))
    if profiles is not None:
        from qi_helpers.profiles import write_profiles

        out += write_profiles(profiles, folder)
    if comparison is not None:
        out.append(write_parquet(comparison.purity, folder / "declared_purity.parquet"))
        out.append(write_parquet(comparison.differences, folder / "declared_differences.parquet"))
    return out
