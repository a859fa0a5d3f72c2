"""Helpers shared by the tool tests: :func:`load_tool` imports a script,
:func:`run` runs a command; toy COCO data and ``--cfg-options`` that point any
detection config at it.

For the detection test modules: :func:`make_toy_set` writes a tiny set
with ``tools/misc/make_toy_coco.py``; :func:`toy_det_options` walks a loaded
config and returns the ``key=value`` overrides (data, classes, image scale,
small proposal / sample counts, 2 training iterations) for the stock tools.
"""
import importlib.util
import os
import os.path as osp
import subprocess
from typing import Iterator, List, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CLASSES = ('square', 'circle', 'triangle')
TOY_SIZE = 64


def load_tool(path: str):
    """Import a script of the repository (e.g. tools/...) as a module."""
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(REPO_ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(args, cwd=REPO_ROOT, env=None, timeout=300) -> str:
    """Run a command with 1 CPU thread (``env`` overrides the environment);
    return its output (stdout and stderr), fail with it."""
    full_env = dict(os.environ, OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE')
    full_env.update(env or {})
    result = subprocess.run(
        args, cwd=cwd, env=full_env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f'{" ".join(map(str, args))} exited with {result.returncode}:\n'
        f'{result.stdout[-6000:]}')
    return result.stdout


def make_toy_set(root: str, num_train: int = 8, num_val: int = 4) -> str:
    """Write the toy set under ``root``; return it with a trailing slash."""
    load_tool('tools/misc/make_toy_coco.py').make_toy_coco(
        root, num_train, num_val, size=TOY_SIZE, seed=0)
    return osp.join(root, '')


def _paths(node, prefix: str = '') -> Iterator[Tuple[str, object, object]]:
    """(dotted path, key, value) of every dict entry of a nested config."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, (list, tuple)):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        path = f'{prefix}{key}'
        yield path, key, value
        yield from _paths(value, path + '.')


def _scale_options(pipeline, prefix: str, scale: int) -> List[str]:
    """Shrink every resize / crop of a pipeline to ``scale`` pixels."""
    options = []
    for path, key, value in _paths(pipeline, prefix):
        if key == 'scale':
            options.append(f'{path}=({scale},{scale})')
        elif key == 'scales':
            options.append(f'{path}=[({scale},{scale})]')
        elif key == 'crop_size':
            options.append(f'{path}=({scale // 2},{scale // 2})')
    return options


def toy_det_options(cfg, data_root: str, scale: int = TOY_SIZE,
                    train_images: int = 4) -> List[str]:
    """``--cfg-options`` that train/test ``cfg`` on the toy set quickly.

    Two iterations of batch 2 (``train_images`` = 4), validation off, no
    pretrained backbone, test on the val split with COCO metrics.
    """
    classes = '[' + ','.join(TOY_CLASSES) + ']'
    val_ann = osp.join(data_root, 'annotations/instances_val.json')
    options = [
        'model.backbone.init_cfg=None',
        'train_cfg.max_epochs=1',
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
        'default_hooks.logger.interval=1',
        f'test_evaluator.ann_file={val_ann}',
    ]
    for split, subset in (('train', 'train'), ('test', 'val')):
        loader = f'{split}_dataloader'
        options += [
            f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False',
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.dataset.ann_file=annotations/instances_{subset}.json',
            f'{loader}.dataset.data_prefix.img={subset}/',
            f'{loader}.dataset.metainfo.classes={classes}',
        ]
        options += _scale_options(cfg[loader].dataset.pipeline,
                                  f'{loader}.dataset.pipeline.', scale)
    options += [
        'train_dataloader.batch_size=2',
        f'train_dataloader.dataset.indices={train_images}',
    ]
    for path, key, value in _paths(cfg.model, 'model.'):
        if key == 'num_classes':
            options.append(f'{path}={len(TOY_CLASSES)}')
        elif key in ('nms_pre', 'max_per_img') and (
                '.rpn' in path or 'rpn_proposal' in path):
            options.append(f'{path}=32')
        elif key == 'num' and '.sampler.' in f'{path}' and 'rcnn' in path:
            options.append(f'{path}=8')
    return options
