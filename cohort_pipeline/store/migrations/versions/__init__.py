"""Migration scripts, applied in order by ``cohort_pipeline.store.migrate.upgrade``."""
