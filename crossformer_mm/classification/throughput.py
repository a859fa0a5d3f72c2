"""Inference throughput of a classifier, as the original ``main.py --throughput``:
images/s of the forward pass at a given batch, timed after warm-up batches."""

import time
from typing import Dict

import torch
from torch import nn


def measure_throughput(
    model: nn.Module,
    batch_size: int,
    image_size: int = 224,
    warmup: int = 50,
    iters: int = 30,
    device: str = 'cpu',
) -> Dict[str, float]:
    """Time ``iters`` forward passes of a (B, 3, S, S) batch after ``warmup``
    ones (the original: 50 and 30), in eval mode without autograd; on CUDA the
    device is synchronised before reading each clock.

    Returns:
        dict: ``images_per_s``, ``seconds`` (of the timed passes), ``batch_size``.
    """
    for name, value, low in (
        ('batch_size', batch_size, 1),
        ('image_size', image_size, 1),
        ('warmup', warmup, 0),
        ('iters', iters, 1),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(f'{name} must be an integer >= {low}, got {value!r}')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(
            f'device {device!r} asked for, but CUDA is not available: use --device cpu'
        )
    model = model.to(device).eval()
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)

    def sync() -> None:
        if images.is_cuda:
            torch.cuda.synchronize(images.device)

    with torch.inference_mode():
        for _ in range(warmup):
            model(images)
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            model(images)
        sync()
        seconds = time.perf_counter() - start
    return dict(images_per_s=iters * batch_size / seconds, seconds=seconds, batch_size=batch_size)
