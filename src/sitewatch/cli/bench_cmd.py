"""``sitewatch bench``: score the detector on labelled change-detection data.

``sitewatch bench oscd ROOT --split train`` and ``sitewatch bench pairs DIR`` print a
table (one row per city/pair, then the pooled row; precision, recall, F1, IoU, AUC-PR,
seconds) and, with ``--json OUT``, write the results atomically.

JSON: with one method, ``{"method", "pooled": {"precision", "recall", "f1", "iou",
"auc_pr", "counts"}, "auc_pr_mean", "cities" | "pairs": {name: {same keys,
"seconds"}}, "seconds", "dataset", "split", "params"}``. With ``--method all`` every
method in the detector's ``SCORERS`` runs on each city/pair (read once) and the
document is ``{"methods": {name: <the one-method shape>}, "seconds", "dataset",
"split", "params"}``; each method's ``seconds`` is its own detection time, the
top-level ``seconds`` the wall time including reads. The table then has one pooled
row per method, followed by a per-city/pair F1 table with one column per method.

``sitewatch bench suite ROOT`` runs every dataset found under ROOT (the layout of
``../shared/data``; see :mod:`sitewatch.bench.suite`) and prints one row per dataset
(pixels, F1, precision, recall, AUC-PR, the same-run CVA + Otsu baseline F1, the ratio),
macro-F1, the oracle threshold of each dataset (the best F1 one threshold on the pooled
score reaches, labels known, beside the F1 of flagging every pixel: how far a threshold
rule alone could go), the objects (labelled objects found, flagged regions on change,
flagged regions per found object, beside the baseline's), and the SpaceNet 7 timeline
figures. JSON: ``{"datasets": {NAME: {"pooled": {..., "objects": {"labelled", "found",
"regions", "on_change", "pieces", "found_share", "on_change_share", "pieces_per_found"}},
"baseline": {...}, "ratio": R, "pixels", "oracle_threshold": {"f1",
"flagged_share", "flag_all_f1"}, "cities" | "pairs" | "crops": {...}, ...}}, "macro_f1": F,
"macro_f1_baseline", "spacenet7_timeline": {...}, "options",
"skipped", "seconds": S}``. With ``--leave-one-out`` each dataset is scored with the
tunables' configuration chosen on the other datasets, and each record adds "chosen",
"default" and "f1_by_config" (top level: "macro_f1_default", "leave_one_out").
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitewatch.cli._common import add_detector_options, detector_options, positive_float
from sitewatch.detect.options import AUTO, METHODS, STEP_FDR, DetectOptions
from sitewatch.errors import InputError, OutputError

if TYPE_CHECKING:
    from sitewatch.bench.pairs import BenchResult, MethodResult

__all__ = ["check_json_out", "format_result", "register", "write_json_atomic"]

ALL = "all"


def _method_arg(text: str) -> str:
    """Argparse type: a name in the detector's SCORERS (looked up now), or ``all``."""
    from sitewatch.detect import methods as _methods

    known = [AUTO, *_methods.SCORERS, ALL]
    if text not in known:
        raise argparse.ArgumentTypeError(f"unknown method {text!r}; choose from {', '.join(known)}")
    return text


def _add_common(p: argparse.ArgumentParser) -> None:
    default = DetectOptions().method
    p.add_argument(
        "--method",
        type=_method_arg,
        default=default,
        metavar="M",
        help=f"change score: one of {', '.join(METHODS)}, or '{ALL}' to run every "
        f"method on each image read once (default: {default})",
    )
    add_detector_options(p, with_method=False)
    p.add_argument(
        "--json",
        metavar="OUT",
        help="also write the results as JSON to OUT (written atomically)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument(
        "--no-baseline",
        action="store_false",
        dest="baseline",
        help="skip the reference run of CVA + Otsu on the same pixels",
    )


