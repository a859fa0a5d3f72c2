"""tools/analysis/benchmark_backbone.py at a tiny size, as its own process:
every variant is timed in both modes (ONNX Runtime in inference), the accuracy
checks hold, and the targets are evaluated from the rows (speed targets are not asserted: times
are measured by running the script, never in tests)."""

import json
import sys

import pytest

from _helpers import run

pytestmark = pytest.mark.slow  # a subprocess of about a minute (30 s + an ONNX export)


@pytest.fixture(scope='module')
def results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp('benchmark') / 'benchmark.json'
    output = run(
        [
            sys.executable,
            'tools/analysis/benchmark_backbone.py',
            '--sizes',
            '64x96',
            '--repeat',
            '1',
            '--warmup',
            '0',
            '--threads',
            '1',
            '--no-memory',
            '--no-compile',
            '--out',
            str(out),
        ],
        timeout=600,
    )
    assert 'matmul 4096^3 on the same threads' in output, output[-3000:]
    with open(out) as f:
        return json.load(f)


def test_every_variant_is_timed(results):
    timed = {(r['mode'], r['variant']) for r in results['rows']}
    fp32 = {'fast', 'ref', 'windowed', 'swin'}
    assert timed == {(mode, v) for mode in ('infer', 'train') for v in fp32 | {'bf16'}} | {
        ('infer', 'onnxruntime')
    }
    assert results['env']['cpu_model']
    for row in results['rows']:
        assert row['ms_per_image'] > 0 and row['gflops_per_image'] > 0, row
    gflops = {(r['mode'], r['variant']): r['gflops_per_image'] for r in results['rows']}
    assert gflops[('train', 'fast')] == pytest.approx(3 * gflops[('infer', 'fast')])
    assert gflops[('infer', 'windowed')] != gflops[('infer', 'fast')]  # counted apart
    assert set(results['matmul_gmacs']) == {'fp32', 'bf16'}
    assert all(rate > 0 for rate in results['matmul_gmacs'].values())


def test_accuracy_checks(results):
    checked = results['checks']['64x96']
    assert checked['max_abs_fast_vs_ref'] <= 1e-5
    assert len(checked['bf16_infer_relative_error']) == 4
    assert 0 < max(checked['bf16_infer_relative_error']) <= 2e-2
    assert checked['bf16_train_finite'] is True
    assert len(checked['onnxruntime_relative_error']) == 4
    assert max(checked['onnxruntime_relative_error']) <= 1e-4


def test_targets_are_evaluated_from_the_rows(results):
    targets = {t['name']: t for t in results['targets']}
    check = targets['64x96 max|fast - ref| (fp32 outputs)']
    assert check['value'] == results['checks']['64x96']['max_abs_fast_vs_ref']
    assert check['met'] is (check['value'] <= 1e-5)
    ort = targets['64x96 ONNX Runtime max per-stage error / max|fast|']
    assert ort['value'] == max(results['checks']['64x96']['onnxruntime_relative_error'])
    # the 800x1216 / 512x512 targets appear only where those sizes were run
    assert not any(name.startswith(('800x1216', '512x512')) for name in targets)
