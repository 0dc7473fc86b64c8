"""fvcore.nn's import-time ``torch.jit.script`` FutureWarning is kept out of every run's output."""
import subprocess
import sys

import pytest

from severe_bench.fvcore_nn import fvcore_nn

# -W error turns any FutureWarning raised during the imports into a failure of the child process
_STRICT = [sys.executable, "-W", "error::FutureWarning", "-c"]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(_STRICT + [code], capture_output=True, text=True, timeout=120)


def test_fvcore_modules_import_without_the_deprecation_warning():
    done = _run("from severe_bench.fvcore_nn import fvcore_nn\n"
                "assert callable(fvcore_nn('fvcore.nn.precise_bn').update_bn_stats)\n"
                "assert callable(fvcore_nn().FlopCountAnalysis)\n"
                "assert callable(fvcore_nn('fvcore.nn.jit_handles').get_shape)\n")
    assert done.returncode == 0, done.stderr


def test_a_flop_count_prints_no_future_warning():
    done = _run("import torch\n"
                "from severe_bench.checkpoints.flops import _analysis\n"
                "model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.AdaptiveAvgPool3d(1))\n"
                "assert _analysis(model, (3, 4, 8, 8)).total() > 0\n")
    assert done.returncode == 0, done.stderr


def test_the_silencing_is_needed_here():
    # the premise: a plain import of fvcore.nn warns under this torch (skips once fvcore stops scripting at import)
    done = _run("import fvcore.nn")
    if done.returncode == 0:
        pytest.skip("this fvcore/torch pair no longer warns at import")
    assert "torch.jit.script" in done.stderr


def test_only_fvcore_nn_modules_are_imported():
    with pytest.raises(ValueError, match="not an fvcore.nn module"):
        fvcore_nn("os")
