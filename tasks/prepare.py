"""prepare: split real data into train and a held-out test set, and fit the codec."""

from __future__ import annotations

import mlflow
import yaml
from prefect import task
from pydantic import BaseModel, ConfigDict

from fairdistill.flows.config import RunConfig
from fairdistill.models.codec import TabularCodec
from fairdistill.models.spec import DatasetSpec, parse_spec
from fairdistill.models.splitting import stratified_split
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
        strata = [spec.target.column, *spec.sensitive_columns]
        train, test = stratified_split(frame, strata, config.prepare.test_fraction, config.seed)
        codec = TabularCodec.fit(train, spec)
        log_params({"test_fraction": config.prepare.test_fraction, "seed": config.seed})
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
