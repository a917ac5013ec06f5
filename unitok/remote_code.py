"""Gather a model's Python closure into the flat files that `trust_remote_code=True` loading needs.

The library keeps shared code once (`unitok/layers/...`, `unitok/modeling_base.py`); transformers' remote-code
loader only follows single-dot relative imports (`from .x import y`) inside one flat folder. At save time we walk
the relative imports of the model's and config's modules, copy every module reached into the save folder under its
file name, and rewrite each of those imports to `from .<file> import ...`. The rewritten files are exactly the
library's source apart from those import lines, so remote code and library code cannot drift.

This module is itself part of the closure (the model's `save_pretrained` uses it), so a model loaded as remote code
can be saved again as remote code.
"""

import ast
import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

_BANNER = (
    "# This file was gathered by unitok's remote-code bundler from the module `{module}`.\n"
    "# Do not edit it here: edit the unitok library and save the model again.\n"
)


def _resolve(node: ast.ImportFrom, package: str, top_package: str) -> str | None:
    """Full module name that an import statement points into, if it is one of ours (relative or `unitok.*`)."""
    if node.level > 0:
        if node.module is None:
            raise ValueError(
                f"`from {'.' * node.level} import ...` in package {package} cannot be flattened into remote code; "
                "import names from a module instead (`from .module import name`)."
            )
        return importlib.util.resolve_name("." * node.level + node.module, package)
    if node.module and node.module.split(".")[0] == top_package:
        return node.module
    return None


def gather_sources(module_names: list[str]) -> dict[str, tuple[str, str]]:
    """Map flat file name -> (source module, rewritten source) for the import closure of `module_names`."""
    files: dict[str, tuple[str, str]] = {}
    owner_of: dict[str, str] = {}
    queue = list(module_names)
    while queue:
        name = queue.pop()
        if name in owner_of.values():
            continue
        module = importlib.import_module(name)
        path = Path(module.__file__)
        if path.name == "__init__.py":
            raise ValueError(f"Remote code cannot import from the package `{name}`; import from its modules.")
        flat = path.stem
        source = path.read_text(encoding="utf-8")
        if flat in owner_of:
            # Remote code loads the config and the model from separate cache folders: the same file twice is fine.
            if Path(importlib.import_module(owner_of[flat]).__file__).read_text(encoding="utf-8") == source:
                continue
            raise ValueError(f"Two modules flatten to `{flat}.py`: {owner_of[flat]} and {name}. Rename one of them.")
        owner_of[flat] = name
        lines = source.splitlines(keepends=True)
        top_package = name.split(".")[0]
        edits = []
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == top_package for a in node.names):
                raise ValueError(f"{path}:{node.lineno}: use `from .module import name` for {top_package} imports.")
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _resolve(node, module.__package__, top_package)
            if target is None:
                continue
            target_path = importlib.util.find_spec(target).origin
            if target_path.endswith("__init__.py"):
                raise ValueError(f"{path}:{node.lineno}: import from a module of `{target}`, not the package itself.")
            queue.append(target)
            names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in node.names)
            indent = lines[node.lineno - 1][: node.col_offset]
            edits.append((node.lineno, node.end_lineno, f"{indent}from .{Path(target_path).stem} import {names}\n"))
        for start, end, statement in sorted(edits, reverse=True):
            lines[start - 1 : end] = [statement]
        files[flat] = (name, _BANNER.format(module=name) + "".join(lines))
    return files


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write a file so that readers see either the old or the new content, never a partial one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def auto_map_entry(cls: type) -> str:
    """`"<flat module>.<ClassName>"` as transformers' `auto_map` expects."""
    return f"{Path(sys.modules[cls.__module__].__file__).stem}.{cls.__name__}"


def save_remote_code(folder: str | os.PathLike, classes: list[type]) -> list[str]:
    """Write the flat remote-code closure of `classes` into `folder`; return the file names written."""
    files = gather_sources(sorted({cls.__module__ for cls in classes}))
    for flat, (_, source) in files.items():
        write_atomic(Path(folder) / f"{flat}.py", source)
    return sorted(f"{flat}.py" for flat in files)


__all__ = ["gather_sources", "save_remote_code", "auto_map_entry", "write_atomic"]
