"""Compatibility module: the table trainer now lives in :mod:`jpegtorch.optimize.tables`.

``from jpegtorch import tune`` keeps working (``tune.TableTrainer``,
``tune.TrainConfig``, ``tune.load_images``, ...): every public name of
:mod:`jpegtorch.optimize.tables` is re-exported here. New code should import
from :mod:`jpegtorch.optimize`.
"""

from __future__ import annotations

from .optimize.tables import (
    CHECKPOINT_FORMAT,
    IMAGE_SUFFIXES,
    LAMBDA_RANGE,
    NONZERO_GAIN,
    OBJECTIVES,
    SIDECAR_FORMAT,
    SUBSAMPLINGS,
    ZERO_GAIN,
    CropSampler,
    ImageSet,
    StepStats,
    TableTrainer,
    TrainConfig,
    calibrated_gradients,
    distortion_db,
    evaluate_tables,
    evaluation_crops,
    initial_tables,
    load_checkpoint,
    load_images,
    mean_bd_rate,
    measure,
    save_checkpoint,
    tables_from_log,
    train_tables,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "IMAGE_SUFFIXES",
    "LAMBDA_RANGE",
    "NONZERO_GAIN",
    "OBJECTIVES",
    "SIDECAR_FORMAT",
    "SUBSAMPLINGS",
    "ZERO_GAIN",
    "CropSampler",
    "ImageSet",
    "StepStats",
    "TableTrainer",
    "TrainConfig",
    "calibrated_gradients",
    "distortion_db",
    "evaluate_tables",
    "evaluation_crops",
    "initial_tables",
    "load_checkpoint",
    "load_images",
    "mean_bd_rate",
    "measure",
    "save_checkpoint",
    "tables_from_log",
    "train_tables",
]
