"""The report's figures drawn with Pillow: a title band over an image panel.

A :class:`Figure` is a white page with a title band and one image panel, on which
outlines, labels, a scale bar and a north arrow are drawn in the panel's own pixels
(so nothing spills outside it), and, for the score page, a colour bar to its right.
Sizes are given in points at the figure's ``dpi`` (1 pt = dpi / 72 px), with the
layout, font (DejaVu Sans, shipped with matplotlib) and colours of the matplotlib
figures these replace: a chip takes a few milliseconds instead of the 20-45 ms an
Axes took to build and draw, and a report no longer imports matplotlib (half a
second).
"""

from __future__ import annotations

import importlib.util
import math
import textwrap
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["Figure", "colormap_rgb", "figure_size", "nice_ticks"]

Color = tuple[int, int, int]

TITLE_PT = 9.0
"""Size of a figure's title, in points."""
BLACK: Color = (0, 0, 0)
WHITE: Color = (255, 255, 255)

# matplotlib's "magma" colour map (Smith & van der Walt, CC0): 256 entries, hex RGB.
_MAGMA_HEX = (
    "00000401000501010601010802010902020b02020d03030f03031204041405041606051806051a07061c08071e090720"
    "0a08220b09240c09260d0a290e0b2b100b2d110c2f120d31130d34140e36150e38160f3b180f3d19103f1a10421c1044"
    "1d11471e114920114b21114e22115024125325125527125829115a2a115c2c115f2d11612f1163311165331067341069"
    "36106b38106c390f6e3b0f703d0f713f0f72400f74420f75440f764510774710784910784a10794c117a4e117b4f127b"
    "51127c52137c54137d56147d57157e59157e5a167e5c167f5d177f5f187f601880621980641a80651a80671b80681c81"
    "6a1c816b1d816d1d816e1e81701f81721f817320817521817621817822817922827b23827c23827e2482802582812581"
    "8326818426818627818827818928818b29818c29818e2a81902a81912b81932b80942c80962c80982d80992d809b2e7f"
    "9c2e7f9e2f7fa02f7fa1307ea3307ea5317ea6317da8327daa337dab337cad347cae347bb0357bb2357bb3367ab5367a"
    "b73779b83779ba3878bc3978bd3977bf3a77c03a76c23b75c43c75c53c74c73d73c83e73ca3e72cc3f71cd4071cf4070"
    "d0416fd2426fd3436ed5446dd6456cd8456cd9466bdb476adc4869de4968df4a68e04c67e24d66e34e65e44f64e55064"
    "e75263e85362e95462ea5661eb5760ec5860ed5a5fee5b5eef5d5ef05f5ef1605df2625df2645cf3655cf4675cf4695c"
    "f56b5cf66c5cf66e5cf7705cf7725cf8745cf8765cf9785df9795df97b5dfa7d5efa7f5efa815ffb835ffb8560fb8761"
    "fc8961fc8a62fc8c63fc8e64fc9065fd9266fd9467fd9668fd9869fd9a6afd9b6bfe9d6cfe9f6dfea16efea36ffea571"
    "fea772fea973feaa74feac76feae77feb078feb27afeb47bfeb67cfeb77efeb97ffebb81febd82febf84fec185fec287"
    "fec488fec68afec88cfeca8dfecc8ffecd90fecf92fed194fed395fed597fed799fed89afdda9cfddc9efddea0fde0a1"
    "fde2a3fde3a5fde5a7fde7a9fde9aafdebacfcecaefceeb0fcf0b2fcf2b4fcf4b6fcf6b8fcf7b9fcf9bbfcfbbdfcfdbf"
)


@lru_cache(maxsize=1)
def _magma() -> np.ndarray:
    return np.frombuffer(bytes.fromhex("".join(_MAGMA_HEX)), dtype=np.uint8).reshape(256, 3)


