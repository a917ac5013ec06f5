"""Model card templates (installed as `unitok.model_cards`).

One folder per model family:

- `family.yaml`: what the card states about the family and nothing the code can compute: the `model_type` it
  serves, paper title and arXiv id, official code and weights, the licence of the official weights, the quantizer,
  the Hub pipeline tag, known limitations, and whether numerical parity with the official implementation was
  verified on released weights.
- `card.md.j2`: the card body (Jinja). It includes the shared sections in `_partials/`, and reads the model's
  config for the architecture table. Everything else (token rate, parameters, weight origin, training recipe,
  evaluation results) is computed by `unitok.hub_upload.cards` from the model and the files staged with it.

Rendering, validation and the metadata header live in `unitok.hub_upload.cards`.
"""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent

__all__ = ["TEMPLATES_DIR"]
