"""``jtorch demo``: the main job on a folder of images (``make demo`` runs it on
``samples/``): encode each image with our writer at a few qualities, decode it
with our decoder, and check both against libjpeg-turbo (Pillow)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CliError, force_option, handle_errors, quiet_debug_options, run_batch
from ._files import OutputFiles

IMAGE_SUFFIXES = {".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp", ".jpg", ".jpeg"}


def _qualities(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter("give qualities as a comma-separated list, e.g. 10,50,90"
                                 ) from None
    if not values or any(v < 1 or v > 100 for v in values):
        raise click.BadParameter("qualities must be in 1..100")
    return values


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default="samples")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              default=Path("out/demo"), show_default=True,
              help="Directory for the .jpg files and decoded .png images.")
@click.option("-q", "--quality", "qualities", default="10,50,90", show_default=True,
              help="Comma-separated qualities.")
@click.option("--subsampling", type=click.Choice(["4:4:4", "4:2:2", "4:2:0"]),
              default="4:2:0", show_default=True)
@force_option
@quiet_debug_options
@handle_errors
def demo(folder: Path, output: Path, qualities: str, subsampling: str, force: bool,
         quiet: bool, debug: bool) -> None:
    """Encode and decode every image in FOLDER, checking against libjpeg-turbo.

    For each image and quality: our .jpg must be byte-identical to Pillow's,
    our decoded pixels identical to Pillow's decode, and the differentiable
    pipeline (ste mode) identical too. Prints bytes, bpp and PSNR; exits 1 on
    any mismatch.

    \b
    Example:
      jtorch demo samples -o out/demo -q 10,50,90 --force   # make demo
    """
    import io

    import numpy as np
    import torch
    from PIL import Image

    import jpegtorch

    levels = _qualities(qualities)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise CliError(f"no images in {folder}")
    files = OutputFiles(force=force, inputs=[str(p) for p in paths])
    pil_subsampling = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}[subsampling]
    header = (f"{'image':28s} {'q':>3s} {'bytes':>7s} {'bpp':>6s} {'PSNR':>6s} "
              f"{'bytes=Pillow':>12s} {'pixels=Pillow':>13s} {'ste=Pillow':>10s}")
    click.echo(header)
    mismatches = 0

    def process(_: int, path_text: str) -> None:
        nonlocal mismatches
        path = Path(path_text)
        image = Image.open(path)
        image = image.convert("L" if image.mode in ("L", "I;16", "I") else "RGB")
        array = np.array(image)
        tensor = torch.from_numpy(array)
        tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()
        height, width = array.shape[:2]
        for q in levels:
            ours = jpegtorch.encode_jpeg(tensor, q, subsampling=subsampling)
            buffer = io.BytesIO()
            options = {"quality": q} | ({"subsampling": pil_subsampling}
                                         if array.ndim == 3 else {})
            image.save(buffer, "JPEG", **options)
            reference = buffer.getvalue()
            decoded = jpegtorch.decode_jpeg(ours)
            pil_pixels = np.array(Image.open(io.BytesIO(reference)))
            ours_pixels = decoded.permute(1, 2, 0).numpy()
            ours_pixels = ours_pixels[..., 0] if ours_pixels.shape[-1] == 1 else ours_pixels
            ste = jpegtorch.jpeg(tensor.float() / 255, q, subsampling=subsampling, mode="ste")
            ste_pixels = (ste * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            ste_pixels = ste_pixels[..., 0] if ste_pixels.shape[-1] == 1 else ste_pixels
            same_bytes = ours == reference
            same_pixels = np.array_equal(ours_pixels, pil_pixels)
            same_ste = np.array_equal(ste_pixels, pil_pixels)
            mismatches += (not same_bytes) + (not same_pixels) + (not same_ste)
            mse = float(np.mean((ours_pixels.astype(np.float64) - array) ** 2))
            psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
            stem = f"{path.stem}_q{q}"
            files.write(str(output / f"{stem}.jpg"), ours)
            png = io.BytesIO()
            Image.fromarray(ours_pixels).save(png, "PNG")
            files.write(str(output / f"{stem}.png"), png.getvalue())
            click.echo(f"{path.name[:28]:28s} {q:3d} {len(ours):7d} "
                       f"{8 * len(ours) / (height * width):6.3f} {psnr:6.2f} "
                       f"{'yes' if same_bytes else 'NO':>12s} "
                       f"{'yes' if same_pixels else 'NO':>13s} {'yes' if same_ste else 'NO':>10s}")

    failures = run_batch([str(p) for p in paths], process, quiet=quiet, debug=debug,
                         desc="demo")
    click.echo(f"wrote {len(paths) * len(levels)} .jpg and .png files to {output}")
    if failures or mismatches:
        click.echo(f"jtorch: {failures} failed images, {mismatches} mismatches with Pillow",
                   err=True)
        raise SystemExit(1)
    click.echo("all files byte-identical to libjpeg-turbo, all decodes pixel-identical")
