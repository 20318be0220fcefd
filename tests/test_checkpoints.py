"""Checkpoint completeness: the marker, the resume finder and rotation, on plain folders."""

from __future__ import annotations

import pytest

from swag_lora.training.checkpoints import (
    CheckpointError,
    incomplete_reason,
    invalidate,
    latest_complete,
    mark_complete,
    resolve_resume,
    rotate,
)


def make_checkpoint(root, step: int, complete: bool = True):
    folder = root / f"checkpoint-{step}"
    (folder / "sub").mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"a" * (100 + step))
    (folder / "sub" / "shard.bin").write_bytes(b"s" * 10)
    if complete:
        mark_complete(folder, step=step)
    return folder


def test_marker_lists_every_file_and_detects_later_damage(tmp_path):
    folder = make_checkpoint(tmp_path, 4)
    assert incomplete_reason(folder) is None
    (folder / "sub" / "shard.bin").write_bytes(b"s" * 5)  # truncated after the fact
    assert "sub/shard.bin has 5 bytes, 10" in incomplete_reason(folder)
    (folder / "sub" / "shard.bin").unlink()
    assert "sub/shard.bin is missing" in incomplete_reason(folder)
    assert "no swag_checkpoint.json" in incomplete_reason(make_checkpoint(tmp_path, 5, complete=False))
    invalidate(make_checkpoint(tmp_path, 6))
    assert incomplete_reason(tmp_path / "checkpoint-6") is not None


def test_resume_picks_the_newest_complete_checkpoint(tmp_path):
    for step in (2, 4, 10):
        make_checkpoint(tmp_path, step)
    make_checkpoint(tmp_path, 12, complete=False)  # cut off mid-write
    (tmp_path / "checkpoint-10" / "adapter_model.safetensors").write_bytes(b"")  # damaged since
    assert latest_complete(tmp_path) == str(tmp_path / "checkpoint-4")
    assert resolve_resume(tmp_path, True) == str(tmp_path / "checkpoint-4")
    assert resolve_resume(tmp_path, "true") == str(tmp_path / "checkpoint-4")
    with pytest.raises(CheckpointError, match=r"checkpoint-12: no swag_checkpoint.json.*newest complete one is .*checkpoint-4"):
        resolve_resume(tmp_path, str(tmp_path / "checkpoint-12"))


def test_no_complete_checkpoint_is_one_clear_error(tmp_path):
    make_checkpoint(tmp_path, 3, complete=False)
    with pytest.raises(CheckpointError, match=r"no complete checkpoint in .* \(checkpoint-3 incomplete\)"):
        resolve_resume(tmp_path, True)
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        resolve_resume(tmp_path / "missing", True)


def test_rotation_keeps_complete_checkpoints_and_drops_stale_incomplete_ones(tmp_path):
    for step in (2, 4, 6):
        make_checkpoint(tmp_path, step)
    make_checkpoint(tmp_path, 5, complete=False)  # left by an earlier crash
    make_checkpoint(tmp_path, 8, complete=False)  # newer than the newest complete: left alone
    deleted = rotate(tmp_path, limit=1, protect=(str(tmp_path / "checkpoint-2"),))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-6", "checkpoint-8"]
    assert len(deleted) == 2
    assert rotate(tmp_path, limit=None) == []
