"""``jtorch train codec``: train the learned codec (all quality levels at once)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import CliError, force_option, handle_errors, quiet_debug_options, warn
from ._files import refuse_existing

DEFAULT_LAMBDAS = "0.0018,0.0035,0.0067,0.013,0.025,0.048"


def _parse_lambdas(values: tuple[str, ...]) -> tuple[float, ...]:
    out = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                lam = float(part)
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a number", param_hint="--lambda"
                                         ) from None
            if not lam > 0:
                raise click.BadParameter("λ must be positive", param_hint="--lambda")
            out.append(lam)
    if not out:
        raise click.BadParameter("no λ given", param_hint="--lambda")
    if len(out) > 255:
        raise click.BadParameter("at most 255 levels", param_hint="--lambda")
    return tuple(sorted(out))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of training images (PNG/JPEG...), or of MNIST IDX files.")
@click.option("--lambda", "lambdas", multiple=True, default=(DEFAULT_LAMBDAS,),
              show_default=True, metavar="L[,L...]",
              help="Rate-distortion trade-off(s) λ (loss λ·255²·MSE + bpp); one quality "
                   "level per λ, sorted (level 1 = smallest λ = smallest files).")
@click.option("--steps", type=click.IntRange(1), default=10000, show_default=True,
              help="Total optimizer steps (a resumed run continues up to this many).")
@click.option("--crop", type=click.IntRange(16), default=None,
              help="Square crop size, a multiple of 16 [default: 128; MNIST: 32].")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True,
              help="Crops per step (per process under torchrun).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=5e-4, show_default=True,
              help="Adam learning rate (warm-up, then ÷10 for the last 15% of the steps).")
@click.option("--channels", "n", type=click.IntRange(4), default=None,
              help="Hidden channels N of the transforms [default: 80; MNIST: 32].")
@click.option("--latent", "m", type=click.IntRange(1), default=None,
              help="Latent channels M [default: 128; MNIST: 32].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Training device (auto: CUDA when available).")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Continue from a checkpoint (architecture and λ come from it).")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file [default: MODEL.ckpt].")
@click.option("--checkpoint-minutes", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Write the checkpoint this often (and at the end).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for torch [default: torch's choice].")
@click.option("--cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Cache the decoded training images in this file (reused when present).")
@click.option("--eval", "n_eval", type=click.IntRange(0), default=None,
              help="Hold out this many images and report each level's real bpp/PSNR "
                   "(coded .jtc) at the end [default: 0; MNIST: 200].")
@click.option("--log-every", type=click.IntRange(1), default=100, show_default=True,
              help="Print a per-level bpp/PSNR line every this many steps (when --quiet "
                   "or not on a terminal).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The trained model file (float16 weights + integer CDF tables).")
@force_option
@quiet_debug_options
@handle_errors
def codec(data: Path, lambdas: tuple[str, ...], steps: int, crop: int | None, batch: int,
          lr: float, n: int | None, m: int | None, device: str, resume: Path | None,
          checkpoint: Path | None, checkpoint_minutes: float, seed: int, threads: int | None,
          cache: Path | None, n_eval: int | None, log_every: int, output: Path,
          force: bool, quiet: bool, debug: bool) -> None:
    """Train the learned codec: a GDN autoencoder with one factorized prior per level.

    All levels share the transforms (gain units select the rate); each step
    trains one level with additive-noise rate and straight-through rounding.
    Progress shows the running bpp and PSNR; a checkpoint is written every few
    minutes, and --resume continues a run exactly. Under torchrun the run is
    data-parallel (DistributedDataParallel; gloo on CPU, NCCL on CUDA).

    \b
    Examples:
      jtorch train codec --data ../shared/data/train --steps 20000 -o model.pt
      jtorch train codec --data ../shared/data/train --resume model.pt.ckpt -o model.pt -f
      jtorch train codec --data ../shared/data/mnist --lambda 0.002,0.008,0.03,0.1 \\
          --steps 2000 -o mnist.pt
      torchrun --nproc_per_node 2 -m jpegtorch.cli.main train codec --data DIR -o model.pt
    """
    import os
    import sys

    import numpy as np
    import torch

    from jpegtorch.learned.data import CropSampler, load_training_set
    from jpegtorch.learned.train import TrainConfig, TrainingInterrupted, train

    lams = _parse_lambdas(lambdas)
    ckpt = checkpoint if checkpoint is not None else output.with_name(output.name + ".ckpt")
    if threads is not None:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda: no CUDA device available")
    images, kind = load_training_set(data, cache)
    mnist = kind == "mnist"
    crop = crop if crop is not None else (32 if mnist else 128)
    if crop % 16:
        raise click.BadParameter("must be a multiple of 16", param_hint="--crop")
    n_eval = n_eval if n_eval is not None else (200 if mnist else 0)
    if n_eval >= len(images):
        raise click.BadParameter(f"only {len(images)} images", param_hint="--eval")
    # Refused before training, not after; the checkpoint a run resumes from is its own.
    refuse_existing([output, ckpt], force=force, allowed=[resume])
    held_out = images[len(images) - n_eval:] if n_eval else []
    train_images = images[: len(images) - n_eval]
    config = TrainConfig(
        lambdas=lams, steps=steps, crop=crop, batch=batch, lr=lr, seed=seed,
        n=n if n is not None else (32 if mnist else 80),
        m=m if m is not None else (32 if mnist else 128),
        in_channels=1 if mnist else 3, checkpoint_minutes=checkpoint_minutes,
        log_every=log_every)
    rank = int(os.environ.get("RANK", "0"))
    interactive = sys.stderr.isatty() and not quiet
    if rank == 0 and not quiet:
        click.echo(f"jtorch: training on {len(train_images)} {kind} images, "
                   f"λ = {', '.join(f'{v:g}' for v in lams)}, device {device}", err=True)

    def log(message: str) -> None:
        if not interactive:
            click.echo(message, err=True)

    meta = {"data": str(data), "kind": kind, "command": " ".join(sys.argv)}
    try:
        result = train(config, CropSampler(train_images), output, checkpoint=ckpt,
                       resume=resume, device=device, progress=interactive, log=log, meta=meta)
    except TrainingInterrupted as stopped:
        if rank == 0:
            click.echo(f"jtorch: interrupted after step {stopped.step}; checkpoint saved to "
                       f"{ckpt} (continue with --resume {ckpt})", err=True)
        sys.exit(130)
    if rank != 0:
        return
    if not quiet:
        click.echo(f"jtorch: wrote {output} (checkpoint {ckpt}); final running loss "
                   f"{result['loss']:.4f}", err=True)
    if held_out:
        from jpegtorch.learned.codec import decode_image, encode_image

        if mnist:  # score the original 28x28 digits, not the padding
            held_out = [im[2:30, 2:30] for im in held_out]
        from jpegtorch.formats.container import unpack

        click.echo(f"rate-distortion on {len(held_out)} held-out images "
                   "(bpp: whole .jtc file / entropy-coded streams only)", err=quiet)
        click.echo("level  lambda    bpp(file)  bpp(streams)  PSNR(dB)", err=quiet)
        for level, lam in enumerate(config.lambdas, start=1):
            bits = stream_bits = pixels = 0
            sq = 0.0
            for im in held_out:
                chw = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)
                blob = encode_image(chw, level, model=output, device=device)
                back = decode_image(blob, model=output)
                bits += 8 * len(blob)
                stream_bits += 8 * sum(len(st.data) for st in unpack(blob).streams)
                pixels += chw.shape[1] * chw.shape[2]
                sq += float(((back.double() - chw.double()) ** 2).mean())
            mse = sq / len(held_out)
            psnr = 10 * np.log10(255.0**2 / max(mse, 1e-12))
            click.echo(f"{level:5d}  {lam:<8g}  {bits / pixels:9.3f}  {stream_bits / pixels:12.3f}"
                       f"  {psnr:8.2f}")
    elif n_eval == 0 and mnist:
        warn("no held-out images: no rate-distortion table", quiet=quiet)
