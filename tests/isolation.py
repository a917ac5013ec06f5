"""Run Python code in a fresh interpreter where unitok cannot be imported (what a user without unitok has), with
private Hub and remote-code caches."""

import os
import subprocess
import sys
import textwrap

BLOCK_UNITOK = """
import sys
class _BlockUnitok:
    def find_spec(self, name, path=None, target=None):
        if name == "unitok" or name.startswith("unitok."):
            raise ImportError("unitok is deliberately unimportable in this test")
sys.meta_path.insert(0, _BlockUnitok())
"""


def run_python(code: str, cwd, *, block_unitok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_MODULES_CACHE": str(cwd / "modules"), "HF_HUB_CACHE": str(cwd / "hub-cache"),
           "PYTHONPATH": "", "TRANSFORMERS_VERBOSITY": "error"}
    source = (BLOCK_UNITOK if block_unitok else "") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", source], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


__all__ = ["BLOCK_UNITOK", "run_python"]
