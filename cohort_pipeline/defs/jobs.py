"""The jobs sensors, the schedule and ``cohort-pipeline run`` launch (the UI can also launch any asset selection)."""

import dagster as dg

GROUP = "cohorts"

refresh_cohorts = dg.define_asset_job(
    "refresh_cohorts",
    selection=dg.AssetSelection.groups(GROUP),
    description="Everything: sync the definitions file, read the data, infer property types, recalculate the "
                "cohorts of the selected partitions and publish them, refresh the summaries.",
)
recalculate_cohorts = dg.define_asset_job(
    "recalculate_cohorts",
    selection=dg.AssetSelection.assets("cohort_membership").downstream(),
    description="Recalculate and publish the cohorts of the selected partitions (one fused pass per project), "
                "then refresh the summaries. Launched by the sensors and the stale-cohort schedule.",
)
sync_cohort_definitions = dg.define_asset_job(
    "sync_cohort_definitions",
    selection=dg.AssetSelection.assets("cohort_definitions"),
    description="Validate the definitions file and sync it into the store (the cohort sensor then picks up new "
                "and edited cohorts).",
)
refresh_data = dg.define_asset_job(
    "refresh_data",
    selection=dg.AssetSelection.assets("persons", "person_distinct_ids", "events", "property_definitions"),
    description="Re-read the data files (row counts, data-contract checks) and the inferred property types.",
)
