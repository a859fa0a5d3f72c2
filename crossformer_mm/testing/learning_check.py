"""Pieces shared by the toy learning checks in this folder
(``train_toy_seg.py``, ``train_toy_pose.py``)."""
import sys
import time
from typing import Any, Dict, List

from mmengine.config import Config
from mmengine.runner import Runner


def cli_options(options: Dict[str, Any]) -> List[str]:
    """Format overrides as ``--cfg-options`` arguments of the stock tools."""

    def fmt(value: Any) -> str:
        if isinstance(value, (tuple, list)):
            return '(' + ','.join(fmt(v) for v in value) + ')'
        return str(value)

    return [f'{key}={fmt(value)}' for key, value in options.items()]


def train_and_check(cfg: Config, metric: str, label: str, schedule: str,
                    minimum: float, option: str, scale: float = 1.) -> float:
    """Train ``cfg`` with the stock runner and return the last validation's
    ``metric`` times ``scale``; log it with the wall time and exit with
    status 1 when it is below ``minimum`` (the value of ``option``)."""
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    # the last validation ran at the end of the schedule
    value = runner.message_hub.get_scalar(f'val/{metric}').current() * scale
    minutes = (time.time() - start) / 60
    runner.logger.info(f'{label} {value:.3f} after {schedule}, '
                       f'{minutes:.1f} min wall time')
    if value < minimum:
        runner.logger.error(f'{value:.3f} is below {option} {minimum}: '
                            'the model did not learn')
        sys.exit(1)
    return value
