"""Safe checkpoint loading (placeholder; being written for issue 10)."""
import os.path as osp

import torch


def load_from_local(filename: str, map_location=None):
    """mmengine's local checkpoint loader with ``weights_only=True``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=True)