def register(sub: Any) -> None:
    """Add the ``bench`` subcommand (``bench oscd``, ``pairs``, ``suite``, ``speed``)."""
    p = sub.add_parser(
        "bench",
        help="score the detector on labelled change-detection data",
        description="Run the shipped detector on labelled image pairs and report pixel "
        "precision, recall, F1, IoU and AUC-PR per city/pair and pooled over all pixels.",
    )
    bsub = p.add_subparsers(dest="dataset", metavar="DATASET")
    bsub.required = True

    o = bsub.add_parser(
        "oscd",
        help="the OSCD Sentinel-2 benchmark (13 bands, every pixel of every city)",
        description="OSCD protocol: all 13 bands of both dates resampled onto the 10 m B02 "
        "grid of imgs_1; labels from <city>-cm.tif (2 = change) or cm.png (> 127); every "
        "pixel of every city in the split; the detector never sees the labels.",
    )
    o.add_argument(
        "root",
        metavar="ROOT",
        help="folder holding 'Onera Satellite Change Detection dataset - Images' and the "
        "split's labels folder",
    )
    o.add_argument("--split", required=True, choices=("train", "test"), help="OSCD split")
    _add_common(o)
    o.set_defaults(func=main_oscd)

    q = bsub.add_parser(
        "pairs",
        help="labelled pairs in a folder (im1/im2/gt, A/B/label, or sparse change masks)",
        description="Every folder under DIR holding im1/im2/gt images (PNG/BMP/TIF, gt > 127 "
        "= change), A/ B/ label/ folders of same-named images (LEVIR-CD, DSIFN-CD), or two "
        "rasters plus change/unchanged masks (sparse: only labelled pixels count; the "
        "earlier raster by file-name date is the before image).",
    )
    q.add_argument("folder", metavar="DIR", help="folder searched recursively for pairs")
    q.add_argument(
        "--pixel-size",
        type=positive_float,
        default=1.0,
        metavar="M",
        dest="pixel_size",
        help="nominal pixel size in metres of images without CRS (default: 1.0); the "
        "minimum mapping unit is in m² at that size. Georeferenced pairs use their CRS.",
    )
    _add_common(q)
    q.set_defaults(func=main_pairs)
    _register_suite(bsub)
    _register_speed(bsub)


def _methods_for(choice: str) -> tuple[str, ...]:
    from sitewatch.detect import methods as _methods

    return tuple(_methods.SCORERS) if choice == ALL else (choice,)


