"""Conditional generation: exactly N rows that meet conditions, in the requested group mix.

The generator's rows come from a Gaussian mixture over the latent, each sensitive group with
its own component weights. A condition such as ``age >= 60`` is met by a small share of the
rows overall but by a large share of the rows of a few components (the latent clusters of
older people), so plain rejection wastes most draws while conditioning the mixture does not:

1. Each sensitive group's exact row count comes first, from the requested mix over the
   groups the conditions allow (a condition on a sensitive attribute is met by choosing
   groups, never by rejection).
2. A pilot draws a few rows from every component of the group's mixture (stratified: at
   least ``min_pilot_per_component`` each, more for heavier components) and estimates each
   component's acceptance rate ``a_k``; a second, larger pilot runs if none accepted.
3. The group's rows are split over the components in the proportions ``w_k a_k`` (the
   component weights reweighted by acceptance; components that accepted nothing dropped),
   as a multinomial draw.
4. Each component then draws rows in batches and keeps the first accepted ones until its
   share is full.

Why the result is a draw from the generator's own conditional distribution: the generator
samples ``k ~ w``, then ``z ~ N_k``, then the row ``x`` from the decoder given ``z``. Given
the conditions ``C``, ``p(k | C) = w_k a_k / sum_j w_j a_j`` and, within a component,
``p(z, x | k, C)`` is ``p(z, x | k)`` restricted to ``C`` and renormalised. Step 4 is
rejection sampling from ``p(z, x | k)`` with the indicator of ``C``, whose accepted draws
are independent and distributed exactly as ``p(z, x | k, C)``; keeping the first ones
accepted from an independent sequence does not change that. So the only approximation is
step 3's use of the estimated ``a_k`` for the true ones: the component shares are a
proposal, off by the pilot's sampling error, and a component whose true rate is small but
whose pilot accepted nothing is left out. The rows within each component are exact.

The conditions are checked on the decoded frame, after everything the decode step does to
a row (rounding, clipping, any repair of spec constraints), so what is kept is what is
published. Everything random is seeded from the caller's seed in a fixed order, so the same
model, conditions, rows and seed give the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from fairdistill.models.blocks import EncodedTable
from fairdistill.models.codec import TabularCodec
from fairdistill.models.conditions import ConditionError, ConditionSet
from fairdistill.models.generation import (
    GENERATION_BATCH_ROWS,
    SensitiveMix,
    decode_latents,
    sample_sensitive,
)
from fairdistill.models.prior import GaussianMixturePrior
from fairdistill.models.teacher import FairVAE
from fairdistill.models.training import joint_group_index

RowDecoder = Callable[[EncodedTable], pl.DataFrame]


@dataclass(frozen=True)
class ConditionalSettings:
    """How hard the conditional draw tries before it says a condition is too rare."""

    # Pilot draws per group, spread over the components by weight (at least the minimum
    # each): ~16k rows decode in well under a second and find conditions met by ~1/10,000.
    pilot_rows: int = 16_384
    min_pilot_per_component: int = 4
    # A second pilot this many times larger runs when the first accepted nothing.
    second_pilot_factor: int = 8
    # Draws allowed per requested row and in all: beyond either, the condition is too rare.
    max_draws_per_row: int = 2_000
    max_draws: int = 20_000_000
    # Rows drawn beyond the expected need per batch, so most components fill in one batch.
    overdraw: float = 1.25
    batch_rows: int = GENERATION_BATCH_ROWS


@dataclass(frozen=True)
class GroupFill:
    """How one sensitive group's rows were filled."""

    group: dict[str, str]
    rows: int
    components: int
    kept_components: int
    pilot_draws: int
    pilot_accepted: int
    estimated_rate: float  # share of this group's unconditional rows meeting the conditions
    draws: int
    accepted: int

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "rows": self.rows,
            "components": self.components,
            "kept_components": self.kept_components,
            "pilot_draws": self.pilot_draws,
            "pilot_accepted": self.pilot_accepted,
            "estimated_rate": self.estimated_rate,
            "draws": self.draws,
            "acceptance_after_reweighting": self.accepted / self.draws if self.draws else 1.0,
        }


@dataclass(frozen=True)
class ConditionalSample:
    """The rows drawn, shuffled, and how each group's quota was filled."""

    frame: pl.DataFrame
    groups: list[GroupFill] = field(default_factory=list)

    @property
    def draws(self) -> int:
        return sum(group.pilot_draws + group.draws for group in self.groups)

    def summary(self) -> dict[str, object]:
        weighted = sum(group.estimated_rate * group.rows for group in self.groups)
        rows = sum(group.rows for group in self.groups)
        return {
            "rows": self.frame.height,
            "draws": self.draws,
            "estimated_rate": weighted / rows if rows else 1.0,
            "groups": [group.as_dict() for group in self.groups],
        }


