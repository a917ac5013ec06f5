"""Train any unitok tokenizer from a YAML recipe, on one CPU or many GPUs.

    python recipes/train.py --config recipes/configs/flextok/tiny_vae.yaml [section.key=value ...]
    accelerate launch --config_file recipes/accelerate/ddp.yaml recipes/train.py --config ... train.resume=latest

The loop itself is `unitok.training.loop.train` (config → Accelerator → model → optimiser → data → prepare →
resume → loop → checkpoint → export); see recipes/README.md for the launch lines of every setup.
"""

import argparse
import sys

from unitok.training.config import ConfigError, load_config
from unitok.training.loop import train


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="recipe YAML (recipes/configs/...)")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. train.steps=100")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as error:
        print(f"config error: {error}", file=sys.stderr)
        return 2
    export = train(config)
    print(f"export: {export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
