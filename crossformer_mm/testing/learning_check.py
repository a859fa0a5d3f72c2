"""The end of every toy learning check (``tools/misc/train_toy_*.py``): train
with the stock runner, report the metric and the wall time, fail below a threshold."""

import sys
import time

from mmengine.config import Config
from mmengine.runner import Runner


def train_and_check(
    cfg: Config,
    metric: str,
    label: str,
    schedule: str,
    minimum: float,
    option: str,
    scale: float = 1.0,
) -> float:
    """Train ``cfg`` with the stock runner and return the last validation's
    ``metric`` times ``scale``; log it with the wall time and exit with
    status 1 when it is below ``minimum`` (the value of ``option``)."""
    start = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    # the last validation ran at the end of the schedule
    value = runner.message_hub.get_scalar(f'val/{metric}').current() * scale
    minutes = (time.time() - start) / 60
    runner.logger.info(f'{label} {value:.3f} after {schedule}, {minutes:.1f} min wall time')
    if value < minimum:
        runner.logger.error(f'{value:.3f} is below {option} {minimum}: the model did not learn')
        sys.exit(1)
    return value