@dataclass(frozen=True)
class ConditionalGenerator:
    """What a conditional draw needs of a trained generator.

    ``decode`` turns decoded blocks into the published columns (the codec's ``decode`` by
    default); pass the generator's own when it does more, so conditions see final rows.
    """

    teacher: FairVAE
    prior: GaussianMixturePrior
    codec: TabularCodec
    real_sensitive: np.ndarray
    decode: RowDecoder | None = None

    def to_frame(self, table: EncodedTable) -> pl.DataFrame:
        if self.decode is not None:
            return self.decode(table)
        return self.codec.decode(table.features, table.sensitive, table.label)


def sample_conditional(
    generator: ConditionalGenerator,
    conditions: ConditionSet,
    rows: int,
    *,
    seed: int,
    mix: SensitiveMix | None = None,
    settings: ConditionalSettings | None = None,
) -> ConditionalSample:
    """Exactly ``rows`` rows meeting every condition, each group's count from ``mix``."""
    settings = settings or ConditionalSettings()
    quotas = group_quotas(generator, conditions, rows, seed=seed, mix=mix)
    # Conditions on sensitive attributes hold by the choice of groups: nothing to reject on.
    sensitive = set(generator.codec.sensitive_columns)
    rejected = ConditionSet(tuple(c for c in conditions.conditions if c.column not in sensitive))
    frames, fills = [], []
    for index, (group, quota) in enumerate(quotas):
        frame, fill = _fill_group(generator, rejected, group, quota, settings, seed, index)
        frames.append(frame)
        fills.append(fill)
    combined = pl.concat(frames) if frames else generator.to_frame(_empty(generator))
    order = np.random.default_rng(_seed(seed, 0, 99)).permutation(combined.height)
    return ConditionalSample(frame=combined[order], groups=fills)


def group_quotas(
    generator: ConditionalGenerator,
    conditions: ConditionSet,
    rows: int,
    *,
    seed: int,
    mix: SensitiveMix | None = None,
) -> list[tuple[tuple[int, ...], int]]:
    """Each allowed joint sensitive group and its exact row count, in group order.

    ``real`` (the default) is the training mix of the groups the conditions allow;
    ``balanced`` equal counts over them; a mapping, its own proportions.
    """
    real = np.asarray(generator.real_sensitive, dtype=np.int64)
    allowed = conditions.allowed_sensitive_levels(generator.codec)
    keep = np.ones(len(real), dtype=bool)
    for attribute, levels in enumerate(allowed):
        keep &= np.isin(real[:, attribute], levels)
    groups, counts = np.unique(real[keep], axis=0, return_counts=True)
    if len(groups) == 0:
        raise ConditionError(
            f"No sensitive group of the training data meets {conditions.describe()}",
            rule="condition-sensitive",
            hint="allow at least one combination of sensitive values the training data has",
        )
    weights = _mix_weights(groups, counts, mix, conditions)
    drawn = sample_sensitive(rows, real, seed=seed, mix=weights)
    found, drawn_counts = np.unique(drawn, axis=0, return_counts=True)
    exact = {tuple(group): int(count) for group, count in zip(found, drawn_counts, strict=True)}
    return [(tuple(int(v) for v in g), exact.get(tuple(g), 0)) for g in groups if tuple(g) in exact]


def _mix_weights(
    groups: np.ndarray,
    counts: np.ndarray,
    mix: SensitiveMix | None,
    conditions: ConditionSet,
) -> dict[tuple[int, ...], float]:
    allowed = {tuple(int(v) for v in group) for group in groups}
    if mix is None or mix == "real":
        return {tuple(int(v) for v in g): float(c) for g, c in zip(groups, counts, strict=True)}
    if mix == "balanced":
        return dict.fromkeys(sorted(allowed), 1.0)
    if isinstance(mix, Mapping):
        explicit = {
            ((k,) if isinstance(k, int | np.integer) else tuple(k)): w for k, w in mix.items()
        }
        kept = {group: float(w) for group, w in explicit.items() if group in allowed and w > 0}
        if not kept:
            raise ConditionError(
                f"The sensitive mix gives no weight to a group that meets {conditions.describe()}",
                rule="condition-sensitive",
                hint="give a positive weight to a group the conditions allow",
            )
        return kept
    return {}  # sample_sensitive refuses an unknown mix with its own error


