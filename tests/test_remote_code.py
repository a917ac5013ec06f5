"""`save_pretrained` output loads with `trust_remote_code=True` in a process where unitok cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

import unitok

TINY = [name for name in unitok.list_models() if name.endswith("-tiny")]

BLOCK_UNITOK = """
import sys
class _BlockUnitok:
    def find_spec(self, name, path=None, target=None):
        if name == "unitok" or name.startswith("unitok."):
            raise ImportError("unitok is deliberately unimportable in this test")
sys.meta_path.insert(0, _BlockUnitok())
"""


def run_isolated(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": "", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.run([sys.executable, "-c", BLOCK_UNITOK + textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", TINY)
def test_remote_code_loads_without_unitok_and_matches(name, tmp_path):
    torch.manual_seed(0)
    model = unitok.create_model(name).eval()
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    assert set(config["auto_map"]) >= {"AutoConfig", "AutoModel"}
    for file in folder.glob("*.py"):
        source = file.read_text()
        assert "import unitok" not in source and "from unitok" not in source and "from .." not in source, file

    pixel_values = torch.rand(2, 3, model.config.image_size, model.config.image_size) * 2 - 1
    codes = model.encode(pixel_values).codes
    reconstruction = model.decode(codes[:, :5], generator=torch.Generator().manual_seed(0),
                                  num_inference_steps=2).reconstruction
    save_file({"pixel_values": pixel_values}, tmp_path / "inputs.safetensors")

    result = run_isolated(f"""
        import torch, transformers
        from safetensors.torch import load_file, save_file
        try:
            import unitok
            raise SystemExit("unitok should not be importable here")
        except ImportError:
            pass
        try:
            transformers.AutoModel.from_pretrained("{folder}")
            raise SystemExit("loading without trust_remote_code should fail")
        except ValueError:
            pass
        model = transformers.AutoModel.from_pretrained("{folder}", trust_remote_code=True).eval()
        assert "transformers_modules" in type(model).__module__, type(model).__module__
        processor = transformers.AutoImageProcessor.from_pretrained("{folder}", trust_remote_code=True)
        x = load_file("inputs.safetensors")["pixel_values"]
        codes = model.encode(x).codes
        rec = model.decode(codes[:, :5], generator=torch.Generator().manual_seed(0), num_inference_steps=2)
        save_file({{"codes": codes, "reconstruction": rec.reconstruction}}, "outputs.safetensors")
        model.save_pretrained("resaved")  # remote code can save itself again
        print(type(processor).__name__)
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = load_file(tmp_path / "outputs.safetensors")
    assert torch.equal(outputs["codes"], codes)
    assert torch.equal(outputs["reconstruction"], reconstruction)
    assert sorted(os.listdir(tmp_path / "resaved")) == sorted(os.listdir(folder))
