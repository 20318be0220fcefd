"""Guarded failures: non-finite training stops cleanly, mismatched checkpoints and adapters are
refused by name, and failed writes are one clear message that leaves the old file intact."""

from __future__ import annotations

import errno
import hashlib
import math
import os

import pytest
import torch
from transformers import TrainerCallback

from swag_lora import SwagPosterior
from swag_lora.bayes.posterior import POSTERIOR_FILE, PosteriorFileError
from swag_lora.files import ArtifactWriteError, atomic_folder_write
from swag_lora.lm.adapters import AdapterMismatchError, load_adapter, save_adapter
from swag_lora.lm.fingerprint import BaseModelMismatchError
from swag_lora.lm.loading import LoraSettings, apply_lora
from swag_lora.lm.multiple_choice import MultipleChoiceLM
from swag_lora.training.callbacks import TrainingDivergedError
from swag_lora.training.checkpoints import CheckpointError, incomplete_reason
from swag_lora.training.settings import SwagSettings
from tests.conftest import make_tiny_llama
from tests.test_training import make_trainer


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


class Poison(TrainerCallback):
    """Puts a NaN into a LoRA weight during step 4: into the forward pass ("loss") or right
    after the optimizer step ("parameters"); records the step-3 posterior file's hash first."""

    def __init__(self, model, where: str, output_dir):
        self.param = next(p for p in model.parameters() if p.requires_grad)
        self.where, self.output_dir, self.hash = where, output_dir, None

    def _poison(self, state):
        if state.global_step == 3:
            self.hash = sha(os.path.join(self.output_dir, "checkpoint-3", POSTERIOR_FILE))
            with torch.no_grad():
                self.param.view(-1)[0] = math.nan

    def on_step_begin(self, args, state, control, **kwargs):
        if self.where == "loss":
            self._poison(state)

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.where == "parameters":
            self._poison(state)


@pytest.mark.parametrize("where,message", [
    ("loss", "non-finite training loss (NaN or inf) at step 4"),
    ("parameters", "non-finite values in the trainable parameters at step 4"),
])
def test_nan_stops_training_and_keeps_the_last_posterior(where, message, tmp_path, tokenizer, tiny_llama,
                                                         arc_train_rows):
    swag = SwagSettings(swag_start_step=1, collect_every_steps=1)
    trainer, model, _ = make_trainer(tmp_path, tokenizer, tiny_llama, arc_train_rows[:32], swag,
                                     save_strategy="steps", save_steps=1, num_train_epochs=1)
    out = tmp_path / "out"
    poison = Poison(model, where, out)
    trainer.add_callback(poison)
    with pytest.raises(TrainingDivergedError) as caught:
        trainer.train()
    assert message in str(caught.value) and "unchanged" in str(caught.value)
    assert trainer.posterior.n_collected == 2 and torch.isfinite(trainer.posterior.mean()).all()
    assert not (out / "checkpoint-4").exists()
    last = out / "checkpoint-3"
    assert incomplete_reason(last) is None and sha(last / POSTERIOR_FILE) == poison.hash
    saved = SwagPosterior.load(last / POSTERIOR_FILE, model)
    assert saved.n_collected == 2 and torch.isfinite(saved.mean()).all()


def test_resume_refuses_another_base_model_or_other_swag_settings(tmp_path, tokenizer, arc_train_rows):
    swag = SwagSettings(swag_start_step=1, collect_every_steps=1)
    rows = arc_train_rows[:16]
    first, _, _ = make_trainer(tmp_path, tokenizer, make_tiny_llama(len(tokenizer)), rows, swag,
                               save_strategy="steps", save_steps=1, num_train_epochs=1)
    first.train()
    wider, _, _ = make_trainer(tmp_path, tokenizer, make_tiny_llama(len(tokenizer), hidden=48), rows, swag,
                               num_train_epochs=2)
    with pytest.raises(BaseModelMismatchError, match=r"hidden_size=32.*has hidden_size=48"):
        wider.train(resume_from_checkpoint=True)
    later = SwagSettings(swag_start_step=2, collect_every_steps=1)
    other, _, _ = make_trainer(tmp_path, tokenizer, make_tiny_llama(len(tokenizer)), rows, later, num_train_epochs=2)
    with pytest.raises(CheckpointError, match="SWAG phase starts at step 1, but the settings now give step 2"):
        other.train(resume_from_checkpoint=True)
    # a damaged posterior in a checkpoint that passes for complete is still refused
    posterior_file = tmp_path / "out" / "checkpoint-2" / POSTERIOR_FILE
    data = posterior_file.read_bytes()
    posterior_file.write_bytes(data[:100] + b"\0" * (len(data) - 100))  # same size, garbage content
    again, _, _ = make_trainer(tmp_path, tokenizer, make_tiny_llama(len(tokenizer)), rows, swag, num_train_epochs=2)
    with pytest.raises(PosteriorFileError, match="cannot read posterior file"):
        again.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))


