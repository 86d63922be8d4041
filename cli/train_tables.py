"""``jtorch train tables``: learn quantization tables for a data set and an objective."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from ._common import (
    CliError,
    force_option,
    handle_errors,
    quiet_debug_options,
    warn,
    write_output,
)
from ._files import refuse_existing

OBJECTIVES = ("psnr", "ssim", "ms-ssim")
#: Options that define a run: on --resume, those not given come from the checkpoint.
RUN_OPTIONS = {
    "objective": "objective", "lam": "lam", "target_bpp": "target_bpp",
    "quality_range": "quality_range", "subsampling": "subsampling", "crop": "crop",
    "batch": "batch", "seed": "seed", "lr": "lr", "init": "init",
}


def _quality_range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    low, sep, high = value.partition(":")
    try:
        lo, hi = (int(low), int(high)) if sep else (int(low), int(low))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not LOW:HIGH (integers)") from None
    if not 1 <= lo <= hi <= 100:
        raise click.BadParameter(f"{value!r}: need 1 <= LOW <= HIGH <= 100")
    return lo, hi


def _beside(output: str, suffix: str) -> Path:
    path = Path(output)
    return path.with_suffix(suffix) if path.suffix else path.with_name(path.name + suffix)


def sidecar_path(output: str) -> Path:
    """The JSON sidecar of a tables file: ``tuned.txt`` -> ``tuned.json``."""
    return _beside(output, ".json")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", required=True, type=click.Path(exists=True, path_type=Path),
              help="Folder of training images (searched recursively), or one image.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="psnr", show_default=True,
              help="Distortion to minimise (RGB PSNR, SSIM or MS-SSIM).")
@click.option("--lambda", "lam", type=click.FloatRange(0), default=None, metavar="L",
              help="Fixed trade-off: loss = D + L*log2(bpp), D in dB (-PSNR or "
                   "10*log10(1-SSIM)); L = dB given for halving the file. "
                   "[default: adapted so the files match Annex K's size at each quality]")
@click.option("--target-bpp", type=click.FloatRange(0, min_open=True), default=None,
              metavar="B", help="Adapt lambda until the crops average B bits per pixel "
                                "(geometric mean over the quality range).")
@click.option("--quality-range", default="30:90", show_default=True, metavar="LOW:HIGH",
              callback=_quality_range, help="Qualities drawn per crop (libjpeg scale).")
@click.option("--subsampling", type=click.Choice(["4:4:4", "4:2:2", "4:2:0"]),
              default="4:2:0", show_default=True, help="Chroma subsampling to train for.")
@click.option("--steps", type=click.IntRange(0), default=600, show_default=True,
              help="Total optimisation steps. A resumed run continues up to this many "
                   "(more than the checkpoint's run: the learning-rate decay restarts).")
@click.option("--crop", type=click.IntRange(16), default=256, show_default=True,
              help="Side of the square training crops (MS-SSIM: at least 161).")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True,
              help="Crops per step.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the crop and quality sampling (runs are reproducible).")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=0.02,
              show_default=True, help="Adam learning rate on the log tables (cosine decay).")
@click.option("--init", default="annex-k", show_default=True, metavar="FILE|PRESET",
              help="Initial tables: a cjpeg -qtables file or a preset name.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to train (auto: CUDA when available).")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="CPU threads for torch. The tensors of a step are small: one thread "
                   "is about as fast as several, and far faster when other processes "
                   "keep the cores busy.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Continue from a checkpoint; options not given come from it.")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint file [default: OUT with suffix .ckpt].")
@click.option("--checkpoint-every", type=click.IntRange(0), default=100, show_default=True,
              help="Write the checkpoint every N steps (0: only at the end).")
@click.option("--eval-crops", type=click.IntRange(0), default=24, show_default=True,
              help="Measure real files on this many fixed training crops at the end "
                   "(recorded in the sidecar; 0: skip).")
@click.option("--log-every", type=click.IntRange(1), default=50, show_default=True,
              help="Progress line every N steps when stderr is not a terminal.")
@click.option("-o", "--output", required=True, metavar="OUT",
              help="The tables file (cjpeg -qtables text); the sidecar goes to OUT.json "
                   "(OUT's suffix replaced).")
@force_option
@quiet_debug_options
@handle_errors
def tables(data: Path, objective: str, lam: float | None, target_bpp: float | None,
           quality_range: tuple[int, int], subsampling: str, steps: int, crop: int, batch: int,
           seed: int, lr: float, init: str, device: str, threads: int,
           resume: Path | None, checkpoint: Path | None, checkpoint_every: int,
           eval_crops: int, log_every: int, output: str, force: bool, quiet: bool,
           debug: bool) -> None:
    """Learn JPEG quantization tables for a data set: base luma and chroma tables
    that any JPEG decoder reads, scaled by --quality as libjpeg scales its own.

    Each step draws random crops and qualities, compresses them through the
    exact libjpeg-turbo pipeline (straight-through gradients) and the
    calibrated rate proxy, and takes an Adam step on the log tables
    (rounded, clamped to 1..255). A progress bar shows the running loss,
    bpp and PSNR; checkpoints allow --resume. OUT can be used as
    `jtorch encode --tables OUT` or `cjpeg -qtables OUT -quality Q`.

    \b
    Examples:
      jtorch train tables --data ../shared/data/train -o tuned.txt
      jtorch train tables --data photos/ --objective ssim --steps 1000 -o ssim.txt
      jtorch train tables --data photos/ --target-bpp 1.0 --quality-range 50:50 -o q50.txt
      jtorch train tables --data photos/ --resume tuned.ckpt --steps 1200 -o tuned.txt -f
      jtorch encode photo.png --tables tuned.txt -q 75 --optimize -o photo.jpg
    """
    if lam is not None and target_bpp is not None:
        raise click.UsageError("give --lambda or --target-bpp, not both")
    if objective == "ms-ssim" and crop < 161:
        raise click.BadParameter("MS-SSIM needs crops of at least 161 pixels",
                                 param_hint="--crop")
    sidecar = sidecar_path(output)
    if output == "-":
        raise click.BadParameter("the tables need a file (a JSON sidecar goes beside it)",
                                 param_hint="-o")
    if sidecar.resolve() == Path(output).resolve():
        raise click.BadParameter("OUT must not end in .json (that is the sidecar's name)",
                                 param_hint="-o")
    if not Path(output).resolve().parent.is_dir():
        raise CliError(f"output directory {Path(output).parent} does not exist")
    # Existing results are refused before hours of training, not after; the
    # checkpoint a run resumes from is its own and keeps being updated.
    refuse_existing([output, sidecar, checkpoint or _beside(output, ".ckpt")], force=force,
                    allowed=[resume])

    import torch
    from jpegtorch.formats.qtables import format_qtables

    from jpegtorch.optimize import tables as tune

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise CliError("--device cuda: no CUDA device available")

        settings: dict[str, Any] = {
            "objective": objective, "lam": lam, "target_bpp": target_bpp,
            "quality_range": quality_range, "subsampling": subsampling, "crop": crop,
            "batch": batch, "seed": seed, "lr": lr, "init": init,
        }
        state = None
        if resume is not None:
            state = tune.load_checkpoint(resume)
            ctx = click.get_current_context()
            saved = state["config"]
            for option, key in RUN_OPTIONS.items():
                given = ctx.get_parameter_source(option) == click.core.ParameterSource.COMMANDLINE
                value = tuple(saved[key]) if key == "quality_range" else saved[key]
                if not given:
                    settings[key] = value
                elif settings[key] != value:
                    raise click.BadParameter(
                        f"the checkpoint was trained with {value!r}; got {settings[key]!r}",
                        param_hint=f"--{option.replace('_', '-')}" if option != "lam"
                        else "--lambda")
        try:
            config = tune.TrainConfig(steps=steps, **settings)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None

        images = tune.load_images(data, min_size=config.crop,
                                  warn=lambda message: warn(message, quiet=quiet))
        trainer = tune.TableTrainer(images, config, device=device)
        if state is not None:
            if state.get("data_fingerprint") != images.fingerprint:
                warn(f"{data}: not the images the checkpoint was trained on", quiet=quiet)
            trainer.load_state_dict(state)
        ckpt = checkpoint if checkpoint is not None else _beside(output, ".ckpt")

        if not quiet:
            if config.lam is not None:
                mode = f"lambda {config.lam:g}"
            elif config.target_bpp is not None:
                mode = f"target {config.target_bpp:g} bpp"
            else:
                mode = "rate matched to Annex K"
            plural = "s" if len(images) != 1 else ""
            click.echo(f"jtorch: training {config.objective} tables on {len(images)} "
                       f"image{plural} ({images.pixels / 1e6:.1f} MP), {config.steps} steps of "
                       f"{config.batch}x{config.crop}px crops, quality {quality_range[0]}:"
                       f"{quality_range[1]}, {config.subsampling}, {mode}, {device}", err=True)
        callback, close = _progress(trainer, quiet=quiet, log_every=log_every)
        try:
            result = trainer.train(callback=callback, checkpoint=ckpt,
                                   checkpoint_every=checkpoint_every)
        finally:
            close()

        base = result.round().to(torch.int64)
        luma = base[0].reshape(-1).tolist()
        chroma = base[1].reshape(-1).tolist()
        evaluation = None
        if eval_crops:
            low, high = config.quality_range
            qualities = sorted({round(low + (high - low) * k / 4) for k in range(5)})
            if len(qualities) >= 2:
                if not quiet:
                    click.echo(f"jtorch: measuring real files on {eval_crops} training crops, "
                               f"qualities {', '.join(map(str, qualities))}", err=True)
                evaluation = tune.evaluate_tables(images, base, qualities=qualities,
                                                  subsampling=config.subsampling,
                                                  count=eval_crops, crop=config.crop)
        comment = (f"jpegtorch tuned base quantization tables ({config.objective}, "
                   f"{trainer.step} steps on {data})\n"
                   f"natural order; scaled by quality as libjpeg does: "
                   f"cjpeg -qtables FILE -quality Q")
        text = format_qtables([luma, chroma], comment=comment)
        last = trainer.history[-1] if trainer.history else None
        meta = {
            "format": tune.SIDECAR_FORMAT,
            "tables_file": Path(output).name,
            "objective": config.objective,
            "lambda": trainer.lam,
            "lambda_mode": config.lambda_mode,
            "target_bpp": config.target_bpp,
            "data": str(data),
            "data_images": len(images),
            "data_megapixels": round(images.pixels / 1e6, 3),
            "data_fingerprint": images.fingerprint,
            "steps": trainer.step,
            "quality_range": list(config.quality_range),
            "subsampling": config.subsampling,
            "crop": config.crop,
            "batch": config.batch,
            "seed": config.seed,
            "lr": config.lr,
            "init": config.init,
            "device": device,
            "train_seconds": round(trainer.elapsed, 1),
            "command": "jtorch " + " ".join(sys.argv[1:]) if sys.argv else "",
            "final": None if last is None else {
                "loss": last.loss, "bpp": last.bpp, "psnr": last.psnr, "lambda": last.lam,
                "reference_bpp": last.reference_bpp},
            "train_eval": evaluation,
            "luma": luma,
            "chroma": chroma,
        }
        write_output(output, text.encode("ascii"), force=True)  # checked at the start
        write_output(str(sidecar), (json.dumps(meta, indent=2) + "\n").encode(), force=True)
        if not quiet:
            click.echo(f"jtorch: wrote {output} and {sidecar} (checkpoint {ckpt})", err=True)
            if evaluation is not None:
                click.echo(
                    f"jtorch: on the training crops vs Annex K: BD-rate "
                    f"{evaluation['bd_rate_psnr']:+.2f}% at equal PSNR, "
                    f"{evaluation['bd_rate_ssim']:+.2f}% at equal SSIM; mean bpp "
                    f"{_mean(evaluation['anchor']['bpp']):.3f} -> "
                    f"{_mean(evaluation['tuned']['bpp']):.3f}, PSNR "
                    f"{_mean(evaluation['anchor']['psnr']):.2f} -> "
                    f"{_mean(evaluation['tuned']['psnr']):.2f} dB", err=True)

    finally:  # in-process callers keep their thread count
        torch.set_num_threads(previous_threads)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _progress(trainer: Any, *, quiet: bool, log_every: int) -> tuple[Any, Any]:
    """A per-step callback showing running means, and a function closing it."""
    interactive = sys.stderr.isatty() and not quiet
    running: dict[str, float] = {}
    bar = None
    if interactive:
        from tqdm import tqdm

        bar = tqdm(total=trainer.config.steps, initial=trainer.step, unit="step",
                   file=sys.stderr, dynamic_ncols=True, leave=True)

    def callback(stats: Any) -> None:
        for key in ("loss", "bpp", "psnr"):
            value = getattr(stats, key)
            running[key] = value if key not in running else 0.9 * running[key] + 0.1 * value
        if bar is not None:
            bar.set_postfix(loss=f"{running['loss']:.3f}", bpp=f"{running['bpp']:.3f}",
                            psnr=f"{running['psnr']:.2f}", lam=f"{stats.lam:.2f}",
                            refresh=False)
            bar.update(1)
        elif not quiet and (stats.step % log_every == 0 or stats.step == trainer.config.steps):
            click.echo(f"step {stats.step}/{trainer.config.steps}  loss {running['loss']:.3f}"
                       f"  bpp {running['bpp']:.3f}  PSNR {running['psnr']:.2f} dB"
                       f"  lambda {stats.lam:.2f}", err=True)

    def close() -> None:
        if bar is not None:
            bar.close()

    return callback, close
