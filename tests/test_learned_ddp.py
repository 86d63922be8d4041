"""The trainer's DistributedDataParallel path: 2 CPU processes, gloo, 127.0.0.1 only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_gloo_processes(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(data / f"{i}.png")
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
           "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "--module", "jpegtorch.cli.main",
           "train", "codec", "--data", str(data), "--lambda", "0.01,0.05", "--steps", "3",
           "--crop", "32", "--batch", "2", "--channels", "8", "--latent", "8",
           "--device", "cpu", "--threads", "1", "--log-every", "1", "-o", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=55)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.exists()
    state = torch.load(out.with_name("ddp.pt.ckpt"), weights_only=False)
    assert state["step"] == 3
    # only rank 0 logs and writes
    assert proc.stderr.count("step 3 ") == 1
