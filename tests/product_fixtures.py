"""Small downloaded products built from synthetic pixels, as users get them.

Sentinel-2 L2A/L1C ``.SAFE`` folders (real JPEG 2000 band files, ESA folder and file
naming, an ``MTD_MSIL*.xml``), their ``.zip`` (the ``.SAFE/`` folder as the top entry),
and Landsat Collection 2 Level-2 products (per-band GeoTIFFs, ``QA_PIXEL``, an
``_MTL.txt``/``_MTL.json``) and their flat ``.tar``. Nothing here is real imagery.

Run as a script to build a demo set: ``python tests/product_fixtures.py /tmp/products``.
"""

from __future__ import annotations

import json
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from scipy import ndimage

UTM = "EPSG:32652"
ORIGIN = (375_000.0, 4_420_000.0)
S2_REFL = {  # band: (bare soil, vegetation) reflectance
    "B01": (0.06, 0.03),
    "B02": (0.07, 0.03),
    "B03": (0.09, 0.06),
    "B04": (0.11, 0.03),
    "B05": (0.14, 0.10),
    "B06": (0.16, 0.28),
    "B07": (0.17, 0.34),
    "B08": (0.18, 0.40),
    "B8A": (0.19, 0.41),
    "B09": (0.10, 0.12),
    "B10": (0.01, 0.01),
    "B11": (0.26, 0.16),
    "B12": (0.20, 0.08),
}
S2_RES = {
    **dict.fromkeys(("B02", "B03", "B04", "B08"), 10),
    **dict.fromkeys(("B05", "B06", "B07", "B8A", "B11", "B12"), 20),
    **dict.fromkeys(("B01", "B09", "B10"), 60),
}
S2_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11")
S2_IDS += ("B12",)
OLI_REFL = {  # SR band: (soil, vegetation)
    "SR_B1": (0.06, 0.03),
    "SR_B2": (0.07, 0.03),
    "SR_B3": (0.09, 0.06),
    "SR_B4": (0.11, 0.03),
    "SR_B5": (0.18, 0.40),
    "SR_B6": (0.26, 0.16),
    "SR_B7": (0.20, 0.08),
}
ROOF = 0.32
CLOUD = 0.65
QA_CLEAR = 21824  # bits 6 (clear) + low confidences: what clear land reads in QA_PIXEL
QA_CLOUD = 22280  # bits 1 (dilated), 3 (cloud), high cloud confidence
SCL_VEG, SCL_SOIL, SCL_CLOUD_HIGH = 4, 5, 9


@dataclass(frozen=True)
class Planted:
    """Where the synthetic pair has its new roof and its masked cloud (pixel slices)."""

    roof: tuple[slice, slice]
    cloud: tuple[slice, slice]
    res: float
    origin: tuple[float, float] = ORIGIN

    def centre_xy(self, which: str) -> tuple[float, float]:
        """UTM centre of the roof or the cloud."""
        rows, cols = getattr(self, which)
        x = self.origin[0] + (cols.start + cols.stop) / 2 * self.res
        y = self.origin[1] - (rows.start + rows.stop) / 2 * self.res
        return x, y


def landscape(
    bands: dict[str, tuple[float, float]], size: int, *, seed: int
) -> dict[str, np.ndarray]:
    """Fields of varying greenness with a little texture: reflectance per band."""
    rng = np.random.default_rng(seed)
    veg = ndimage.gaussian_filter(rng.normal(size=(size, size)), size / 8)
    veg = (veg - veg.min()) / (np.ptp(veg) or 1.0)
    return {
        b: (soil * (1 - veg) + green * veg + rng.normal(0, 0.004, (size, size))).astype(np.float32)
        for b, (soil, green) in bands.items()
    }


