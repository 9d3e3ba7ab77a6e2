"""One partition per cohort: ``p<project>-c<cohort>`` (see ``service/cohort_keys.py``), added by the sensors."""

import dagster as dg

COHORTS = "cohorts"

cohort_partitions = dg.DynamicPartitionsDefinition(name=COHORTS)
