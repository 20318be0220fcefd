"""Agreement with EleutherAI's lm-evaluation-harness (PyPI ``lm-eval``, installed by ``make setup``):
the same per-choice log-likelihoods, ``acc`` and ``acc_norm`` as its ``arc_easy`` and
``openbookqa`` tasks on the same questions, and our adapters loaded by lm-eval (``peft=RUN/map``)
giving the same answers as our own ``map`` and ``swa`` evaluations.

lm-eval reads the local data through the task files in ``bench/lm_eval_tasks`` (see
``bench/lm_eval_local.py``). These tests are not skipped when lm-eval is missing: the import
fails, so a setup without it is noticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import lm_eval  # noqa: E402, F401  (a missing lm-eval fails here, loudly)
from lm_eval_local import LM_EVAL_TASKS, local_tasks, run_lm_eval  # noqa: E402

from swag_lora.bayes.predictive import member_log_probs  # noqa: E402
from swag_lora.bayes.zero_shot import base_model, zero_shot  # noqa: E402
from swag_lora.lm.encoding import MultipleChoiceCollator, encode_rows  # noqa: E402
from swag_lora.lm.loading import LoraSettings, apply_lora, load_causal_lm  # noqa: E402
from swag_lora.lm.multiple_choice import MultipleChoiceLM  # noqa: E402
from swag_lora.tasks import load_task  # noqa: E402
from tests.conftest import save_tiny_llama  # noqa: E402

TOLERANCE = 1e-4  # nats, per choice
N_QUESTIONS = 8


@pytest.fixture(scope="module")
def include_path(tmp_path_factory, data_dir):
    return local_tasks(data_dir, tmp_path_factory.mktemp("lm_eval_tasks"))


def _rows_of(docs, task: str, data_dir) -> list:
    by_id = {r.id: r for r in load_task(task, "test", data_dir=data_dir)}
    return [by_id[d.id] for d in docs]


def _scores(model, rows, tokenizer, prompt: str) -> np.ndarray:
    """Our per-choice cloze scores [N, C] (summed log-probabilities, or normalised ones)."""
    features = encode_rows(rows, tokenizer, "cloze", cloze_prompt=prompt)
    with torch.no_grad():
        return model(**MultipleChoiceCollator(tokenizer.pad_token_id, 4)(features)).logits.double().numpy()


@pytest.mark.real_model
def test_zero_shot_log_likelihoods_acc_and_acc_norm_match_lm_eval(smollm2_dir, data_dir, include_path):
    """SmolLM2-135M-Instruct, the first 8 test questions of ARC-Easy and of OBQA with lm-eval's own
    prompts: every choice's log-likelihood within 1e-4 nats of lm-eval's, and per question the same
    answer as lm-eval's acc (summed) and acc_norm (divided by the choice's characters)."""
    results = run_lm_eval("hf", list(LM_EVAL_TASKS), include_path, limit=N_QUESTIONS, batch_size=8,
                          model_args=f"pretrained={smollm2_dir},dtype=float32")
    lm, tokenizer = load_causal_lm(str(smollm2_dir))
    peft = apply_lora(lm, LoraSettings(lora_dropout=0.0))
    for task, (ours, prompt) in LM_EVAL_TASKS.items():
        docs = results[task]
        assert len(docs) == N_QUESTIONS
        rows = _rows_of(docs, ours, data_dir)
        summed = MultipleChoiceLM(peft, tokenizer, "cloze", n_slots=4).eval()
        by_chars = MultipleChoiceLM(peft, tokenizer, "cloze", n_slots=4, normalize="chars").eval()
        with base_model(summed):  # the zero-shot method's weights: LoRA off
            lls = _scores(summed, rows, tokenizer, prompt)
            normed = _scores(by_chars, rows, tokenizer, prompt)
        theirs = np.array([d.lls for d in docs])
        assert np.abs(lls - theirs).max() <= TOLERANCE, task
        gold = np.array([d.gold for d in docs])
        np.testing.assert_array_equal((lls.argmax(1) == gold).astype(float), [d.acc for d in docs])
        np.testing.assert_array_equal((normed.argmax(1) == gold).astype(float), [d.acc_norm for d in docs])
        # and the zero-shot method of `evaluate` answers what lm-eval's acc counts
        features = encode_rows(rows, tokenizer, "cloze", cloze_prompt=prompt)
        member = member_log_probs(summed, features, MultipleChoiceCollator(tokenizer.pad_token_id, 4),
                                  zero_shot(summed), 4)
        np.testing.assert_array_equal(member[:, 0].argmax(1), lls.argmax(1))
        if task == "openbookqa_local":  # lm-eval's OBQA context is the bare question stem
            assert tokenizer.decode(features[0]["contexts"][0]) == rows[0].question


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer, data_dir):
    """A tiny Llama (saved with SmolLM2's tokenizer, so lm-eval can load it) fine-tuned on ARC-Easy."""
    from transformers import TrainingArguments

    from swag_lora.runs.arguments import DataArguments, LoraArguments, ModelArguments, SwagArguments
    from swag_lora.runs.train import train_run

    model_dir = save_tiny_llama(tmp_path_factory, tokenizer, "lm_eval_run", seed=4)
    root = model_dir.parent
    args = TrainingArguments(
        output_dir=str(root / "run"), learning_rate=3e-2, num_train_epochs=2, per_device_train_batch_size=8,
        eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True, remove_unused_columns=False,
        seed=0, disable_tqdm=True, logging_steps=100, dataloader_pin_memory=False,
    )
    run = train_run(
        ModelArguments(model_name_or_path=str(model_dir)),
        DataArguments(task="arc-easy", data_dir=str(data_dir), train_limit=24, validation_limit=8),
        LoraArguments(lora_dropout=0.1),
        SwagArguments(swag_start_epoch=1, swag_collect_every_steps=1, swag_max_rank=3),
        args,
    )
    return model_dir, Path(run)


def test_our_adapters_load_in_lm_eval_with_the_same_answers(tiny_run, data_dir, include_path, tmp_path):
    """``lm_eval --model hf --model_args pretrained=BASE,peft=RUN/map`` (and ``RUN/swa``) on the
    questions ``swag-lora evaluate`` used: the same choice probabilities (within 1e-4) and so the
    same answers and accuracy as our ``map`` and ``swa`` evaluations."""
    model_dir, run = tiny_run
    out = tmp_path / "eval"
    cmd = [sys.executable, "-m", "swag_lora.cli", "evaluate", str(run), "--methods", "map", "swa",
           "--tasks", "arc-easy:test:12", "--data_dir", str(data_dir), "--output_dir", str(out), "--no_progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    test_ids = [r["id"] for r in json.loads((Path(data_dir) / "arc-easy" / "test.json").read_text())]
    scored = {}
    for method in ("map", "swa"):
        folder = out / "arc-easy" / "test" / method
        ids = json.loads((folder / "ids.json").read_text())
        ours = np.load(folder / "log_probs.npy")[:, 0]  # [N, C]: log-probabilities over the choices
        accuracy = json.loads((folder / "metrics.json").read_text())["acc"]
        docs = run_lm_eval("hf", ["arc_easy_local"], include_path, batch_size=4,
                           samples={"arc_easy_local": sorted(test_ids.index(i) for i in ids)},
                           model_args=f"pretrained={model_dir},peft={run / method},dtype=float32")["arc_easy_local"]
        by_id = {d.id: d for d in docs}
        theirs = [by_id[i] for i in ids]
        for row, doc in zip(ours, theirs):
            lls = np.array(doc.lls)
            log_p = lls - np.logaddexp.reduce(lls)
            assert np.abs(row[: len(lls)] - log_p).max() <= TOLERANCE, (method, doc.id)
        assert accuracy == pytest.approx(np.mean([d.acc for d in theirs]), abs=1e-12), method
        scored[method] = ours
    # the two adapters score differently, so lm-eval really applied each one
    assert np.abs(scored["map"] - scored["swa"]).max() > 100 * TOLERANCE
