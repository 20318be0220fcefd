"""Provenance records and the refusal of runs this swag-lora cannot read."""

import importlib.metadata
import json
import re
import shutil
import subprocess

import pytest

from swag_lora import __version__
from swag_lora.bayes.posterior import FORMAT_VERSION
from swag_lora.cli import main
from swag_lora.runs.load import load_run
from swag_lora.runs.provenance import (
    IncompatibleRunError,
    check_compatible,
    git_revision,
    provenance,
    release_series,
)


def test_provenance_names_versions_and_is_a_fresh_copy():
    record = provenance()
    assert record["swag_lora_version"] == __version__
    assert record["posterior_format_version"] == FORMAT_VERSION
    assert record["libraries"]["torch"] == importlib.metadata.version("torch")
    assert record["libraries"]["peft"] == importlib.metadata.version("peft")
    assert record["git_revision"] is None or re.fullmatch(r"[0-9a-f]{40}", record["git_revision"])
    record["libraries"]["torch"] = "mutated"
    assert provenance()["libraries"]["torch"] != "mutated"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_revision_only_of_a_swag_lora_checkout(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-elses-app"\n')
    package = tmp_path / "venv" / "swag_lora"
    package.mkdir(parents=True)
    git("add", ".")
    git("commit", "-qm", "x")
    assert git_revision(str(package)) == (None, None)  # not swag-lora's repository

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "swag-lora"\n')
    git("commit", "-qam", "y")
    head = git("rev-parse", "HEAD")
    assert git_revision(str(package)) == (head, False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "swag-lora"\nversion = "9"\n')
    assert git_revision(str(package)) == (head, True)  # uncommitted change to a tracked file


def record(version=__version__, fmt=FORMAT_VERSION):
    return {"swag_lora_version": version, "posterior_format_version": fmt}


def test_release_series():
    assert release_series("0.1.0") == (0, 1) and release_series("0.1.7.dev3") == (0, 1)
    assert release_series("2.3.1") == (2,) and release_series("v1") == (1,)
    assert release_series("1.9") < release_series("2.0") and release_series("0.9") < release_series("1.0")


def test_check_compatible_refuses_newer_series_and_other_formats():
    check_compatible(record(), "run R")
    check_compatible(record("0.1.9"), "run R", current_version="0.1.0")  # same series, later patch
    check_compatible(record("0.0.3"), "run R", current_version="0.1.0")  # older series, same format
    check_compatible(record("1.0.0"), "run R", current_version="1.4.2")
    with pytest.raises(IncompatibleRunError, match=r"run R was written by swag-lora 2\.0\.0, a newer release series "
                                                   r"\(2\.x\).*1\.4\.2 \(1\.x\).*upgrade"):
        check_compatible(record("2.0.0"), "run R", current_version="1.4.2")
    with pytest.raises(IncompatibleRunError, match=r"0\.2\.0.*\(0\.2\.x\).*0\.1\.0 \(0\.1\.x\)"):
        check_compatible(record("0.2.0"), "run R", current_version="0.1.0")
    with pytest.raises(IncompatibleRunError, match=rf"posterior format {FORMAT_VERSION + 1}.*reads posterior format "
                                                   rf"{FORMAT_VERSION}: upgrade"):
        check_compatible(record(fmt=FORMAT_VERSION + 1), "run R")
    with pytest.raises(IncompatibleRunError, match="posterior format 0.*train the run again"):
        check_compatible(record(fmt=0), "run R")
    with pytest.raises(IncompatibleRunError, match="no provenance record"):
        check_compatible(None, "run R")
    with pytest.raises(IncompatibleRunError, match="unreadable swag_lora_version"):
        check_compatible(record("banana"), "run R")


def fake_run(folder, prov):
    """A run directory with every file load_run looks for; the versions decide."""
    (folder / "map").mkdir(parents=True)
    (folder / "map" / "adapter_model.safetensors").write_bytes(b"")
    (folder / "swag_posterior.safetensors").write_bytes(b"")
    (folder / "run_config.json").write_text(json.dumps({"provenance": prov}))
    return folder


def test_load_run_and_cli_refuse_a_run_from_a_newer_release(tmp_path, capsys):
    run = fake_run(tmp_path / "run", {**provenance(), "swag_lora_version": "99.0.0"})
    with pytest.raises(IncompatibleRunError, match=rf"run {re.escape(str(run))} was written by swag-lora 99\.0\.0"):
        load_run(run)
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "99.0.0" in err and "upgrade swag-lora" in err


def test_load_run_refuses_another_posterior_format(tmp_path):
    run = fake_run(tmp_path / "run", {**provenance(), "posterior_format_version": FORMAT_VERSION + 1})
    with pytest.raises(IncompatibleRunError, match=f"posterior format {FORMAT_VERSION + 1}"):
        load_run(run)
