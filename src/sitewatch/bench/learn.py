"""Training the ``learned`` method on labelled datasets, and its leave-one-out folds.

:func:`sample_features` runs the detection engine's own ``learned`` views on every
labelled pair of a dataset (:func:`sitewatch.detect.engine.view_z`: the same views,
robust scales and code the method scores with) and draws a stratified sample of
labelled pixels; :func:`sitewatch.detect.learned.train` fits the model on the samples
of several datasets. ``scripts/train_learned.py`` trains the shipped model on every
dataset under ``../shared/data``; ``sitewatch bench suite ROOT --method learned``
scores each dataset with a model trained on the others (:func:`fold_models`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sitewatch.detect.learned import LearnedModel, train
from sitewatch.errors import InputError

if TYPE_CHECKING:
    from sitewatch.bench.suite import SuiteDataset

__all__ = ["PER_DATASET", "fold_models", "sample_features", "train_model"]

PER_DATASET = 40_000
"""Labelled pixels sampled per dataset (half changed, half not, where there are enough)."""

Sample = tuple[np.ndarray, np.ndarray, float]


def sample_features(
    dataset: SuiteDataset, *, per_dataset: int = PER_DATASET, seed: int = 0
) -> Sample:
    """The robust z of the ``learned`` views at a stratified sample of labelled pixels.

    Each pair contributes up to ``per_dataset / (2 × pairs)`` changed and as many
    unchanged pixels, drawn at random (reproducibly, from ``seed``) among its valid,
    labelled pixels.

    Returns
    -------
    z : (n, len(FEATURES)) float32 ndarray
    truth : (n,) bool ndarray
    share : float
        Share of changed pixels among all the dataset's labelled pixels.
    """
    from sitewatch.detect.engine import view_z

    rng = np.random.default_rng(seed)
    each = max(1, per_dataset // (2 * max(1, len(dataset.entries))))
    zs, ts = [], []
    n_pos = n_all = 0
    for pair in dataset.read():
        ev = pair.valid if pair.labelled is None else pair.valid & pair.labelled
        views = view_z(
            pair.before, pair.after, pair.valid, method="learned", band_names=pair.band_names
        )
        flat = np.flatnonzero(ev)
        truth = pair.truth.reshape(-1)[flat]
        n_pos += int(truth.sum())
        n_all += truth.size
        picks = []
        for cls in (True, False):
            idx = flat[truth == cls]
            if idx.size:
                picks.append(rng.choice(idx, min(each, idx.size), replace=False))
        px = np.sort(np.concatenate(picks))
        zs.append(np.stack([v.reshape(-1)[px] for v in views], axis=1))
        ts.append(pair.truth.reshape(-1)[px].astype(bool))
    return np.concatenate(zs).astype(np.float32), np.concatenate(ts), n_pos / max(n_all, 1)


def train_model(samples: Mapping[str, Sample], *, exclude: Sequence[str] = ()) -> LearnedModel:
    """The model trained on every sampled dataset but ``exclude``.

    Raises
    ------
    InputError
        Nothing left to train on, or a dataset without both classes.
    """
    drop = set(exclude)
    use = {k: v for k, v in samples.items() if k not in drop}
    if not use:
        raise InputError(
            "no labelled dataset left to train the learned method on; "
            "give a folder with at least two datasets"
        )
    try:
        return train(
            {k: (z, t) for k, (z, t, _) in use.items()}, shares={k: v[2] for k, v in use.items()}
        )
    except ValueError as exc:
        raise InputError(f"cannot train the learned method: {exc}") from None


def fold_models(
    datasets: Sequence[SuiteDataset],
    folder: str | Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Leave-one-dataset-out models: for each dataset, one trained on all the others.

    Every dataset is sampled once (:func:`sample_features`); the models are written to
    ``folder/learned-without-<name>.json``.

    Raises
    ------
    InputError
        Fewer than two datasets.
    """
    if len(datasets) < 2:
        raise InputError(
            "the learned method is scored leave-one-dataset-out, which needs at least two "
            "datasets under ROOT"
        )
    samples = {}
    for d in datasets:
        samples[d.name] = sample_features(d)
        if progress is not None:
            n, pos = samples[d.name][1].size, int(samples[d.name][1].sum())
            progress(f"learned: sampled {d.name}: {n} pixels ({pos} changed)")
    out = {}
    for d in datasets:
        path = Path(folder) / f"learned-without-{d.name}.json"
        train_model(samples, exclude=[d.name]).save(path)
        out[d.name] = path
    return out
