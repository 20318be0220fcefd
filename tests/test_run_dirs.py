"""Run directories are never silently wrong or lost: one writer at a time (a lock that names
its holder), advice that works for a non-empty output directory, and a read-only folder
refused before any work, with ``--output_dir`` sending results elsewhere."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from swag_lora.cli import commands as cli
from swag_lora.runs.lock import LOCK_FILE, RunLockedError, run_lock


@pytest.fixture(scope="module")
def model_dir(tiny_llama_dir):
    return tiny_llama_dir


def train_argv(model_dir, data_dir, out, *extra):
    return ["train", "--model_name_or_path", str(model_dir), "--task", "arc-easy", "--data_dir", str(data_dir),
            "--train_limit", "16", "--validation_limit", "8", "--num_train_epochs", "2", "--swag_start_epoch", "1",
            "--swag_collect_every_steps", "1", "--use_cpu", "true", "--disable_tqdm", "true",
            "--output_dir", str(out), *extra]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, model_dir, data_dir):
    out = tmp_path_factory.mktemp("rundirs") / "run"
    assert cli.main(train_argv(model_dir, data_dir, out)) == 0
    return out


def hold_lock(folder):
    """A second process holding ``folder``'s lock, as a concurrent ``swag-lora train`` would."""
    code = ("import sys, time\nfrom swag_lora.runs.lock import run_lock\n"
            "with run_lock(sys.argv[1], 'swag-lora train'):\n    print('held', flush=True)\n    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_with_the_holders_pid_and_host(tmp_path, model_dir, data_dir, run_dir, capsys):
    import socket

    out = tmp_path / "shared"
    holder = hold_lock(out)
    try:
        assert cli.main(train_argv(model_dir, data_dir, out)) == cli.EXIT_USAGE
        err = capsys.readouterr().err.strip()
        assert f"is in use by PID {holder.pid} on host {socket.gethostname()} (swag-lora train" in err, err
        assert len(err.splitlines()) == 1
        assert os.listdir(out) == [LOCK_FILE]  # nothing written by the refused run
        with pytest.raises(RunLockedError, match=f"PID {holder.pid}"):
            with run_lock(out, "test"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(out, "test"):  # a killed holder's lock is released by the system
        pass
    # evaluate's writes into a run directory take the same lock
    holder = hold_lock(run_dir)
    try:
        assert cli.main(["evaluate", str(run_dir), "--methods", "map", "--limit", "4", "--data_dir", str(data_dir),
                         "--no_progress"]) == cli.EXIT_USAGE
        assert f"is in use by PID {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_the_not_empty_advice_works(tmp_path, model_dir, data_dir, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old-result.txt").write_text("from an earlier run")
    assert cli.main(train_argv(model_dir, data_dir, out)) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "is not empty" in err and "--overwrite_output_dir true" in err
    assert cli.main(train_argv(model_dir, data_dir, out, "--overwrite_output_dir", "true")) == 0
    assert not (out / "old-result.txt").exists() and (out / "run_config.json").is_file()


def test_a_read_only_run_is_refused_before_any_work_and_output_dir_goes_elsewhere(tmp_path, run_dir, data_dir,
                                                                                  monkeypatch, capsys):
    real_open = os.open
    inside = str(run_dir.resolve())

    def read_only(path, *args, **kwargs):  # a read-only file system under the run directory
        flags = args[0] if args else kwargs.get("flags", 0)
        if os.path.abspath(os.fspath(path)).startswith(inside) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, *args, **kwargs)

    loads = []
    import swag_lora.cli.evaluate as evaluate_cli

    real_load = evaluate_cli.load_run
    monkeypatch.setattr(evaluate_cli, "load_run", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setattr(os, "open", read_only)
    argv = ["evaluate", str(run_dir), "--methods", "map", "--limit", "4", "--data_dir", str(data_dir), "--no_progress"]
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"cannot write into {inside}" in err and "--output_dir" in err
    assert loads == []  # refused before the model was loaded or anything computed
    assert cli.main([*argv, "--output_dir", str(tmp_path / "results")]) == 0
    record = json.loads((tmp_path / "results" / "arc-easy" / "test" / "map" / "metrics.json").read_text())
    assert record["n_examples"] == 4
    assert "[evaluate] map on arc-easy/test: acc" in capsys.readouterr().err  # a line per method, no progress bars


def test_a_map_from_before_the_swag_phase_is_warned_about_and_recorded(run_dir):
    from swag_lora.runs.train import _check_map_before_swag

    with pytest.warns(UserWarning, match="best-validation MAP is from step 4, before the SWAG phase began at step 8"):
        notes = _check_map_before_swag({"rule": "best validation NLL", "step": 4, "eval_nll": 1.0}, 8)
    assert len(notes) == 1 and "--swag_start_step 4" in notes[0]
    assert _check_map_before_swag({"rule": "best validation NLL", "step": 8}, 8) == []
    assert _check_map_before_swag({"rule": "last iterate before the SWAG phase", "step": 2}, 8) == []
    config = json.loads((run_dir / "run_config.json").read_text())
    step, start = config["map_selection"]["step"], config["swag_start_step"]
    assert config["warnings"] == ([] if step >= start else _check_map_before_swag(config["map_selection"], start))
