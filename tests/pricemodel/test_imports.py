"""The TensorFlow pipeline shares run folders with the torch engine but must not load torch."""
import os
import subprocess
import sys


def test_importing_the_pricemodel_pipeline_loads_neither_torch_nor_lightning():
    code = ("import sys, workbench.pricemodel.pipeline; "
            "loaded = [m for m in ('torch', 'lightning') if m in sys.modules]; "
            "assert not loaded, loaded")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
