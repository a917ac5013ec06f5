"""Package list (everything else is in pyproject.toml).

`hub_upload/` (publishing) and `model_cards/` (card templates) live at the top of the repository, beside `recipes/`,
because they are tools around the library; they install inside it as `unitok.hub_upload` and `unitok.model_cards`
so that the wheel adds no generic top-level module names.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=find_namespace_packages(include=["unitok", "unitok.*"]) + ["unitok.hub_upload", "unitok.model_cards"],
    package_dir={"unitok.hub_upload": "hub_upload", "unitok.model_cards": "model_cards"},
)
