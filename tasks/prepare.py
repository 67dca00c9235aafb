"""prepare: split real data into train and a held-out test set, and fit the codec.

The split is random and stratified, unless the spec names a split column: then the data's
own split is kept (a dataset may be built with a test set unlike its training set).
"""

from __future__ import annotations

import mlflow
from prefect import task

from fairdistill.models.config import PrepareConfig
from fairdistill.models.stages import prepare_tables
from fairdistill.tasks.services.caching import STAGE_CACHE
from fairdistill.tasks.services.retries import TRANSIENT_RETRIES
from fairdistill.tasks.services.stage_outputs import PreparedData, ValidatedInput, read_spec
from fairdistill.tasks.services.storage import read_parquet, write_json, write_parquet
from fairdistill.tasks.services.tracking import StageContext, log_metrics, log_params, stage_run


@task(name="prepare", **STAGE_CACHE, **TRANSIENT_RETRIES)
def prepare(
    settings: PrepareConfig, seed: int, context: StageContext, validated: ValidatedInput
) -> PreparedData:
    with stage_run(context, "prepare") as run:
        spec = read_spec(validated.spec)
        prepared = prepare_tables(read_parquet(validated.table), spec, settings, seed=seed)
        if spec.split_column:
            log_params({"split_column": spec.split_column, "seed": seed})
        else:
            log_params({"test_fraction": settings.test_fraction, "seed": seed})
        train, test, codec = prepared.train, prepared.test, prepared.codec
        log_metrics(
            {"train_rows": train.height, "test_rows": test.height, "encoded_dim": codec.feature_dim}
        )
        mlflow.log_dict(codec.to_dict(), "codec.json")
        return PreparedData(
            train=write_parquet(context.work_file("train.parquet"), train),
            test=write_parquet(context.work_file("test.parquet"), test),
            codec=write_json(context.work_file("codec.json"), codec.to_dict()),
            spec=validated.spec,
            train_rows=train.height,
            test_rows=test.height,
            stage_run_id=run.info.run_id,
        )
