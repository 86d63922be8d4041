"""Metadata (issue 11): EXIF, ICC, XMP, comments and density are kept by default, like
``jpegtran -copy all``; byte-identical to Pillow's ``save(exif=, icc_profile=, ...)``;
``--auto-orient`` and ``--strip``; PNG/TIFF/WebP inputs and outputs; ``jtorch info``."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import synthetic
from jpegtorch.cli.main import cli
from jpegtorch.formats import metadata as md
from PIL import Image, ImageCms, ImageOps

JPEGTRAN = shutil.which("jpegtran")


def invoke(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def srgb_profile() -> bytes:
    """An sRGB profile (made once: its header holds the creation time)."""
    return _SRGB


def big_profile(size: int = 140_000) -> bytes:
    """A > 64 KB ICC profile (an sRGB profile padded with a private tag's worth of
    bytes; the JPEG chunks do not care what is inside)."""
    base = srgb_profile()
    return base + bytes(np.random.default_rng(3).integers(0, 256, size - len(base),
                                                           dtype=np.uint8))


def exif_bytes(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Phone 12"
    exif[0x0112] = orientation
    exif[0x8769] = {0x9003: "2024:05:06 07:08:09", 0x829A: (1, 120)}
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.5)}
    return exif.tobytes()


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
       b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
       b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')


def pillow_jpeg(array: np.ndarray, quality: int = 75, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=quality, **kwargs)
    return buffer.getvalue()


def phone_jpeg(array: np.ndarray, orientation: int = 6, **extra) -> bytes:
    """A JPEG as a phone writes it: EXIF with an orientation, an ICC profile, XMP."""
    options = {"exif": exif_bytes(orientation), "icc_profile": srgb_profile(), "xmp": XMP}
    return pillow_jpeg(array, 92, **{**options, **extra})


def chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


# --- the library: bytes identical to Pillow's ------------------------------------------


@pytest.mark.parametrize("options", [
    {"exif": "exif"}, {"icc_profile": "icc"}, {"icc_profile": "big"}, {"xmp": "xmp"},
    {"comment": "comment"}, {"dpi": (300, 72)},
    {"exif": "exif", "icc_profile": "big", "xmp": "xmp", "comment": "comment", "dpi": (96, 96)},
], ids=lambda o: "+".join(o))
@pytest.mark.parametrize("gray", [False, True])
def test_encode_jpeg_with_metadata_equals_pillow(options: dict, gray: bool) -> None:
    values = {"exif": exif_bytes(), "icc": srgb_profile(), "big": big_profile(),
              "xmp": XMP, "comment": "a comment, é".encode()}
    kwargs = {k: values.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
    array = synthetic(37, 50, seed=2)
    if gray:
        array = array[:, :, 1].copy()
    image = torch.from_numpy(array)[None] if gray else chw(array)
    ours = __import__("jpegtorch").encode_jpeg(image, 85, **kwargs)
    assert ours == pillow_jpeg(array, 85, **kwargs)


def test_without_metadata_bytes_stay_libjpegs() -> None:
    import jpegtorch

    array = synthetic(20, 30, seed=1)
    plain = jpegtorch.encode_jpeg(chw(array), 60)
    assert plain == pillow_jpeg(array, 60)
    assert jpegtorch.encode_jpeg(chw(array), 60, metadata=md.Metadata()) == plain
    assert md.insert_into_jpeg(plain, None) == plain


def test_read_and_rewrite_round_trip() -> None:
    """read_jpeg_metadata + write_coefficients: the segments come back byte for byte,
    large ICC profiles (3 chunks) included; MPF is dropped; other APPn are kept."""
    import jpegtorch

    array = synthetic(24, 40, seed=3)
    iptc = b"\xff\xed\x00\x12Photoshop 3.0\x00AB"
    mpf = b"\xff\xe2\x00\x08MPF\x00ab"
    profile = big_profile()
    source = pillow_jpeg(array, 90, exif=exif_bytes(3), icc_profile=profile, xmp=XMP,
                         comment=b"one", extra=iptc + mpf)
    meta = md.read_jpeg_metadata(source)
    assert meta.icc_profile == profile and meta.xmp == XMP and meta.comments == (b"one",)
    assert meta.exif == exif_bytes(3)[6:] and meta.orientation == 3
    assert meta.extra == ((0xED, iptc[4:]),)
    again = jpegtorch.write_coefficients(jpegtorch.read_coefficients(source), metadata=meta)
    assert again == pillow_jpeg(array, 90, exif=exif_bytes(3), icc_profile=profile, xmp=XMP,
                                comment=b"one", extra=iptc)
    assert md.read_jpeg_metadata(again) == meta


@pytest.mark.skipif(JPEGTRAN is None, reason="jpegtran not installed")
def test_same_segments_as_jpegtran_copy_all(tmp_path: Path) -> None:
    """A JPEG -> JPEG re-encode carries the very segments ``jpegtran -copy all`` does
    (MPF aside), in the same order."""
    array = synthetic(32, 48, seed=8)
    source = tmp_path / "phone.jpg"
    source.write_bytes(phone_jpeg(array, comment=b"note",
                                  extra=b"\xff\xed\x00\x0bPhotoshop"))
    copied = subprocess.run([JPEGTRAN, "-copy", "all", str(source)], capture_output=True,
                            check=True).stdout
    result = invoke("encode", str(source), "-o", str(tmp_path / "ours.jpg"))
    assert result.exit_code == 0, result.output

    def segments(data: bytes) -> list[tuple[int, bytes]]:
        return [(m, p) for m, _, p in md.iter_segments(data)
                if m != 0xE0 and (0xE1 <= m <= 0xEF or m == 0xFE)]

    ours = segments((tmp_path / "ours.jpg").read_bytes())
    theirs = segments(copied)
    assert sorted(ours) == sorted(theirs)  # the same segments
    assert [m for m, _ in ours] == [0xE1, 0xED, 0xE1, 0xE2, 0xFE]  # Pillow's order


def test_exif_orientation_read_and_set_in_place() -> None:
    for order in ("II", "MM"):
        exif = Image.Exif()
        exif[0x0112] = 8
        exif[0x010F] = "Cam"
        raw = exif.tobytes()[6:] if order == "MM" else _little_endian(exif)
        assert md.exif_orientation(raw) == 8
        patched = md.set_exif_orientation(raw, 1)
        assert len(patched) == len(raw) and md.exif_orientation(patched) == 1
        other = Image.Exif()
        other.load(md.EXIF_HEADER + patched)
        assert other[0x0112] == 1 and other[0x010F] == "Cam"
    assert md.exif_orientation(b"garbage") is None
    assert md.set_exif_orientation(b"II*\x00\x08\x00\x00\x00\x00\x00", 1) == \
        b"II*\x00\x08\x00\x00\x00\x00\x00"
    assert md.set_xmp_orientation(XMP, 1).count(b'tiff:Orientation="1"') == 1
    element = b"<tiff:Orientation> 6 </tiff:Orientation>"
    assert md.set_xmp_orientation(element, 1) == b"<tiff:Orientation>1</tiff:Orientation>"


def _little_endian(exif: Image.Exif) -> bytes:
    """A little-endian ("II") Exif block, written by hand (Pillow writes "MM"):
    Make "Cam" and Orientation 8."""
    import struct

    return (b"II*\x00" + struct.pack("<IH", 8, 2)
            + struct.pack("<HHI4s", 0x010F, 2, 4, b"Cam\x00")
            + struct.pack("<HHIHH", 0x0112, 3, 1, 8, 0) + struct.pack("<I", 0))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orient_matches_pillow_exif_transpose(orientation: int) -> None:
    array = synthetic(5, 7, seed=orientation)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", exif=exif_bytes(orientation))
    upright = np.asarray(ImageOps.exif_transpose(Image.open(buffer)))
    ours = md.orient(array.transpose(2, 0, 1), orientation).transpose(1, 2, 0)
    assert np.array_equal(ours, upright)


def test_icc_summary() -> None:
    summary = md.icc_summary(srgb_profile())
    assert summary["color_space"] == "RGB" and "sRGB" in summary["description"]
    assert md.icc_summary(b"short") == {}


# --- the CLI: encode ---------------------------------------------------------------------


def test_phone_jpeg_keeps_exif_icc_xmp_and_orientation(tmp_path: Path) -> None:
    array = synthetic(40, 64, seed=4)
    source = tmp_path / "phone.jpg"
    source.write_bytes(phone_jpeg(array))
    result = invoke("encode", str(source), "-o", str(tmp_path / "out.jpg"), "-q", "70")
    assert result.exit_code == 0, result.output
    out = (tmp_path / "out.jpg").read_bytes()
    decoded = np.asarray(Image.open(source))
    assert out == pillow_jpeg(decoded, 70, exif=exif_bytes(6), icc_profile=srgb_profile(),
                              xmp=XMP)
    with Image.open(io.BytesIO(out)) as image:  # what a viewer sees
        assert image.getexif()[0x0112] == 6 and image.info["icc_profile"] == srgb_profile()
        assert image.size == (64, 40)  # pixels not rotated


def test_auto_orient_rotates_pixels_and_sets_the_tag(tmp_path: Path) -> None:
    array = synthetic(40, 64, seed=5)
    for orientation in (3, 6, 8):
        source = tmp_path / f"o{orientation}.jpg"
        source.write_bytes(phone_jpeg(array, orientation))
        target = tmp_path / f"o{orientation}-up.jpg"
        result = invoke("encode", str(source), "-o", str(target), "--auto-orient")
        assert result.exit_code == 0, result.output
        upright = np.asarray(ImageOps.exif_transpose(Image.open(source)))
        exif = md.set_exif_orientation(exif_bytes(orientation)[6:], 1)
        expected = pillow_jpeg(upright, 75, exif=md.EXIF_HEADER + exif,
                               icc_profile=srgb_profile(),
                               xmp=XMP.replace(b'Orientation="6"', b'Orientation="1"'))
        assert target.read_bytes() == expected, orientation
        with Image.open(target) as image:
            assert image.getexif()[0x0112] == 1
            assert image.size == (upright.shape[1], upright.shape[0])


def test_strip_removes_everything(tmp_path: Path) -> None:
    array = synthetic(40, 64, seed=6)
    source = tmp_path / "phone.jpg"
    source.write_bytes(phone_jpeg(array, comment=b"secret", dpi=(300, 300)))
    result = invoke("encode", str(source), "-o", str(tmp_path / "s.jpg"), "--strip")
    assert result.exit_code == 0
    out = (tmp_path / "s.jpg").read_bytes()
    assert out == pillow_jpeg(np.asarray(Image.open(source)), 75)  # libjpeg's bytes
    assert not md.read_jpeg_metadata(out)
    result = invoke("decode", str(source), "-o", str(tmp_path / "s.png"), "--strip")
    assert result.exit_code == 0
    with Image.open(tmp_path / "s.png") as image:
        image.load()
        assert not {"icc_profile", "exif", "xmp", "dpi"} & set(image.info)


@pytest.mark.parametrize("fmt", ["png", "tiff", "webp"])
def test_png_tiff_webp_inputs_keep_icc_and_exif(tmp_path: Path, fmt: str) -> None:
    array = synthetic(30, 44, seed=7)
    source = tmp_path / f"in.{fmt}"
    options = {"icc_profile": srgb_profile(), "exif": exif_bytes(6)}
    if fmt == "webp":
        options["lossless"] = True
    Image.fromarray(array).save(source, **options)
    result = invoke("encode", str(source), "-o", str(tmp_path / "out.jpg"))
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out.jpg") as image:
        assert image.info["icc_profile"] == srgb_profile()
        exif = image.getexif()
        assert exif[0x010F] == "PhoneMaker"
        assert exif.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
        if fmt == "tiff":  # TIFF's orientation is pixel layout: Pillow applies it on reading
            assert 0x0112 not in exif and image.size == (30, 44)
            return
        assert exif[0x0112] == 6 and image.size == (44, 30)
    if fmt == "png":  # byte-identical to Pillow given the same metadata
        assert (tmp_path / "out.jpg").read_bytes() == pillow_jpeg(
            array, 75, exif=exif_bytes(6), icc_profile=srgb_profile())
    result = invoke("encode", str(source), "-o", str(tmp_path / "up.jpg"), "--auto-orient")
    assert result.exit_code == 0
    with Image.open(tmp_path / "up.jpg") as image:
        assert image.size == (30, 44) and image.getexif()[0x0112] == 1


def test_png_dpi_xmp_and_comment_to_jpeg(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    array = synthetic(16, 24, seed=9)
    text = PngImagePlugin.PngInfo()
    text.add_itxt("XML:com.adobe.xmp", XMP.decode())
    text.add_text("Comment", "from png")
    source = tmp_path / "in.png"
    Image.fromarray(array).save(source, dpi=(300, 300), pnginfo=text)
    result = invoke("encode", str(source), "-o", str(tmp_path / "out.jpg"))
    assert result.exit_code == 0
    assert (tmp_path / "out.jpg").read_bytes() == pillow_jpeg(array, 75, dpi=(300, 300),
                                                              xmp=XMP, comment=b"from png")


def test_gray_jpeg_drops_an_rgb_profile_with_a_warning(tmp_path: Path) -> None:
    source = tmp_path / "rgb.png"
    Image.fromarray(synthetic(16, 16)).save(source, icc_profile=srgb_profile())
    result = invoke("encode", str(source), "-o", str(tmp_path / "g.jpg"), "--grayscale")
    assert result.exit_code == 0
    assert "RGB ICC profile" in result.stderr
    assert md.read_jpeg_metadata((tmp_path / "g.jpg").read_bytes()).icc_profile is None


def test_oversized_exif_from_png_is_dropped_with_a_warning(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 70000
    source = tmp_path / "big.png"
    Image.fromarray(synthetic(8, 8)).save(source, exif=exif.tobytes(),
                                          icc_profile=srgb_profile())
    result = invoke("encode", str(source), "-o", str(tmp_path / "out.jpg"))
    assert result.exit_code == 0
    assert "EXIF" in result.stderr and "dropped" in result.stderr
    meta = md.read_jpeg_metadata((tmp_path / "out.jpg").read_bytes())
    assert meta.exif is None and meta.icc_profile == srgb_profile()


# --- the CLI: decode ---------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["png", "tif", "webp", "jpg"])
def test_decode_writes_icc_and_exif(tmp_path: Path, ext: str) -> None:
    array = synthetic(40, 64, seed=10)
    source = tmp_path / "phone.jpg"
    source.write_bytes(phone_jpeg(array, dpi=(300, 300)))
    target = tmp_path / f"out.{ext}"
    result = invoke("decode", str(source), "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    with Image.open(target) as image:
        if ext == "tif":  # (Pillow applies a TIFF's orientation when loading: look first)
            assert image.tag_v2[0x0112] == 6 and image.size == (40, 64)
        image.load()
        assert image.info["icc_profile"] == srgb_profile()
        exif = image.getexif()
        assert exif[0x010F] == "PhoneMaker"
        assert ext == "tif" or exif[0x0112] == 6
        if ext != "webp":
            assert tuple(round(v) for v in image.info["dpi"]) == (300, 300)
        if ext in ("png", "webp", "jpg"):
            assert XMP in md.from_pillow(image).xmp
        if ext == "png":
            assert np.array_equal(np.asarray(image), np.asarray(Image.open(source)))


def test_decode_auto_orient_and_formats_without_metadata(tmp_path: Path) -> None:
    array = synthetic(40, 64, seed=11)
    source = tmp_path / "phone.jpg"
    source.write_bytes(phone_jpeg(array, 8))
    result = invoke("decode", str(source), "-o", str(tmp_path / "up.png"), "--auto-orient")
    assert result.exit_code == 0
    with Image.open(tmp_path / "up.png") as image:
        assert np.array_equal(np.asarray(image),
                              np.asarray(ImageOps.exif_transpose(Image.open(source))))
        assert image.getexif()[0x0112] == 1
    result = invoke("decode", str(source), "-o", str(tmp_path / "out.ppm"))
    assert result.exit_code == 0
    assert "PPM cannot hold the ICC profile, EXIF, XMP: dropped" in result.stderr
    quiet = invoke("decode", str(source), "-o", str(tmp_path / "q.ppm"), "-Q")
    assert quiet.exit_code == 0 and quiet.stderr == ""


# --- jtorch info ---------------------------------------------------------------------------


def test_info_lists_the_metadata(tmp_path: Path) -> None:
    source = tmp_path / "phone.jpg"
    source.write_bytes(phone_jpeg(synthetic(16, 16), comment=b"hello", dpi=(72, 72),
                                  icc_profile=big_profile()))
    result = invoke("info", str(source), "--json")
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)[0]["metadata"]
    assert meta["exif"] == {"bytes": len(exif_bytes()) - 6, "orientation": 6}
    assert meta["icc_profile"]["bytes"] == 140_000 and meta["icc_profile"]["segments"] == 3
    assert meta["xmp"]["bytes"] == len(XMP) and meta["comments"] == ["hello"]
    assert meta["density"] == {"units": "dpi", "x": 72, "y": 72}
    text = invoke("info", str(source)).stdout
    assert "EXIF: " in text and "orientation 6 (rotated 90 CW)" in text
    assert "ICC profile: 140000 bytes in 3 segments" in text and "XMP: " in text
    assert 'comment: "hello"' in text and "density: 72x72 dpi" in text
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(pillow_jpeg(synthetic(8, 8)))
    assert "metadata:      none" in invoke("info", str(plain)).stdout
    assert json.loads(invoke("info", str(plain), "--json").stdout)[0]["metadata"] == {}


def test_jfxx_extension_stays_right_after_jfif() -> None:
    jfxx = b"\xff\xe0\x00\x0aJFXX\x00\x10ab"
    source = pillow_jpeg(synthetic(8, 8), exif=exif_bytes(1), extra=jfxx)
    meta = md.read_jpeg_metadata(source)
    assert meta.extra == ((0xE0, jfxx[4:]),)
    import jpegtorch

    again = jpegtorch.write_coefficients(jpegtorch.read_coefficients(source), metadata=meta)
    markers = [(m, p[:4]) for m, _, p in md.iter_segments(again)][:3]
    assert markers == [(0xE0, b"JFIF"), (0xE0, b"JFXX"), (0xE1, b"Exif")]


def test_an_inconsistent_icc_set_is_kept_as_it_is(tmp_path: Path) -> None:
    """Two chunks both numbered 1 of 1: not a profile (ICC.1 B.4); the segments are
    kept verbatim, as jpegtran does, and reported once with a count."""
    chunk = md.segment(0xE2, md.ICC_HEADER + b"\x01\x01" + b"profile")
    source = tmp_path / "odd.jpg"
    source.write_bytes(pillow_jpeg(synthetic(8, 8), extra=chunk + chunk))
    meta = md.read_jpeg_metadata(source.read_bytes())
    assert meta.icc_profile is None and meta.extra == ((0xE2, chunk[4:]),) * 2
    result = invoke("encode", str(source), "-o", str(tmp_path / "out.jpg"))
    assert result.exit_code == 0
    assert md.read_jpeg_metadata((tmp_path / "out.jpg").read_bytes()).extra == meta.extra
    text = invoke("info", str(source)).stdout
    assert "other: APP2 ICC_PROFILE (2 segments, 42 bytes)" in text
    result = invoke("decode", str(source), "-o", str(tmp_path / "odd.png"))
    assert "PNG cannot hold the 2 APP2 segments: dropped" in result.stderr


def png_chunk_list(data: bytes) -> list[tuple[bytes, bytes]]:
    import struct

    chunks, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def test_metadata_paths_do_not_import_torch(tmp_path: Path) -> None:
    """The streaming encoder and the band-by-band PNG decoder carry the metadata
    without torch; the PNG's chunks before the image data are Pillow's."""
    import sys

    array = synthetic(40, 64, seed=12)
    (tmp_path / "phone.jpg").write_bytes(phone_jpeg(array, dpi=(300, 300)))
    Image.fromarray(array).save(tmp_path / "photo.png", icc_profile=srgb_profile(),
                                exif=exif_bytes(3))
    code = ("import sys\nfrom jpegtorch.cli.main import main\n"
            "sys.argv = ['jtorch', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    for args in (["encode", "phone.jpg", "-o", "a.jpg"], ["encode", "photo.png"],
                 ["decode", "phone.jpg", "-o", "b.png"]):
        result = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    decoded = np.asarray(Image.open(io.BytesIO((tmp_path / "phone.jpg").read_bytes())))
    original = md.read_jpeg_metadata((tmp_path / "phone.jpg").read_bytes())
    assert (tmp_path / "a.jpg").read_bytes() == pillow_jpeg(
        decoded, 75, exif=b"Exif\0\0" + original.exif, icc_profile=srgb_profile(), xmp=XMP,
        dpi=(300, 300))
    with Image.open(tmp_path / "photo.jpg") as image:
        assert image.info["icc_profile"] == srgb_profile() and image.getexif()[0x0112] == 3
    # b.png: the ancillary chunks Pillow writes for the same metadata, in its order
    options, dropped = md.pillow_save_options(original, "PNG")
    assert not dropped
    reference = io.BytesIO()
    Image.fromarray(decoded).save(reference, "PNG", **options)
    ours = png_chunk_list((tmp_path / "b.png").read_bytes())
    theirs = png_chunk_list(reference.getvalue())
    assert [c for c in ours if c[0] not in (b"IDAT",)] == [
        c for c in theirs if c[0] not in (b"IDAT",)]
    assert [c[0] for c in ours[1:5]] == [b"iCCP", b"iTXt", b"pHYs", b"eXIf"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), decoded)


def test_progressive_keeps_metadata_as_pillow(tmp_path: Path) -> None:
    """--progressive (the multi-scan writer) carries EXIF/ICC/XMP like the
    sequential one: the bytes of Pillow's save(progressive=True, exif=, ...)."""
    array = synthetic(40, 64, seed=13)
    source = tmp_path / "phone.jpg"
    source.write_bytes(phone_jpeg(array))
    result = invoke("encode", str(source), "--progressive", "-o", str(tmp_path / "p.jpg"))
    assert result.exit_code == 0, result.output
    decoded = np.asarray(Image.open(source))
    original = md.read_jpeg_metadata(source.read_bytes())
    assert (tmp_path / "p.jpg").read_bytes() == pillow_jpeg(
        decoded, 75, progressive=True, exif=b"Exif\0\0" + original.exif,
        icc_profile=srgb_profile(), xmp=XMP)
    result = invoke("encode", str(source), "--progressive", "--strip", "-o",
                    str(tmp_path / "s.jpg"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.jpg").read_bytes() == pillow_jpeg(decoded, 75, progressive=True)
