"""Optional: the whole ``../shared/data/jpeg_corpus`` against Pillow.

Skipped when the corpus is absent (a clean clone). Every file libjpeg-turbo
decodes cleanly that is Huffman or arithmetic coded, 8-bit, gray or colour
must decode identically to Pillow; every other file must decode or raise
:class:`jpegtorch.JPEGError`. ``benchmarks/corpus_decode.py`` runs the same
comparison in lenient mode too and prints a summary.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from jpegtorch.formats.jfif_reader import decode_jpeg
from PIL import Image

from jpegtorch import JPEGError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "jpeg_corpus"
pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not (CORPUS / "MANIFEST.tsv").exists(),
                       reason="needs ../shared/data/jpeg_corpus"),
]
DECODABLE = ("baseline", "ext-seq-huff", "progressive-huff", "ext-seq-arith", "progressive-arith")


def rows() -> list[dict[str, str]]:
    if not (CORPUS / "MANIFEST.tsv").exists():
        return []
    return list(csv.DictReader((CORPUS / "MANIFEST.tsv").open(), delimiter="\t"))


def in_scope(row: dict[str, str]) -> bool:
    header = row["header"].split()
    return (bool(header) and header[0] in DECODABLE and "P=8" in header
            and not (len(header) > 2 and header[2].count(",") == 3)
            and row["djpeg_turbo215"].strip() == "ok" and row["pillow"].startswith("ok"))


GROUPS = ["generated", "go", "jpeg-decoder", "jpegsuite", "libjpeg-turbo", "pillow", "skimage"]


@pytest.mark.parametrize("group", GROUPS)  # several tests, so that pytest-xdist spreads them
def test_every_clean_file_decodes_like_pillow(group: str) -> None:
    failures = []
    for row in rows():
        if not in_scope(row) or not row["file"].startswith(group + "/"):
            continue
        data = (CORPUS / row["file"]).read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                ref = np.asarray(im)
        try:
            out = decode_jpeg(data).permute(1, 2, 0).numpy()
        except JPEGError as exc:
            failures.append(f"{row['file']}: {exc}")
            continue
        out = out[..., 0] if out.shape[2] == 1 else out
        if out.shape != ref.shape or not np.array_equal(out, ref):
            failures.append(f"{row['file']}: pixels differ")
    assert not failures, "\n".join(failures)


def test_the_scope_is_what_the_issue_asks() -> None:
    assert sum(in_scope(row) for row in rows()) >= 360
    assert {row["file"].split("/")[0] for row in rows()} <= set(GROUPS)


def test_every_other_file_decodes_or_raises_jpegerror() -> None:
    crashes = []
    for row in rows():
        if in_scope(row):
            continue
        data = (CORPUS / row["file"]).read_bytes()
        try:
            decode_jpeg(data, max_pixels=1 << 24)
        except JPEGError as exc:
            assert "\n" not in str(exc)
        except Exception as exc:  # any other exception type is a bug
            crashes.append(f"{row['file']}: {type(exc).__name__}: {exc}")
    assert not crashes, "\n".join(crashes)