def _fill_group(
    generator: ConditionalGenerator,
    conditions: ConditionSet,
    group: tuple[int, ...],
    quota: int,
    settings: ConditionalSettings,
    seed: int,
    index: int,
) -> tuple[pl.DataFrame, GroupFill]:
    weights = _component_weights(generator, group)
    pilot = _Pilot.run(generator, conditions, group, weights, settings, seed, index)
    rates = pilot.rates()
    proposal = weights * rates
    estimated = float(proposal.sum() / weights.sum())
    shares = proposal / proposal.sum()
    rng = np.random.default_rng(_seed(seed, index, 2))
    targets = rng.multinomial(quota, shares)
    _refuse_too_many_draws(conditions, group, generator, targets, rates, estimated, settings)
    frame, draws = _draw_until_full(
        generator, conditions, group, targets, rates, settings, seed, index
    )
    fill = GroupFill(
        group=_group_names(generator.codec, group),
        rows=quota,
        components=int((weights > 0).sum()),
        kept_components=int((rates > 0).sum()),
        pilot_draws=int(pilot.draws.sum()) if conditions else 0,
        pilot_accepted=int(pilot.accepted.sum()) if conditions else 0,
        estimated_rate=estimated,
        draws=draws,
        accepted=quota,
    )
    return frame, fill


@dataclass
class _Pilot:
    """Draws and accepted rows per component of one group's mixture."""

    draws: np.ndarray
    accepted: np.ndarray

    def rates(self) -> np.ndarray:
        return np.divide(
            self.accepted, self.draws, out=np.zeros(len(self.draws)), where=self.draws > 0
        )

    @classmethod
    def run(
        cls,
        generator: ConditionalGenerator,
        conditions: ConditionSet,
        group: tuple[int, ...],
        weights: np.ndarray,
        settings: ConditionalSettings,
        seed: int,
        index: int,
    ) -> _Pilot:
        pilot = cls(np.zeros(len(weights), np.int64), np.zeros(len(weights), np.int64))
        if not conditions:
            # Nothing to estimate: every row is accepted, every component keeps its weight.
            return cls(np.ones(len(weights), np.int64), np.ones(len(weights), np.int64))
        scale = 1
        for phase in (0, 1):
            per_component = np.where(
                weights > 0,
                np.maximum(
                    settings.min_pilot_per_component * scale,
                    np.round(settings.pilot_rows * scale * weights / weights.sum()),
                ),
                0,
            ).astype(np.int64)
            components = np.repeat(np.arange(len(weights)), per_component)
            frame = _decode_components(
                generator, group, components, _seed(seed, index, phase), settings
            )
            accepted = conditions.mask(frame)
            pilot.draws += per_component
            pilot.accepted += np.bincount(components[accepted], minlength=len(weights))
            if pilot.accepted.sum():
                return pilot
            scale = settings.second_pilot_factor
        raise ConditionError(
            f"No generated row of the group {_group_text(generator.codec, group)} met "
            f"{conditions.describe()} in {int(pilot.draws.sum()):,} draws spread over every "
            f"latent component (estimated rate below {1 / pilot.draws.sum():.1e})",
            rule="condition-rare",
            hint="the generator almost never produces such rows: relax the condition, or "
            "check that the training data has rows like them",
        )


def _decode_components(
    generator: ConditionalGenerator,
    group: tuple[int, ...],
    components: np.ndarray,
    seed: int,
    settings: ConditionalSettings | None = None,
) -> pl.DataFrame:
    """Rows decoded from one latent draw per entry of ``components``, all of ``group``."""
    batch_rows = (settings or ConditionalSettings()).batch_rows
    z = generator.prior.sample_components(components, seed=seed)
    sensitive = np.tile(np.asarray(group, dtype=np.int64), (len(components), 1))
    features, label = decode_latents(
        generator.teacher.decoder,
        generator.teacher.labeller(),
        z,
        sensitive,
        generator.codec.sensitive_level_counts,
        seed=seed,
        criterion=generator.teacher.criterion,
        batch_size=batch_rows,
    )
    return generator.to_frame(EncodedTable(features=features, sensitive=sensitive, label=label))


def _draw_until_full(
    generator: ConditionalGenerator,
    conditions: ConditionSet,
    group: tuple[int, ...],
    targets: np.ndarray,
    rates: np.ndarray,
    settings: ConditionalSettings,
    seed: int,
    index: int,
) -> tuple[pl.DataFrame, int]:
    """Each component's first ``targets[k]`` accepted rows, drawn batch by batch."""
    remaining = targets.astype(np.int64).copy()
    tried = np.zeros(len(targets), np.int64)
    hits = np.zeros(len(targets), np.int64)
    limit = _draw_limit(int(targets.sum()), settings)
    parts: list[pl.DataFrame] = []
    batch = 0
    while remaining.sum() > 0:
        estimate = np.where(tried > 0, (hits + 1) / (tried + 1), rates)
        need = np.divide(remaining, estimate, out=np.zeros(len(targets)), where=remaining > 0)
        # A component that accepts everything needs exactly its rows; others a margin.
        wanted = np.where(estimate >= 1.0, remaining, np.ceil(need * settings.overdraw))
        wanted = _fit_batch(wanted.astype(np.int64), settings.batch_rows)
        components = np.repeat(np.arange(len(targets)), wanted)
        frame = _decode_components(
            generator, group, components, _seed(seed, index, 3 + batch), settings
        )
        accepted = conditions.mask(frame)
        keep = _first_accepted(components, accepted, remaining)
        parts.append(frame.filter(pl.Series(keep)))
        remaining -= np.bincount(components[keep], minlength=len(targets))
        tried += wanted
        hits += np.bincount(components[accepted], minlength=len(targets))
        batch += 1
        if remaining.sum() > 0 and tried.sum() >= limit:
            raise _too_rare(conditions, generator, group, int(tried.sum()), int(hits.sum()))
    empty = generator.to_frame(_empty(generator))
    return (pl.concat(parts) if parts else empty), int(tried.sum())


