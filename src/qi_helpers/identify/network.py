"""The activity log as a staff-patient network: encoding and the staff projection (workbook 01).

Steps 1 and 2 of :func:`qi_helpers.identify.microsystems.identify`:

1. a bipartite staff-patient network from the activities in the window (:func:`encode`, held as
   sparse staff-by-patient, staff-by-location and staff-by-activity count matrices in
   :class:`Encoded`);
2. its projection on staff, weighted by the number of shared patients, keeping ties of at least
   ``min_shared_patients`` (:func:`kept_ties`; patient-sharing networks of physicians, Barnett et
   al. 2011, Health Serv Res 46(5):1592-1609; Kuo et al. found that a threshold around six shared
   patients separates working relationships from chance); the projection is one sparse matrix
   product ``B @ B.T`` of the staff-patient incidence matrix (:meth:`Encoded.shared_patients`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from qi_helpers.data.columns import activity_timestamps, blank_mask, require_dataframe
from qi_helpers.errors import DataError

__all__ = ["ACTIVITY_COLUMNS", "IDENTIFY_COLUMNS", "Encoded", "encode", "kept_ties"]

#: The columns of the ``activities`` table that workbook 01 reads.
ACTIVITY_COLUMNS = ("timestamp", "patient_id", "staff_id", "activity", "location")
#: The columns of the input tables that workbook 01 reads (``Project.load_tables(columns=)``):
#: the activity log without the columns it does not use (``duration_min``, any extra column),
#: which on a large log it would otherwise hold in memory for nothing.
IDENTIFY_COLUMNS: dict[str, tuple[str, ...]] = {"activities": (*ACTIVITY_COLUMNS, "encounter_id")}


@dataclass
class Encoded:
    """Activities in the window as integer codes and sparse staff-by-X count matrices.

    Built once by :func:`encode`; :func:`qi_helpers.identify.microsystems.identify` and the explorer
    re-cluster from it without reading the activities again. Internal, but stable enough for the
    widgets.
    """

    staff_ids: np.ndarray  # sorted staff ids (str)
    patient_ids: pd.Index  # patient ids (codes index into it)
    location_names: np.ndarray  # sorted
    activity_names: np.ndarray  # sorted
    staff_patient: sp.csr_matrix  # counts, n_staff x n_patients
    staff_location: sp.csr_matrix  # counts, n_staff x n_locations
    staff_activity: sp.csr_matrix  # counts, n_staff x n_activities
    n_weeks: float
    notes: list[str]
    shared: sp.csr_matrix | None = None  # shared patients, n_staff x n_staff (lazy)

    @property
    def staff_volume(self) -> np.ndarray:
        """Activities per staff member."""
        return np.asarray(self.staff_location.sum(axis=1)).ravel()

    def shared_patients(self) -> sp.csr_matrix:
        """The staff projection: shared patients of every pair (diagonal: own patients)."""
        if self.shared is None:
            incidence = self.staff_patient.copy()
            incidence.data = np.ones_like(incidence.data, dtype=np.int32)
            self.shared = (incidence @ incidence.T).tocsr()
        return self.shared


def _codes(column: pd.Series, *, sort: bool) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and the distinct values as strings (a missing value becomes ``""``)."""
    codes, uniques = pd.factorize(column, sort=sort)
    names = np.asarray(pd.Index(uniques).astype(str), dtype=object)
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names = np.append(names, "")
    return codes, names


def _counts(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Count matrix of (row, col) pairs; duplicates are summed."""
    data = np.ones(len(rows), dtype=np.int32)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def encode(
    activities: pd.DataFrame,
    staff: pd.DataFrame | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
) -> Encoded:
    """Check the activities, keep the window and encode them (see :class:`Encoded`).

    Rows without a staff or patient identifier are dropped and counted in ``notes``; staff in the
    activities but not in the roster are listed there.

    Raises
    ------
    DataError
        A required column is missing, a timestamp is not a date, or the window holds no usable
        row.
    """
    require_dataframe(activities, ACTIVITY_COLUMNS, "activities")
    notes: list[str] = []
    ts = activity_timestamps(activities)
    keep = np.ones(len(activities), dtype=bool)
    if start:
        keep &= (ts >= pd.Timestamp(start)).to_numpy()
    if end:
        keep &= (ts < pd.Timestamp(end)).to_numpy()
    in_window = int(keep.sum())
    missing = (blank_mask(activities["staff_id"]) | blank_mask(activities["patient_id"])) & keep
    if missing.any():
        notes.append(
            f"{int(missing.sum())} activity rows (of {in_window} in the window) have no staff "
            "or patient identifier and were left out."
        )
        keep &= ~missing
    if not keep.any():
        raise DataError(
            "activities: no rows with staff and patient identifiers between "
            f"{start or 'the start'} and {end or 'the end'} ({len(activities)} rows in the "
            "table); widen the window (start/end parameters) or check the identifiers."
        )
    cols = ["staff_id", "patient_id", "location", "activity"]
    acts = activities[cols] if keep.all() else activities.loc[keep, cols]
    ts = ts if keep.all() else ts[keep]
    s, staff_ids = _codes(acts["staff_id"], sort=True)
    p, patient_ids = _codes(acts["patient_id"], sort=False)
    loc, location_names = _codes(acts["location"], sort=True)
    act, activity_names = _codes(acts["activity"], sort=True)
    if staff is not None:
        require_dataframe(staff, ("staff_id",), "staff")
        unknown = np.setdiff1d(staff_ids, staff["staff_id"].astype(str).to_numpy())
        if len(unknown):
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            notes.append(
                f"{len(unknown)} staff in the activities are not in the staff roster (their role "
                f"is unknown): {shown}. Add them to the roster."
            )
    span = ts.max() - ts.min()
    n_weeks = max(1.0, span / pd.Timedelta(days=7))
    n_staff = len(staff_ids)
    return Encoded(
        staff_ids=staff_ids,
        patient_ids=pd.Index(patient_ids, dtype="string"),
        location_names=location_names,
        activity_names=activity_names,
        staff_patient=_counts(s, p, (n_staff, len(patient_ids))),
        staff_location=_counts(s, loc, (n_staff, len(location_names))),
        staff_activity=_counts(s, act, (n_staff, len(activity_names))),
        n_weeks=float(n_weeks),
        notes=notes,
    )


def kept_ties(encoded: Encoded, min_shared_patients: int) -> sp.csr_matrix:
    """Symmetric staff-staff matrix of the ties with at least ``min_shared_patients``."""
    shared = encoded.shared_patients().tocoo()
    keep = (shared.row != shared.col) & (shared.data >= min_shared_patients)
    return sp.csr_matrix(
        (shared.data[keep].astype(float), (shared.row[keep], shared.col[keep])),
        shape=shared.shape,
    )
