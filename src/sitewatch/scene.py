"""Scene: bands of one acquisition on a Grid, with a valid mask and provenance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitewatch.grid import Grid

__all__ = ["Scene"]


@dataclass(frozen=True, eq=False)
class Scene:
    """One acquisition resampled onto a :class:`~sitewatch.grid.Grid`.

    Parameters
    ----------
    data : (B, H, W) float32 ndarray
        Band values (source units, scale/offset applied when the file declares them).
    valid : (H, W) bool ndarray
        True where every band holds an observation.
    band_names : tuple of str
        One name per band (``B02`` ... for Sentinel-2, ``b1`` ... otherwise).
    grid : Grid
        The grid ``data`` lies on.
    acquired : str, optional
        ISO date of acquisition when known.
    provenance : mapping
        Where the pixels came from (paths, hashes, source CRS, band files).

    Raises
    ------
    ValueError
        If shapes disagree with each other or with the grid.
    """

    data: np.ndarray
    valid: np.ndarray
    band_names: tuple[str, ...]
    grid: Grid
    acquired: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"Scene data must be (bands, H, W); got shape {self.data.shape}")
        if self.data.shape[1:] != self.grid.shape:
            raise ValueError(f"data {self.data.shape[1:]} does not match grid {self.grid.shape}")
        if self.valid.shape != self.grid.shape or self.valid.dtype != bool:
            raise ValueError(f"valid must be a bool {self.grid.shape} mask")
        if len(self.band_names) != self.data.shape[0]:
            raise ValueError(f"{len(self.band_names)} band names for {self.data.shape[0]} bands")

    @property
    def count(self) -> int:
        """Number of bands."""
        return int(self.data.shape[0])