def colormap_rgb(values: np.ndarray, vmin: float, vmax: float, *, bad: float = 0.85) -> np.ndarray:
    """``values`` through the magma colour map: ``(..., 3)`` uint8, ``bad`` grey where not finite.

    ``vmin`` maps to the first colour and ``vmax`` (and above) to the last, like
    matplotlib's ``imshow(values, cmap="magma", vmin=vmin, vmax=vmax)``.

    Examples
    --------
    >>> colormap_rgb(np.array([0.0, 1.0, np.nan]), 0.0, 1.0).tolist()
    [[0, 0, 4], [252, 253, 191], [217, 217, 217]]
    """
    v = np.asarray(values, dtype=np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    finite = np.isfinite(v)
    with np.errstate(invalid="ignore"):
        idx = np.clip((v - vmin) / span * 256, 0, 255)
    out = _magma()[np.where(finite, idx, 0).astype(np.intp)]
    out[~finite] = round(bad * 255)
    return out


def figure_size(
    size_px: tuple[float, float],
    title: str,
    *,
    dpi: int,
    right_px: float = 0.0,
    min_width_in: float = 2.4,
    max_width_in: float = 7.0,
    fontsize: float = TITLE_PT,
) -> tuple[float, float, list[str]]:
    """Width and height in pixels of a :class:`Figure` around ``size_px``, and its title's lines.

    The page is widened (up to ``max_width_in``) so the title fits; a longer title is
    wrapped onto more lines.
    """
    w_px, h_px = size_px
    margin = 0.1 * dpi
    char_in = 0.6 * fontsize / 72  # DejaVu Sans: about 0.6 em per character
    fig_w = max(
        w_px + 2 * margin + right_px,
        min(len(title) * char_in + 0.3, max_width_in) * dpi,
        min_width_in * dpi,
    )
    lines = textwrap.wrap(title, width=max(10, int((fig_w / dpi - 0.2) / char_in))) or [""]
    title_px = (0.14 + len(lines) * 1.25 * fontsize / 72) * dpi
    return fig_w, h_px + title_px + margin, lines


def nice_ticks(vmin: float, vmax: float, *, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 x 10^k apart) inside ``[vmin, vmax]``, about ``n``.

    Examples
    --------
    >>> nice_ticks(0, 54)
    [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    >>> nice_ticks(-1, 1)
    [-1.0, -0.5, 0.0, 0.5, 1.0]
    """
    if not (math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin):
        return []
    raw = (vmax - vmin) / n
    exp = 10.0 ** math.floor(math.log10(raw))
    step = next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= raw)
    first = math.ceil(vmin / step - 1e-9)
    ticks = []
    k = first
    while k * step <= vmax + 1e-9 * step:
        ticks.append(round(k * step, 12) + 0.0)
        k += 1
    return ticks


def _font_dir() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    return folder if folder.is_dir() else None


@lru_cache(maxsize=32)
def font(size_px: int, *, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (bold) at ``size_px`` pixels; Pillow's own font if it cannot be found."""
    folder = _font_dir()
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    if folder is not None and (folder / name).is_file():
        return ImageFont.truetype(str(folder / name), size=max(1, size_px))
    return ImageFont.load_default(size=max(1, size_px))


class Figure:
    """A white page: a title band, an image panel of ``size_px`` (w, h) pixels, a margin.

    Everything drawn on the panel is clipped to it. ``right_px`` leaves room right of
    the panel (the colour bar). The panel maps the data window set by :meth:`show`
    (grid columns and rows, y down) onto its pixels.

    Attributes
    ----------
    page : PIL.Image.Image
        The whole figure (RGB).
    panel : PIL.Image.Image
        The image panel (RGBA while drawing; pasted into ``page`` by :meth:`rgb`).
    box : (int, int, int, int)
        The panel's (left, top, right, bottom) on the page.
    labels : list of (str, (float, float, float, float) or None)
        Every text label drawn on the panel with its box in panel pixels (None: not
        shown), for checking the layout.
    """

    def __init__(
        self,
        size_px: tuple[float, float],
        title: str,
        *,
        dpi: int,
        right_px: float = 0.0,
        min_width_in: float = 2.4,
    ) -> None:
        fontsize = TITLE_PT
        fig_w, fig_h, lines = figure_size(
            size_px, title, dpi=dpi, right_px=right_px, min_width_in=min_width_in
        )
        self.dpi = dpi
        self.pt = dpi / 72.0
        w, h = max(1, round(size_px[0])), max(1, round(size_px[1]))
        width, height = round(fig_w), round(fig_h)
        left = round((fig_w - right_px - size_px[0]) / 2)
        top = height - round(0.1 * dpi) - h
        self.page = Image.new("RGB", (width, height), WHITE)
        self.panel = Image.new("RGBA", (w, h), (*WHITE, 255))
        self.box = (left, top, left + w, top + h)
        self.view = (0.0, float(w), 0.0, float(h))
        self.labels: list[tuple[str, tuple[float, float, float, float] | None]] = []
        draw = ImageDraw.Draw(self.page)
        f = font(self.px(fontsize))
        y = 0.07 * dpi
        step = 1.2 * fontsize * self.pt
        for line in lines:
            draw.text((width / 2, y), line, fill=BLACK, font=f, anchor="ma")
            y += step

    # ------------------------------------------------------------------ units
    def px(self, points: float) -> int:
        """``points`` in whole pixels (at least 1)."""
        return max(1, round(points * self.pt))

    @property
    def size(self) -> tuple[int, int]:
        """The panel's (width, height) in pixels."""
        return self.panel.size

    def to_panel(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Data coordinates (grid columns, rows) to panel pixels."""
        x0, x1, y0, y1 = self.view
        w, h = self.panel.size
        return (np.asarray(x) - x0) * w / (x1 - x0), (np.asarray(y) - y0) * h / (y1 - y0)

    @property
    def per_px(self) -> float:
        """Data units (grid pixels) per panel pixel along x."""
        return (self.view[1] - self.view[0]) / self.panel.size[0]

    # ------------------------------------------------------------------ drawing
    def show(self, image: np.ndarray, *, upsampled: bool) -> None:
        """Fill the panel with ``image`` ((h, w, 3) float 0..1 or uint8, row 0 at the top).

        Nearest neighbour when the panel is at least as large as the image (every grid
        pixel a visible block); otherwise a Lanczos reduction.
        """
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            if np.isnan(arr).any():
                arr = np.where(np.isnan(arr), np.float32(0.85), arr)
            arr = (np.clip(arr, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
        im = Image.fromarray(np.ascontiguousarray(arr[..., :3]), mode="RGB")
        h, w = arr.shape[:2]
        self.view = (0.0, float(w), 0.0, float(h))
        how = Image.Resampling.NEAREST if upsampled else Image.Resampling.LANCZOS
        size = self.panel.size
        scaled = (
            im if im.size == size else im.resize(size, how, reducing_gap=None if upsampled else 3.0)
        )
        self.panel.paste(scaled.convert("RGBA"), (0, 0))

    def lines(
        self,
        paths: Sequence[np.ndarray],
        *,
        color: str | Color,
        width_pt: float,
        halo_pt: float,
        offset: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Polylines ``(N, 2)`` of (col, row) in ``color`` over a black halo."""
        draw = ImageDraw.Draw(self.panel)
        for under, colour in ((halo_pt, BLACK), (width_pt, color)):
            for path in paths:
                x, y = self.to_panel(path[:, 0] - offset[0], path[:, 1] - offset[1])
                xy = list(zip(x.tolist(), y.tolist(), strict=True))
                if len(xy) >= 2:
                    draw.line(xy, fill=colour, width=self.px(under), joint="curve")

    def _text(
        self, text: str, size_pt: float, bold: bool, halo_pt: float
    ) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, int, tuple[float, ...]]:
        """A label's font, halo width in pixels and ink box (as Pillow draws it at 0, 0)."""
        f = font(self.px(size_pt), bold=bold)
        stroke = self.px(halo_pt / 2) if halo_pt else 0
        return f, stroke, tuple(f.getbbox(text, stroke_width=stroke))

    def text_size(
        self, text: str, *, size_pt: float, bold: bool = False, halo_pt: float = 0
    ) -> tuple[int, int]:
        """(width, height) in panel pixels of a label as :meth:`label` draws it."""
        x0, y0, x1, y1 = self._text(text, size_pt, bold, halo_pt)[2]
        return round(x1 - x0), round(y1 - y0)

    def label(
        self,
        xy: tuple[float, float] | None,
        text: str,
        *,
        color: str | Color,
        size_pt: float,
        bold: bool = False,
        halo_pt: float = 0.0,
    ) -> None:
        """``text`` with its top-left at panel pixel ``xy`` (None: recorded, not drawn)."""
        if xy is None:
            self.labels.append((text, None))
            return
        f, stroke, (x0, y0, x1, y1) = self._text(text, size_pt, bold, halo_pt)
        pos = (xy[0] - x0, xy[1] - y0)
        ImageDraw.Draw(self.panel).text(
            pos, text, fill=color, font=f, stroke_width=stroke, stroke_fill=BLACK
        )
        self.labels.append((text, (xy[0], xy[1], xy[0] + x1 - x0, xy[1] + y1 - y0)))

    def _box(self, rect: tuple[float, float, float, float], *, radius: float = 0.0) -> None:
        """A white box at 75 % opacity on the panel."""
        layer = Image.new("RGBA", self.panel.size, (255, 255, 255, 0))
        ImageDraw.Draw(layer).rounded_rectangle(
            [round(v) for v in rect], radius=round(radius), fill=(255, 255, 255, 191)
        )
        self.panel.alpha_composite(layer)

    def scale_bar(self, *, length_px: float, text: str) -> None:
        """A black bar of ``length_px`` panel pixels over ``text``, in a box at the lower left."""
        f = font(self.px(7))
        tx0, ty0, tx1, ty1 = f.getbbox(text)
        pad, border, sep = 0.3 * 7 * self.pt, 0.4 * 7 * self.pt, 3 * self.pt
        bar_h = max(1.0, 3.0 * self.dpi / 100)
        inner_w = max(length_px, tx1 - tx0)
        inner_h = bar_h + sep + (ty1 - ty0)
        x0 = border
        y1 = self.panel.size[1] - border
        y0 = y1 - inner_h - 2 * pad
        self._box((x0, y0, x0 + inner_w + 2 * pad, y1))
        cx = x0 + pad + inner_w / 2
        draw = ImageDraw.Draw(self.panel)
        draw.rectangle(
            [
                round(cx - length_px / 2),
                round(y0 + pad),
                round(cx + length_px / 2),
                round(y0 + pad + bar_h) - 1,
            ],
            fill=BLACK,
        )
        draw.text((cx, y0 + pad + bar_h + sep - ty0), text, fill=BLACK, font=f, anchor="mt")

    def north_arrow(self, *, georeferenced: bool) -> None:
        """An arrow pointing up in a white box at the top right: N, or "image up"."""
        w, h = self.panel.size
        k = min(1.0, max(0.6, h / self.pt / 70))
        p = k * self.pt  # one scaled point in pixels
        label, half, size = ("N", 8.0, 8.0) if georeferenced else ("image up", 19.0, 6.5)
        cx = w - (half + 5) * p
        self._box((cx - half * p, 5 * p, cx + half * p, 43 * p), radius=2 * p)
        draw = ImageDraw.Draw(self.panel)
        lw = self.px(1.4 * k)
        tip, tail = 18 * p, 40 * p
        head_l, head_w = 10 * 0.4 * p * 1.4, 10 * 0.2 * p * 1.4
        draw.line([(cx, tail), (cx, tip + head_l * 0.5)], fill=BLACK, width=lw)
        draw.polygon(
            [(cx, tip), (cx - head_w, tip + head_l), (cx + head_w, tip + head_l)], fill=BLACK
        )
        draw.text(
            (cx, 6 * p),
            label,
            fill=BLACK,
            font=font(max(1, round(size * p)), bold=True),
            anchor="ma",
        )

    def colorbar(
        self,
        vmin: float,
        vmax: float,
        *,
        extend_max: bool,
        label: str,
        mark: float | None,
        mark_color: str | Color,
    ) -> None:
        """The magma colour bar right of the panel: ticks, a two-line label, ``mark`` as a line."""
        _, top, right, bottom = self.box
        pw = self.page.size[0]
        x0 = round(right + 0.02 * pw)
        x1 = x0 + max(4, round(0.025 * pw))
        height = bottom - top
        tri = round(0.05 * height) if extend_max else 0
        y_top = top + tri  # the top of the gradient; the triangle above it
        n = bottom - y_top
        values = vmin + (vmax - vmin) * (np.arange(n)[::-1] + 0.5) / n
        strip = colormap_rgb(values, vmin, vmax)[:, None, :].repeat(x1 - x0, axis=1)
        self.page.paste(Image.fromarray(np.ascontiguousarray(strip), mode="RGB"), (x0, y_top))
        draw = ImageDraw.Draw(self.page)
        apex = [((x0 + x1) / 2, top)] if tri else []  # the extension's tip
        if tri:
            top_colour = tuple(int(c) for c in colormap_rgb(np.array([vmax]), vmin, vmax)[0])
            draw.polygon([(x0, y_top), *apex, (x1, y_top)], fill=top_colour)
        outline = [(x0, bottom), (x0, y_top), *apex, (x1, y_top), (x1, bottom), (x0, bottom)]
        draw.line(outline, fill=BLACK, width=1)

        def at(v: float) -> float:
            return bottom - (v - vmin) / (vmax - vmin) * n

        if mark is not None and vmin <= mark <= vmax:
            y = at(mark)
            draw.line([(x0, y), (x1, y)], fill=mark_color, width=self.px(2))
        f = font(self.px(7))
        tick = 3.5 * self.pt
        text_right = x1
        for v in nice_ticks(vmin, vmax):
            y = at(v)
            draw.line([(x1, y), (x1 + tick, y)], fill=BLACK, width=1)
            text = f"{v:g}"
            draw.text((x1 + tick + 3.5 * self.pt, y), text, fill=BLACK, font=f, anchor="lm")
            text_right = max(text_right, x1 + tick + 3.5 * self.pt + f.getlength(text))
        # the label, turned a quarter to read bottom to top, beside the tick labels
        lines = label.split("\n")
        line_h = round(1.2 * 7 * self.pt)
        width = max(round(f.getlength(t)) for t in lines) + 2
        strip_im = Image.new("RGB", (width, line_h * len(lines)), WHITE)
        sd = ImageDraw.Draw(strip_im)
        for i, t in enumerate(lines):
            sd.text((width / 2, i * line_h), t, fill=BLACK, font=f, anchor="ma")
        turned = strip_im.rotate(90, expand=True)
        tx = round(text_right + 4 * self.pt)
        ty = round((top + bottom) / 2 - turned.size[1] / 2)
        if tx + turned.size[0] <= pw:
            self.page.paste(turned, (tx, ty))

    # ------------------------------------------------------------------ output
    def rgb(self) -> np.ndarray:
        """The finished figure as an ``(H, W, 3)`` uint8 array (panel pasted, framed)."""
        self.page.paste(self.panel.convert("RGB"), self.box[:2])
        left, top, right, bottom = self.box
        ImageDraw.Draw(self.page).rectangle(
            [left - 1, top - 1, right, bottom], outline=BLACK, width=1
        )
        return np.asarray(self.page)
