"""The demo: a deterministic synthetic health system, its written-down truth, and its files.

``demo`` owns the organisation the tests, the benchmarks and ``qi demo`` run the method on: sites
with four kinds of clinical microsystem over 104 weeks, every input table of the data contracts,
the truth the workbooks should find (planted teams, effects, baselines), and the files and README
written for them, byte for byte the same for the same size and seed. Nothing in ``qi_helpers``
imports it except the ``qi`` command. Modules:

- ``health_system``: :func:`make_demo`, :func:`write_demo`, :func:`demo_table_specs`;
- ``catalogue``: the fixed lists (sizes, measures, changes, the ten characteristics);
- ``structure``: the organisation (sites, microsystems, staff, patients);
- ``activity``: care activities, ward stays and the planted effects over time;
- ``measures``: measured cases, observations, PDSA log, readiness survey, adoption;
- ``readme``: the README written next to the tables.
"""

from qi_helpers.demo.health_system import (
    CONTRACT_TABLES,
    DEMO_SIZES,
    SERVICE_TEAMS,
    TEN_CHARACTERISTICS,
    TRUTH_TABLES,
    DemoMix,
    demo_table_specs,
    make_demo,
    write_demo,
)

__all__ = [
    "CONTRACT_TABLES",
    "DEMO_SIZES",
    "SERVICE_TEAMS",
    "TEN_CHARACTERISTICS",
    "TRUTH_TABLES",
    "DemoMix",
    "demo_table_specs",
    "make_demo",
    "write_demo",
]
