"""Running the real CLI in a subprocess, as a user does, and reading what it printed."""
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class Result:
    code: int
    out: str
    err: str


def lomit(*args, timeout: int = 600) -> Result:
    """`lomit-fast ARGS` in a fresh process (one thread: the tests share two cores)."""
    result = subprocess.run([sys.executable, "-m", "lomit_fast.cli", *map(str, args)],
                            capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    return Result(result.returncode, result.stdout, result.stderr)


def user_error(result: Result, *fragments: str) -> None:
    """A user's mistake: exit 2, one line on stderr naming what is wrong, no traceback."""
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert result.code == 2, (result.code, result.err[-2000:])
    assert len(lines) == 1 and "Traceback" not in result.err, result.err[-2000:]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def translate_args(inputs, exemplar, output, checkpoint, *extra):
    return ["translate", "--input", inputs, "--exemplar", exemplar, "--output", output,
            "--checkpoint", checkpoint, "--workers", "0", "--quiet", "--device", "cpu", *extra]