def test_adapter_of_another_rank_is_refused_by_name(tmp_path, tokenizer):
    def scorer(r):
        lm = apply_lora(make_tiny_llama(len(tokenizer)), LoraSettings(r=r, lora_dropout=0.0))
        return MultipleChoiceLM(lm, tokenizer, "cloze", n_slots=4)

    save_adapter(scorer(8), str(tmp_path / "r8"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left
    with pytest.raises(AdapterMismatchError, match=r"lora_A.weight has shape \[8, 32\] in the file but \[4, 32\]"):
        load_adapter(scorer(4), str(tmp_path / "r8"))
    same = scorer(8)
    load_adapter(same, str(tmp_path / "r8"))  # and one that fits loads


def test_failed_posterior_write_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    posterior = SwagPosterior(model, max_rank=2)
    posterior.collect()
    path = tmp_path / "post.safetensors"
    posterior.save(path)
    before = sha(path)

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("swag_lora.tensorfile.save_file", disk_full)
    posterior.collect()
    with pytest.raises(ArtifactWriteError) as caught:
        posterior.save(path)
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert caught.value.errno == errno.ENOSPC
    assert sha(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["post.safetensors"]


def test_folder_write_cut_off_midway_changes_nothing(tmp_path, monkeypatch):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("old")

    def half_then_fail(tmp):
        open(os.path.join(tmp, "adapter_model.safetensors"), "w").write("new")
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    with pytest.raises(ArtifactWriteError, match="Permission denied"):
        atomic_folder_write(folder, half_then_fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]
    assert sorted(p.name for p in folder.iterdir()) == ["adapter_config.json"]
    assert (folder / "adapter_config.json").read_text() == "old"


@pytest.mark.parametrize("error", [
    ArtifactWriteError("cannot write /runs/x/map: No space left on device"),
    TrainingDivergedError("non-finite training loss (NaN or inf) at step 7"),
])
def test_cli_reports_failures_in_one_line(error, tmp_path, monkeypatch, capsys):
    from swag_lora.cli import commands as cli_main

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("swag_lora.cli.train.train_run", fail)
    assert cli_main.main(["train", "--output_dir", str(tmp_path / "run")]) == cli_main.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"swag-lora train: error: {error}\n"


@pytest.mark.parametrize("error", [
    ValueError("an internal invariant broke"),
    KeyError("shape"),
    OSError("a library's I/O failure that is not the user's"),
])
def test_cli_lets_bugs_show_their_traceback(error, tmp_path, monkeypatch):
    """Only the project's own errors (and expected OS errors) become one-line usage errors; a
    bug propagates, so the interpreter prints its traceback and exits with status 1."""
    from swag_lora.cli import commands as cli_main

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("swag_lora.cli.train.train_run", fail)
    with pytest.raises(type(error)):
        cli_main.main(["train", "--output_dir", str(tmp_path / "run")])


def test_cli_classifies_user_errors():
    from swag_lora.cli.commands import is_user_error
    from swag_lora.errors import InvalidSettingError

    assert is_user_error(InvalidSettingError("bad flag"))
    assert is_user_error(FileNotFoundError(errno.ENOENT, "no such file", "x"))
    assert is_user_error(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_user_error(ValueError("bug")) and not is_user_error(OSError("no errno"))
    assert not is_user_error(RuntimeError("bug"))


def test_a_bug_exits_with_status_1_and_a_traceback(tmp_path):
    import subprocess
    import sys

    code = ("import sys; import swag_lora.cli.train as t\n"
            "def fail(*a, **k):\n    raise RuntimeError('a bug')\n"
            "t.train_run = fail\n"
            "from swag_lora.cli import main\nsys.exit(main(['train', '--output_dir', sys.argv[1]]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "RuntimeError: a bug" in proc.stderr