def check_json_out(out: str | None, *, overwrite: bool) -> Path | None:
    """Check early (before a long run) that ``--json OUT`` can be written."""
    if out is None:
        return None
    path = Path(out).expanduser().absolute()
    if path.is_dir():
        raise OutputError(f"--json {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputError(f"{path} exists; add --overwrite or choose another --json file")
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist; create it or choose another")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"folder {path.parent} is not writable; choose another --json file")
    return path


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write JSON to a temporary file next to ``path``, then rename it into place."""
    text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"writing {path} failed ({err.strerror or err})") from err


def _row(name: str, width: int, values: Sequence[float], seconds: float) -> str:
    cells = "".join(f"{v:>10.4f}" for v in values)
    return f"{name:<{width}}{cells}{seconds:>9.2f}"


def _baseline_name() -> str:
    from sitewatch.bench.pairs import BASELINE_NAME

    return BASELINE_NAME


def _metric_values(m: MethodResult, i: int | None = None) -> list[float]:
    if i is None:
        c, ap = m.counts, m.auc_pr
    else:
        c, ap = m.entries[i].counts, m.entries[i].auc_pr
    return [c.precision, c.recall, c.f1, c.iou, ap]


def format_result(result: BenchResult, *, grouped: bool) -> str:
    """The text table printed by ``sitewatch bench``."""
    kind = "city" if result.entry_key == "cities" else "pair"
    first = result.methods[0]
    names = [e.name for e in first.entries]
    what = f"{result.dataset}" + (f" {result.split} split" if result.split else "")
    n = f"{len(names)} {result.entry_key if len(names) != 1 else kind}"
    head = f"{'precision':>10}{'recall':>10}{'F1':>10}{'IoU':>10}{'AUC-PR':>10}{'s':>9}"
    lines = []
    if not grouped:
        width = max(len(kind), len("pooled"), *map(len, names)) + 2
        lines.append(f"sitewatch bench {what}: {n}, method {first.method}")
        lines.append(f"{kind:<{width}}{head}")
        for i, name in enumerate(names):
            lines.append(_row(name, width, _metric_values(first, i), first.entries[i].seconds))
        lines.append("-" * (width + len(head)))
        lines.append(_row("pooled", width, _metric_values(first), first.seconds))
        lines.append(f"AUC-PR mean over {result.entry_key}: {first.auc_pr_mean:.4f}")
    else:
        methods = [m.method for m in result.methods]
        width = max(len("method"), *map(len, methods)) + 2
        lines.append(f"sitewatch bench {what}: {n}, methods {', '.join(methods)}")
        lines.append("pooled over all pixels, one row per method")
        lines.append(f"{'method':<{width}}{head}{'AUC-PR mean':>13}")
        for m in result.methods:
            lines.append(_row(m.method, width, _metric_values(m), m.seconds))
            lines[-1] += f"{m.auc_pr_mean:>13.4f}"
        nw = max(len(kind), *map(len, names)) + 2
        cw = max(10, *(len(m) + 2 for m in methods))
        lines.append("")
        lines.append(f"F1 per {kind}")
        lines.append(f"{kind:<{nw}}" + "".join(f"{m:>{cw}}" for m in methods))
        for i, name in enumerate(names):
            cells = "".join(f"{m.entries[i].counts.f1:>{cw}.4f}" for m in result.methods)
            lines.append(f"{name:<{nw}}{cells}")
    b = result.baseline
    if b is not None:
        lines.append("")
        lines.append(
            f"baseline, same pixels and run ({_baseline_name()}): precision "
            f"{b.counts.precision:.4f} recall {b.counts.recall:.4f} F1 {b.counts.f1:.4f} "
            f"AUC-PR {b.auc_pr:.4f}"
        )
        for m in result.methods:
            ratio = result.f1_ratio(m)
            if ratio is not None:
                lines.append(f"F1 {m.method} / baseline = {ratio:.2f}x")
    lines.append(f"read {result.read_seconds:.1f} s; total {result.seconds:.1f} s")
    return "\n".join(lines)


def _finish(result: BenchResult, args: argparse.Namespace, out: Path | None) -> int:
    grouped = args.method == ALL
    doc = result.as_dict(grouped=grouped)
    if out is not None:
        write_json_atomic(out, doc)
    print(format_result(result, grouped=grouped))
    if out is not None:
        print(f"wrote {out}")
    return 0


def _base_method(args: argparse.Namespace) -> str:
    """The options' method: ``learned`` when its weights are given, else the default."""
    if getattr(args, "weights", None) is None:
        return DetectOptions().method
    if args.method != "learned":
        raise InputError("--weights are those of --method learned; add --method learned")
    return "learned"


def main_oscd(args: argparse.Namespace) -> int:
    """Run ``sitewatch bench oscd``."""
    out = check_json_out(args.json, overwrite=args.overwrite)
    from sitewatch.bench.oscd import bench_oscd
    from sitewatch.bench.pairs import BASELINE

    result = bench_oscd(
        args.root,
        split=args.split,
        methods=_methods_for(args.method),
        options=detector_options(args, method=_base_method(args)),
        baseline=BASELINE if args.baseline else None,
    )
    return _finish(result, args, out)


def main_pairs(args: argparse.Namespace) -> int:
    """Run ``sitewatch bench pairs``."""
    out = check_json_out(args.json, overwrite=args.overwrite)
    from sitewatch.bench.pairs import BASELINE, bench_pairs

    result = bench_pairs(
        args.folder,
        methods=_methods_for(args.method),
        options=detector_options(args, method=_base_method(args)),
        baseline=BASELINE if args.baseline else None,
        pixel_size=args.pixel_size,
    )
    return _finish(result, args, out)


def _names_arg(text: str) -> tuple[str, ...]:
    """Argparse type: comma-separated tunable names (checked when the suite starts)."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no tunable")
    return names


def _register_suite(bsub: Any) -> None:
    from sitewatch.detect.options import THRESHOLD_RULES

    s = bsub.add_parser(
        "suite",
        help="every labelled dataset under ROOT: one table, macro-F1, leave-one-dataset-out",
        description="Run the detector (default options) and the same-run CVA + Otsu baseline "
        "on every labelled dataset found directly under ROOT (OSCD, SZTAKI AirChange, LEVIR-CD, "
        "DSIFN, Landsat Taizhou/Nanjing, SpaceNet 7, in the layout of ../shared/data; missing "
        "ones are skipped with a note) and print one row per "
        "dataset with macro-F1, then the SpaceNet 7 timeline figures.",
    )
    s.add_argument("root", metavar="ROOT", help="folder holding the dataset folders")
    s.add_argument(
        "--leave-one-out",
        action="store_true",
        dest="leave_one_out",
        help="run every configuration of the tunables' candidate grid once per dataset and "
        "score each dataset with the configuration of best macro-F1 over the OTHER datasets "
        "(the figure to quote for constants chosen by measurement)",
    )
    s.add_argument(
        "--tune",
        type=_names_arg,
        metavar="NAME[,NAME]",
        help="tunables searched by --leave-one-out (default: all; the JSON lists them)",
    )
    s.add_argument(
        "--method",
        choices=[AUTO, *METHODS],
        help="run the suite with this method on every dataset instead of the one chosen "
        "from each input (to compare methods)",
    )
    s.add_argument(
        "--threshold-rule",
        dest="threshold_rule",
        choices=[AUTO, *THRESHOLD_RULES],
        help="run the suite with this threshold rule instead of the default (to compare rules)",
    )
    s.add_argument(
        "--fdr",
        type=_fdr_arg,
        default=STEP_FDR,
        metavar="Q",
        help=f"false-discovery share of the timelines' step model (default {STEP_FDR})",
    )
    s.add_argument("--json", metavar="OUT", help="also write the results as JSON to OUT")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    s.set_defaults(func=main_suite)


def main_suite(args: argparse.Namespace) -> int:
    """Run ``sitewatch bench suite``."""
    import sys

    from sitewatch.bench.suite import format_suite, run_suite

    out = check_json_out(args.json, overwrite=args.overwrite)

    def progress(msg: str) -> None:
        print(f"bench suite: {msg}", file=sys.stderr, flush=True)

    options = None
    if args.threshold_rule or args.method:
        options = DetectOptions(
            method=args.method or AUTO, threshold_rule=args.threshold_rule or AUTO
        )
    result = run_suite(
        args.root,
        leave_one_out=args.leave_one_out,
        tunables=args.tune,
        progress=progress,
        options=options,
        fdr=args.fdr,
    )
    if out is not None:
        write_json_atomic(out, result.as_dict())
    print(format_suite(result))
    if out is not None:
        print(f"wrote {out}")
    return 0


def _fdr_arg(text: str) -> float:
    """Argparse type: a share strictly between 0 and 1."""
    try:
        q = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < q < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a share between 0 and 1, e.g. 0.01")
    return q


def _sizes_arg(text: str) -> tuple[int, ...]:
    """Argparse type: comma-separated image sides in pixels (each >= 128)."""
    try:
        sizes = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers") from None
    if not sizes or min(sizes) < 128:
        raise argparse.ArgumentTypeError(f"{text!r}: give sides of at least 128 px")
    return sizes


def _count_arg(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= {low}")
    return value


def _register_speed(bsub: Any) -> None:
    from sitewatch.bench.defaults import BIG_SIZE, DEFAULT_SIZES

    s = bsub.add_parser(
        "speed",
        help="time IR-MAD detection as whole processes (vs OTB, naive numpy; scaling)",
        description="Generate synthetic 3-band 8-bit GeoTIFF pairs and time 'sitewatch detect "
        "--method irmad' as a whole process against otbcli_MultivariateAlterationDetector "
        "(when installed) and a naive numpy implementation, profile where the time goes, "
        "and measure time and peak RSS per image size. Every figure is a ratio against a "
        "baseline measured in the same run.",
    )
    s.add_argument(
        "--sizes",
        type=_sizes_arg,
        default=DEFAULT_SIZES,
        metavar="N,N,...",
        help=f"image sides of the scaling rows (default: {','.join(map(str, DEFAULT_SIZES))}); "
        "the OTB/naive/profile rows use 2048 or the closest size",
    )
    s.add_argument(
        "--big",
        type=lambda t: _count_arg(t, 0),
        default=BIG_SIZE,
        metavar="N",
        help=f"side of the block-mode row (default: {BIG_SIZE}; 0 skips it); skipped without "
        "'detect --max-memory' or with < 8 GB free disk",
    )
    s.add_argument(
        "--repeat",
        type=lambda t: _count_arg(t, 1),
        default=3,
        metavar="N",
        help="runs per command; medians are quoted (default: 3)",
    )
    s.add_argument(
        "--workdir",
        metavar="DIR",
        help="keep pairs and logs here (default: a temporary folder, removed at the end)",
    )
    s.add_argument(
        "--batch-jobs",
        type=lambda t: _count_arg(t, 0),
        default=4,
        metavar="N",
        dest="batch_jobs",
        help="jobs of the 'sitewatch batch' row, 1 vs 2 workers (default: 4; 0 skips it)",
    )
    s.add_argument("--json", metavar="OUT", help="also write every figure as JSON to OUT")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    s.set_defaults(func=main_speed)


def main_speed(args: argparse.Namespace) -> int:
    """Run ``sitewatch bench speed``."""
    import sys

    from sitewatch.bench.speed import BenchCommandError, SpeedOptions, format_speed, run_speed
    from sitewatch.errors import DataError

    out = check_json_out(args.json, overwrite=args.overwrite)
    options = SpeedOptions(
        sizes=args.sizes,
        big=args.big,
        repeat=args.repeat,
        workdir=Path(args.workdir) if args.workdir else None,
        batch_jobs=args.batch_jobs,
    )

    def progress(msg: str) -> None:
        print(f"bench speed: {msg}", file=sys.stderr, flush=True)

    try:
        doc = run_speed(options, progress=progress)
    except BenchCommandError as err:
        raise DataError(f"bench speed: {err}") from err
    if out is not None:
        write_json_atomic(out, doc)
    print(format_speed(doc))
    if out is not None:
        print(f"wrote {out}")
    return 0
