"""lomit_fast imports and translates with neither Triton nor the compiled extension."""
import subprocess
import sys

SCRIPT = r"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "triton" or name.startswith("triton.") or name == "lomit_fast._C":
            raise ImportError(f"{name} blocked for this test")
sys.meta_path.insert(0, Block())
import torch, lomit_fast
from lomit_fast import ops
assert "triton" not in ops.available_backends("cpu"), ops.available_backends("cpu")
assert "reference" in ops.available_backends("cpu")
assert "cpp" not in ops.available_backends("cpu") and "not built" in ops.unavailable_reason("cpp")
assert ops.resolve("auto", "cpu") == "reference"
g = lomit_fast.Generator(lomit_fast.load_config("configs/synthetic_64.yaml").model).eval()
with torch.no_grad():
    out, _, _ = g.translate(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64))
print("ok", tuple(out.shape))
"""


def test_import_without_triton_and_extension():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "ok (1, 3, 64, 64)" in result.stdout