def _fit_batch(wanted: np.ndarray, batch_rows: int) -> np.ndarray:
    """``wanted`` draws per component scaled into one batch, every wanting component >= 1."""
    total = int(wanted.sum())
    if total <= batch_rows:
        return wanted
    scaled = np.floor(wanted * (batch_rows / total)).astype(np.int64)
    return np.where(wanted > 0, np.maximum(scaled, 1), 0)


def _first_accepted(
    components: np.ndarray, accepted: np.ndarray, remaining: np.ndarray
) -> np.ndarray:
    """Mask of each component's first ``remaining[k]`` accepted rows, in row order.

    ``components`` is sorted (one contiguous run per component, as np.repeat makes it), so
    an accepted row's rank within its component is its distance from the run's first.
    """
    rows = np.flatnonzero(accepted)
    owners = components[rows]
    rank = np.arange(len(rows)) - np.searchsorted(owners, owners, side="left")
    keep = np.zeros(len(components), dtype=bool)
    keep[rows[rank < remaining[owners]]] = True
    return keep


def _draw_limit(rows: int, settings: ConditionalSettings) -> int:
    return min(settings.max_draws, max(rows * settings.max_draws_per_row, settings.batch_rows))


def _refuse_too_many_draws(
    conditions: ConditionSet,
    group: tuple[int, ...],
    generator: ConditionalGenerator,
    targets: np.ndarray,
    rates: np.ndarray,
    estimated: float,
    settings: ConditionalSettings,
) -> None:
    kept = rates > 0
    expected = float((targets[kept] / rates[kept]).sum())
    if expected > _draw_limit(int(targets.sum()), settings):
        raise ConditionError(
            f"{conditions.describe()} is too rare in the group "
            f"{_group_text(generator.codec, group)}: about {estimated:.1e} of its generated "
            f"rows meet it, and {int(targets.sum()):,} rows would take about {expected:,.0f} "
            "draws",
            rule="condition-rare",
            hint="ask for fewer rows, or relax the condition",
        )


def _too_rare(
    conditions: ConditionSet,
    generator: ConditionalGenerator,
    group: tuple[int, ...],
    tried: int,
    hits: int,
) -> ConditionError:
    return ConditionError(
        f"{conditions.describe()} is too rare in the group {_group_text(generator.codec, group)}: "
        f"{hits:,} of {tried:,} draws met it (rate {hits / max(tried, 1):.1e})",
        rule="condition-rare",
        hint="ask for fewer rows, or relax the condition",
    )


def _component_weights(generator: ConditionalGenerator, group: tuple[int, ...]) -> np.ndarray:
    """The group's component weights, as the prior draws them for its rows."""
    prior = generator.prior
    index = int(
        joint_group_index(
            np.asarray([group], dtype=np.int64), generator.codec.sensitive_level_counts
        )[0]
    )
    if prior.group_weights is not None and 0 <= index < prior.group_weights.shape[1]:
        weights = prior.group_weights[:, index]
    else:
        weights = prior.weights
    return np.asarray(weights, dtype=np.float64) / float(np.sum(weights))


def _group_names(codec: TabularCodec, group: Sequence[int]) -> dict[str, str]:
    return {
        column: levels[level]
        for column, levels, level in zip(
            codec.sensitive_columns, codec.sensitive_levels, group, strict=True
        )
    }


def _group_text(codec: TabularCodec, group: Sequence[int]) -> str:
    return ", ".join(f"{column}={value}" for column, value in _group_names(codec, group).items())


def _empty(generator: ConditionalGenerator) -> EncodedTable:
    attributes = len(generator.codec.sensitive_columns)
    return EncodedTable(
        features=np.zeros((0, generator.codec.feature_dim), np.float32),
        sensitive=np.zeros((0, attributes), np.int64),
        label=np.zeros(0, np.int64),
    )


def _seed(seed: int, *parts: int) -> int:
    """A seed for one step (group, phase, batch), independent of every other step's."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(1, dtype=np.uint32)[0])
