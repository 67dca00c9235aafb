"""The ML core of fairdistill: plain PyTorch, NumPy and polars.

Nothing in this package imports Prefect or MLflow, so every piece is testable in
milliseconds and reusable outside the pipeline.
"""
