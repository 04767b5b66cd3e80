"""Step 1 of the method (workbook 01): identify the clinical microsystems and profile them.

``identify`` owns finding the smallest measurable clinical microsystems in the activity log (who
actually works with whom on which patients: a staff network, its communities, their refinement
and merges), naming and describing them in a registry, checking them against the units staff
declared, profiling each one on the 5 Ps (Purpose, Patients, Professionals, Processes,
Patterns), deciding which of their patient numbers may be published under the small-cell rule,
and showing them (the staff network, the 5 Ps cards as HTML and as figures). Modules:

- ``microsystems``: :func:`identify` and its result :class:`Identification` (the method);
- ``network``: the activities encoded as sparse staff-by-X matrices and the staff projection;
- ``communities``: Louvain, the supported-split refinement and the small-cluster merges;
- ``registry``: naming and describing the clusters (the registry and membership tables);
- ``declared_units``: :func:`compare_to_declared`, the clusters against the declared units;
- ``partition_scores``: adjusted Rand index and normalised mutual information;
- ``files``: :func:`write_identification`, the Parquet tables under ``outputs/data``;
- ``profiles``: :func:`profile`, the 5 Ps of every microsystem, and :func:`mix_matrix`;
- ``published``: the small-cell rule on the registry and the profiles
  (:func:`published_registry`, :func:`published_summary`, :func:`patient_cells`);
- ``mix``: :func:`mix_profiles`, the role, activity and patient mixes as share columns;
- ``cards``: the 5 Ps card as light HTML (:func:`card_html`, :func:`cards_html`);
- ``card_chart``: the card's weekly run chart as a small SVG with its description;
- ``figures``: :func:`plot_staff_network` and :func:`plot_profile_card` (matplotlib).
"""

from qi_helpers.identify.card_chart import run_chart_description, run_chart_svg
from qi_helpers.identify.cards import (
    CARD_CSS,
    card_facts,
    card_html,
    cards_html,
    profile_row,
    small_cells,
)
from qi_helpers.identify.declared_units import Comparison, compare_to_declared
from qi_helpers.identify.figures import network_layout, plot_profile_card, plot_staff_network
from qi_helpers.identify.files import write_identification
from qi_helpers.identify.microsystems import MERGE_COLUMNS, Identification, identify
from qi_helpers.identify.mix import MixStyle, mix_profiles
from qi_helpers.identify.network import (
    ACTIVITY_COLUMNS,
    IDENTIFY_COLUMNS,
    Encoded,
    encode,
    kept_ties,
)
from qi_helpers.identify.partition_scores import (
    adjusted_rand_index,
    normalised_mutual_information,
)
from qi_helpers.identify.profiles import MIX_DIMENSIONS, Profiles, mix_matrix, profile
from qi_helpers.identify.published import (
    PATIENT_TOTALS,
    PUBLISHED_CONDITIONS,
    patient_cells,
    patient_numbers_mask,
    published_registry,
    published_summary,
)
from qi_helpers.identify.registry import REGISTRY_COLUMNS, main_microsystem, match_units

__all__ = [
    "ACTIVITY_COLUMNS",
    "CARD_CSS",
    "IDENTIFY_COLUMNS",
    "MERGE_COLUMNS",
    "MIX_DIMENSIONS",
    "PATIENT_TOTALS",
    "PUBLISHED_CONDITIONS",
    "REGISTRY_COLUMNS",
    "Comparison",
    "Encoded",
    "Identification",
    "MixStyle",
    "Profiles",
    "adjusted_rand_index",
    "card_facts",
    "card_html",
    "cards_html",
    "compare_to_declared",
    "encode",
    "identify",
    "kept_ties",
    "main_microsystem",
    "match_units",
    "mix_matrix",
    "mix_profiles",
    "network_layout",
    "normalised_mutual_information",
    "patient_cells",
    "patient_numbers_mask",
    "plot_profile_card",
    "plot_staff_network",
    "profile",
    "profile_row",
    "published_registry",
    "published_summary",
    "run_chart_description",
    "run_chart_svg",
    "small_cells",
    "write_identification",
]
