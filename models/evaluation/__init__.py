"""Evaluation of a synthetic dataset: fairness, utility, fidelity and privacy.

:func:`evaluate_synthetic` runs everything and returns an :class:`EvaluationResult`; the
modules hold the single metrics, each usable on its own.
"""

from fairdistill.models.evaluation.report import EvaluationResult, evaluate_synthetic, metric_name

__all__ = ["EvaluationResult", "evaluate_synthetic", "metric_name"]
