"""prepare: split real data into train and a held-out test set, and fit the codec.

The split is random and stratified, unless the spec names a split column: then the data's
own split is kept (a dataset may be built with a test set unlike its training set).
"""

from __future__ import annotations

import mlflow
import yaml
from prefect import task
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.config import RunConfig
from fairdistill.models.modality import fit_codec
from fairdistill.models.spec import DatasetSpec, parse_spec
from fairdistill.models.splitting import declared_split, stratified_split
from fairdistill.tasks.caching import STAGE_CACHE
from fairdistill.tasks.policy import TRANSIENT_RETRIES
from fairdistill.tasks.storage import Ref, read_bytes, read_parquet, write_json, write_parquet
from fairdistill.tasks.tracking import StageContext, log_metrics, log_params, stage_run
from fairdistill.tasks.validate import ValidatedInput


class PreparedData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    train: Ref
    test: Ref
    codec: Ref
    spec: Ref
    train_rows: int
    test_rows: int


def read_spec(ref: Ref) -> DatasetSpec:
    return parse_spec(yaml.safe_load(read_bytes(ref)), source=ref.uri)


@task(name="prepare", **STAGE_CACHE, **TRANSIENT_RETRIES)
def prepare(config: RunConfig, context: StageContext, validated: ValidatedInput) -> PreparedData:
    with stage_run(context, "prepare"):
        spec = read_spec(validated.spec)
        frame = read_parquet(validated.table)
        if spec.split_column:
            train, test = declared_split(frame, spec.split_column)
            log_params({"split_column": spec.split_column, "seed": config.seed})
        else:
            strata = [spec.target.column, *spec.sensitive_columns]
            fraction = config.prepare.test_fraction
            train, test = stratified_split(frame, strata, fraction, config.seed)
            log_params({"test_fraction": fraction, "seed": config.seed})
        codec = fit_codec(train, spec)
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
        )