def pair_pixels(
    bands: dict[str, tuple[float, float]],
    size: int,
    planted: Planted,
    *,
    seed: int = 3,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Before and after reflectance: after gains a roof and a bright cloud."""
    before = landscape(bands, size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    after = {b: a + rng.normal(0, 0.003, a.shape).astype(np.float32) for b, a in before.items()}
    for b in after:
        after[b][planted.roof] = ROOF + rng.normal(0, 0.004, after[b][planted.roof].shape)
        after[b][planted.cloud] = CLOUD
    return before, after


def _block_mean(a: np.ndarray, k: int) -> np.ndarray:
    h, w = a.shape
    return a[: h - h % k, : w - w % k].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def write_jp2(path: Path, data: np.ndarray, res: float, *, origin=ORIGIN, crs=UTM) -> Path:
    """A losslessly encoded JPEG 2000 (GDAL JP2OpenJPEG, GeoJP2/GMLJP2 georeferencing)."""
    if data.ndim == 2:
        data = data[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="JP2OpenJPEG",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype.name,
        crs=crs,
        transform=Affine(res, 0, origin[0], 0, -res, origin[1]),
        REVERSIBLE="YES",
        QUALITY=100,
    ) as dst:
        dst.write(data)
    return path


def write_tif(path: Path, data: np.ndarray, res: float, *, origin=ORIGIN, crs=UTM) -> Path:
    """A tiled, deflated GeoTIFF (as USGS delivers Collection 2 bands)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype=data.dtype.name,
        crs=crs,
        transform=Affine(res, 0, origin[0], 0, -res, origin[1]),
        compress="DEFLATE",
    ) as dst:
        dst.write(data, 1)
    return path


