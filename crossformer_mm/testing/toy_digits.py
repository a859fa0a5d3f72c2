"""scikit-learn's handwritten digits as an ImageNet-style image folder.

``sklearn.datasets.load_digits`` ships 1,797 real 8x8 grey-level scans of
handwritten digits (no download). :func:`make_toy_digits` upsamples them and
writes ``ROOT/{train,val}/<digit>/<index>.png`` (RGB), which mmpretrain's
``CustomDataset`` reads as a folder of class sub-folders (labels 0-9 in folder
order), plus ImageNet's annotation lists ``ROOT/meta/{train,val}.txt``
(``<digit>/<index>.png <label>`` per line), which its ``ImageNet`` dataset
reads (the 1000-class configs of this package, e.g. with ``mim test``). The
split is fixed: every ``val_every``-th sample of the file order is validation.
"""

import os
import os.path as osp
from typing import Dict

import numpy as np

#: Class folder names, in label order.
DIGIT_CLASSES = tuple(str(d) for d in range(10))


def make_toy_digits(
    root: str, size: int = 32, val_every: int = 5, limit: int = None
) -> Dict[str, int]:
    """Write the digits under ``root``; return ``{'train': n, 'val': m}``.

    Args:
        root: Output folder (created).
        size: Image side (>= 32); the 8x8 scans are resized bicubically.
        val_every: Sample ``i`` is validation when ``i % val_every == 0``
            (360 val / 1,437 train for 5).
        limit: Only the first ``limit`` samples (tiny test sets); None: all.
    """
    from PIL import Image

    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            'the toy digits need scikit-learn: pip install scikit-learn '
            '(tools/install.sh installs it with the test tools)'
        ) from e
    if size < 32:
        raise ValueError(f'size must be >= 32 (a 4-stage CrossFormer needs 32 px), got {size}')
    if val_every < 2:
        raise ValueError(f'val_every must be >= 2, got {val_every}')
    digits = load_digits()
    images, labels = digits.images, digits.target  # (N, 8, 8) in [0, 16], (N,)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    counts = {'train': 0, 'val': 0}
    for split in counts:
        for name in DIGIT_CLASSES:
            os.makedirs(osp.join(root, split, name), exist_ok=True)
    lists = {split: [] for split in counts}
    for i, (image, label) in enumerate(zip(images, labels)):
        split = 'val' if i % val_every == 0 else 'train'
        grey = Image.fromarray(np.uint8(np.round(image * 255.0 / 16.0)), mode='L')
        grey = grey.resize((size, size), Image.BICUBIC)
        name = f'{DIGIT_CLASSES[label]}/{i:04d}.png'
        grey.convert('RGB').save(osp.join(root, split, name))
        lists[split].append(f'{name} {int(label)}\n')
        counts[split] += 1
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split, lines in lists.items():
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.writelines(lines)
    return counts