def _s2_mtd(
    level: str,
    product_id: str,
    start: str,
    baseline: str,
    platform: str,
    image_files: list[str],
) -> str:
    offsets = float(baseline) >= 4.0
    if level == "L2A":
        root = "Level-2A_User_Product"
        ns = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
        quant = (
            "<QUANTIFICATION_VALUES_LIST>"
            '<BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>'
            '<AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>'
            '<WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE>'
            "</QUANTIFICATION_VALUES_LIST>"
        )
        off = "".join(f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>' for i in range(13))
        off = f"<BOA_ADD_OFFSET_VALUES_LIST>{off}</BOA_ADD_OFFSET_VALUES_LIST>"
        ptype, plevel = "S2MSI2A", "Level-2A"
    else:
        root = "Level-1C_User_Product"
        ns = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd"
        quant = '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>'
        off = "".join(
            f'<RADIO_ADD_OFFSET band_id="{i}">-1000</RADIO_ADD_OFFSET>' for i in range(13)
        )
        off = f"<Radiometric_Offset_List>{off}</Radiometric_Offset_List>"
        ptype, plevel = "S2MSI1C", "Level-1C"
    files = "".join(f"<IMAGE_FILE>{f}</IMAGE_FILE>" for f in image_files)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:{root} xmlns:n1="{ns}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{start}</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>{start}</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{product_id}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>{plevel}</PROCESSING_LEVEL>
      <PRODUCT_TYPE>{ptype}</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <GENERATION_TIME>{start}</GENERATION_TIME>
      <Datatake datatakeIdentifier="G{product_id[:3]}_{start[:4]}_N{baseline}">
        <SPACECRAFT_NAME>{platform}</SPACECRAFT_NAME>
        <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
        <DATATAKE_SENSING_START>{start}</DATATAKE_SENSING_START>
        <SENSING_ORBIT_NUMBER>3</SENSING_ORBIT_NUMBER>
        <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
      </Datatake>
      <Product_Organisation><Granule_List><Granule imageFormat="JPEG2000">{files}</Granule>
      </Granule_List></Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
      <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
      {quant}
      {off if offsets else ""}
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:{root}>
"""


def write_safe(
    parent: Path,
    refl: dict[str, np.ndarray],
    *,
    level: str = "L2A",
    day: str = "20240105",
    baseline: str = "05.10",
    platform: str = "S2B",
    tile: str = "T52SCK",
    scl: np.ndarray | None = None,
    omit: tuple[str, ...] = (),
    origin: tuple[float, float] = ORIGIN,
) -> Path:
    """A Sentinel-2 ``.SAFE`` folder from 10 m reflectance per band.

    DN = reflectance × 10000 (+ 1000 from baseline 04.00 on). L2A: bands in
    ``R10m``/``R20m``/``R60m`` at every resolution ESA writes them (plus ``SCL``, ``AOT``,
    ``TCI``); L1C: one file per band at its native resolution in ``IMG_DATA``.
    ``omit`` drops band files (a damaged download).
    """
    sensing = f"{day}T022109"
    start = f"{day[:4]}-{day[4:6]}-{day[6:]}T02:21:09.024Z"
    n = baseline.replace(".", "")
    gen = f"{day}T045502"
    product_id = f"{platform}_MSIL{level[1:]}_{sensing}_N{n}_R003_{tile}_{gen}"
    safe = parent / f"{product_id}.SAFE"
    granule = safe / "GRANULE" / f"{level}_{tile}_A044000_{day}T022105" / "IMG_DATA"
    add = 1000.0 if float(baseline) >= 4.0 else 0.0
    stem = f"{tile}_{sensing}"

    def dn(band: str, res: int) -> np.ndarray:
        k = res // 10
        a = refl[band] if k == 1 else _block_mean(refl[band], k)
        return np.clip(np.round(a * 10000 + add), 1, 65535).astype(np.uint16)

    image_files = []
    if level == "L2A":
        layout = {
            10: ["B02", "B03", "B04", "B08"],
            20: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"],
            60: ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"],
        }
        for res, bands in layout.items():
            for b in bands:
                if b in omit or b not in refl:
                    continue
                f = granule / f"R{res}m" / f"{stem}_{b}_{res}m.jp2"
                write_jp2(f, dn(b, res), res, origin=origin)
                image_files.append(f.relative_to(safe).with_suffix("").as_posix())
            h, w = next(iter(refl.values())).shape
            aot = np.full((h * 10 // res, w * 10 // res), 120, np.uint16)
            write_jp2(granule / f"R{res}m" / f"{stem}_AOT_{res}m.jp2", aot, res, origin=origin)
            if scl is not None and res >= 20:
                k = res // 20
                codes = scl if k == 1 else scl[::k, ::k]
                write_jp2(
                    granule / f"R{res}m" / f"{stem}_SCL_{res}m.jp2", codes, res, origin=origin
                )
        tci = np.stack(
            [np.clip(refl[b] * 800, 0, 255).astype(np.uint8) for b in ("B04", "B03", "B02")]
        )
        write_jp2(granule / "R10m" / f"{stem}_TCI_10m.jp2", tci, 10, origin=origin)
    else:
        for b in S2_IDS:
            if b in omit or b not in refl:
                continue
            res = S2_RES[b]
            f = granule / f"{stem}_{b}.jp2"
            write_jp2(f, dn(b, res), res, origin=origin)
            image_files.append(f.relative_to(safe).with_suffix("").as_posix())
    platform_name = f"Sentinel-2{platform[-1]}"
    mtd = safe / f"MTD_MSIL{level[1:]}.xml"
    mtd.write_text(
        _s2_mtd(level, product_id, start, baseline, platform_name, image_files), encoding="utf-8"
    )
    (safe / "manifest.safe").write_text("<xfdu:XFDU/>\n", encoding="utf-8")
    return safe


def zip_safe(safe: Path, dest: Path | None = None) -> Path:
    """Zip a ``.SAFE`` folder as the Copernicus Browser does: the folder is the top entry."""
    dest = dest or safe.with_suffix(".zip")
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(safe, f"{safe.name}/")
        for p in sorted(safe.rglob("*")):
            zf.write(
                p, f"{safe.name}/{p.relative_to(safe).as_posix()}" + ("/" if p.is_dir() else "")
            )
    return dest


def _mtl_text(product_id: str, date: str, spacecraft: str, path_row: tuple[int, int]) -> str:
    bands = "\n".join(f'    FILE_NAME_BAND_{i} = "{product_id}_SR_B{i}.TIF"' for i in range(1, 8))
    sr = "\n".join(
        f"    REFLECTANCE_MULT_BAND_{i} = 2.75e-05\n    REFLECTANCE_ADD_BAND_{i} = -0.200000"
        for i in range(1, 8)
    )
    return f"""GROUP = LANDSAT_METADATA_FILE
  GROUP = PRODUCT_CONTENTS
    ORIGIN = "Image courtesy of the U.S. Geological Survey"
    DIGITAL_OBJECT_IDENTIFIER = "https://doi.org/10.5066/P9OGBGM6"
    LANDSAT_PRODUCT_ID = "{product_id}"
    PROCESSING_LEVEL = "{product_id.split("_")[1]}"
    COLLECTION_NUMBER = 02
    COLLECTION_CATEGORY = "T1"
    OUTPUT_FORMAT = "GEOTIFF"
{bands}
    FILE_NAME_BAND_ST_B10 = "{product_id}_ST_B10.TIF"
    FILE_NAME_QUALITY_L1_PIXEL = "{product_id}_QA_PIXEL.TIF"
    FILE_NAME_METADATA_ODL = "{product_id}_MTL.txt"
  END_GROUP = PRODUCT_CONTENTS
  GROUP = IMAGE_ATTRIBUTES
    SPACECRAFT_ID = "{spacecraft}"
    SENSOR_ID = "OLI_TIRS"
    WRS_TYPE = 2
    WRS_PATH = {path_row[0]}
    WRS_ROW = {path_row[1]}
    DATE_ACQUIRED = {date}
    SCENE_CENTER_TIME = "02:12:34.5678900Z"
  END_GROUP = IMAGE_ATTRIBUTES
  GROUP = LEVEL1_RADIOMETRIC_RESCALING
    REFLECTANCE_MULT_BAND_4 = 2.0000E-05
    REFLECTANCE_ADD_BAND_4 = -0.100000
  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING
  GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS
{sr}
  END_GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS
END_GROUP = LANDSAT_METADATA_FILE
END
"""


def write_landsat(
    parent: Path,
    refl: dict[str, np.ndarray],
    qa: np.ndarray,
    *,
    date: str = "2024-01-10",
    spacecraft: str = "LANDSAT_9",
    path_row: tuple[int, int] = (116, 32),
    origin: tuple[float, float] = ORIGIN,
    level: str = "L2SP",
) -> Path:
    """A Landsat Collection 2 Level-2 folder: SR bands, ST_B10, QA_PIXEL, MTL (txt, json)."""
    d = date.replace("-", "")
    sat = f"LC{spacecraft[-1].zfill(2)}"
    product_id = (
        f"{sat}_{level}_{path_row[0]:03d}{path_row[1]:03d}_{d}_{d[:6]}{int(d[6:]) + 1:02d}_02_T1"
    )
    folder = parent / product_id
    for b, a in refl.items():
        dn = np.clip(np.round((a + 0.2) / 2.75e-05), 1, 65535).astype(np.uint16)
        write_tif(folder / f"{product_id}_{b}.TIF", dn, 30.0, origin=origin)
    st = np.full(qa.shape, 44000, np.uint16)
    write_tif(folder / f"{product_id}_ST_B10.TIF", st, 30.0, origin=origin)
    write_tif(folder / f"{product_id}_QA_PIXEL.TIF", qa.astype(np.uint16), 30.0, origin=origin)
    write_tif(
        folder / f"{product_id}_QA_RADSAT.TIF", np.zeros(qa.shape, np.uint16), 30.0, origin=origin
    )
    mtl = _mtl_text(product_id, date, spacecraft, path_row)
    (folder / f"{product_id}_MTL.txt").write_text(mtl, encoding="utf-8")
    groups: dict[str, dict[str, str]] = {}
    current = ""
    for line in mtl.splitlines():
        k, _, v = line.partition("=")
        k, v = k.strip(), v.strip().strip('"')
        if k == "GROUP" and v != "LANDSAT_METADATA_FILE":
            current = v
            groups[current] = {}
        elif k == "END_GROUP":
            current = ""
        elif current and k:
            groups[current][k] = v
    (folder / f"{product_id}_MTL.json").write_text(
        json.dumps({"LANDSAT_METADATA_FILE": groups}, indent=2), encoding="utf-8"
    )
    return folder


def tar_landsat(folder: Path, dest: Path | None = None) -> Path:
    """Tar a Landsat folder as EarthExplorer delivers it: flat, files at the top level."""
    dest = dest or folder.with_suffix(".tar")
    with tarfile.open(dest, "w") as tf:
        for p in sorted(folder.iterdir()):
            tf.add(p, arcname=p.name)
    return dest


S2_PLANTED = Planted(
    roof=(slice(20, 30), slice(12, 24)), cloud=(slice(36, 50), slice(34, 48)), res=10.0
)
LANDSAT_PLANTED = Planted(
    roof=(slice(10, 16), slice(6, 12)), cloud=(slice(24, 32), slice(24, 32)), res=30.0
)


def s2_pair(
    parent: Path,
    *,
    size: int = 60,
    levels: tuple[str, str] = ("L2A", "L2A"),
    baseline: str = "05.10",
    omit_after: tuple[str, ...] = (),
    after_origin: tuple[float, float] = ORIGIN,
) -> tuple[Path, Path, Planted]:
    """Before (2023-12-06) and after (2024-01-05) ``.SAFE`` folders; after has a roof and
    a cloud that its SCL classes cloud (high probability)."""
    planted = S2_PLANTED
    before, after = pair_pixels(S2_REFL, size, planted)
    veg = before["B08"] > 0.3

    def scl_of(cloud: bool) -> np.ndarray:
        codes = np.where(veg, SCL_VEG, SCL_SOIL).astype(np.uint8)[::2, ::2]
        if cloud:
            rows, cols = planted.cloud
            codes[rows.start // 2 : rows.stop // 2, cols.start // 2 : cols.stop // 2] = (
                SCL_CLOUD_HIGH
            )
        return codes

    b = write_safe(
        parent,
        before,
        level=levels[0],
        day="20231206",
        baseline=baseline,
        platform="S2A",
        scl=scl_of(False),
    )
    a = write_safe(
        parent,
        after,
        level=levels[1],
        day="20240105",
        baseline=baseline,
        platform="S2B",
        scl=scl_of(True),
        omit=omit_after,
        origin=after_origin,
    )
    return b, a, planted


def landsat_pair(parent: Path, *, size: int = 40) -> tuple[Path, Path, Planted]:
    """Before (2023-12-09, Landsat 8) and after (2024-01-10, Landsat 9) C2 L2 folders;
    after has a roof and a cloud that its QA_PIXEL flags."""
    planted = LANDSAT_PLANTED
    before, after = pair_pixels(OLI_REFL, size, planted, seed=11)
    qa_b = np.full((size, size), QA_CLEAR, np.uint16)
    qa_a = qa_b.copy()
    qa_a[planted.cloud] = QA_CLOUD
    b = write_landsat(parent, before, qa_b, date="2023-12-09", spacecraft="LANDSAT_8")
    a = write_landsat(parent, after, qa_a, date="2024-01-10", spacecraft="LANDSAT_9")
    return b, a, planted


def build_demo(root: Path) -> dict[str, Path]:
    """Every kind of input, for trying the CLI: SAFE folders, zips, MTD, Landsat tars."""
    root.mkdir(parents=True, exist_ok=True)
    b, a, _ = s2_pair(root / "safe")
    lb, la, _ = landsat_pair(root / "landsat")
    (root / "zip").mkdir(exist_ok=True)
    (root / "tar").mkdir(exist_ok=True)
    return {
        "safe_before": b,
        "safe_after": a,
        "zip_before": zip_safe(b, root / "zip" / f"{b.stem}.zip"),
        "zip_after": zip_safe(a, root / "zip" / f"{a.stem}.zip"),
        "mtd_before": b / "MTD_MSIL2A.xml",
        "mtd_after": a / "MTD_MSIL2A.xml",
        "tar_before": tar_landsat(lb, root / "tar" / f"{lb.name}.tar"),
        "tar_after": tar_landsat(la, root / "tar" / f"{la.name}.tar"),
    }


if __name__ == "__main__":
    for key, path in build_demo(Path(sys.argv[1])).items():
        print(f"{key}: {path}")
