"""Your own data end to end on a tiny model: a custom CSV task trains and evaluates (with the
zero-shot row), `predict` answers from a file and from standard input as `evaluate` does, and
the report shows selective prediction."""

import csv
import io
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from swag_lora import metrics as M
from swag_lora.cli import main
from tests.conftest import make_tiny_llama
from tests.test_cli import swag_lora


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny-llama-custom")
    make_tiny_llama(len(tokenizer), seed=1).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def quiz_rows(n, seed, prefix):
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = rnd.randint(1, 20), rnd.randint(1, 20)
        choices = rnd.sample([a + b + 1, a + b - 1, a + b + 2, a + b + 10], 3)
        answer = rnd.randrange(4)
        choices.insert(answer, a + b)
        rows.append([f"{prefix}{i}", f"What is {a} plus {b}?", *map(str, choices), "ABCD"[answer]])
    return rows


@pytest.fixture(scope="module")
def quiz(tmp_path_factory):
    folder = tmp_path_factory.mktemp("quiz")
    for name, rows in (("train.csv", quiz_rows(40, 0, "tr")), ("test.csv", quiz_rows(12, 1, "te"))):
        with open(folder / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "question", "A", "B", "C", "D", "answer"])
            writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory, tiny_model_dir, quiz):
    run = tmp_path_factory.mktemp("custom-run") / "run"
    swag_lora("train", "--task", "custom", "--data_files", "train=train.csv", "test=test.csv",
              "--choices_columns", "A", "B", "C", "D", "--id_column", "id",
              "--model_name_or_path", tiny_model_dir, "--output_dir", run, "--num_train_epochs", 2,
              "--swag_start_epoch", 1, "--swag_collect_every_steps", 1, "--learning_rate", 0.01,
              "--use_cpu", "true", "--disable_tqdm", "true", cwd=quiz)  # relative data paths
    return run


@pytest.fixture(scope="module")
def evaluated(custom_run, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # the run, not the current folder, locates the data
    proc = swag_lora("evaluate", custom_run, "--methods", "zero-shot", "map", "swag", "--n_samples", 3,
                     "--seed", 0, cwd=elsewhere)
    return proc.stdout


def test_custom_csv_task_trains_and_evaluates(custom_run, evaluated, quiz):
    config = json.loads((custom_run / "run_config.json").read_text())
    definition = config["splits"]["train"]["definition"]
    assert definition["data_files"] == {"train": [str(quiz / "train.csv")], "test": [str(quiz / "test.csv")]}
    assert definition["choices_columns"] == ["A", "B", "C", "D"] and config["data"]["task"] == "custom"
    assert config["splits"]["train"]["size"] == 36 and config["splits"]["validation"]["size"] == 4
    assert "carved 10% (4 of 40)" in config["splits"]["validation"]["rule"]
    assert "| zero-shot | 1 | 1 |" in evaluated and "| swag | 1 | 3 |" in evaluated
    folder = custom_run / "eval" / "custom" / "test"
    records = {m: json.loads((folder / m / "metrics.json").read_text()) for m in ("zero-shot", "map", "swag")}
    for record in records.values():
        assert record["n_examples"] == 12 and record["ood"] is False and record["task"] == "custom"
        assert 0.0 <= record["aurc"] <= 1.0
        assert record["provenance"]["swag_lora_version"] and record["provenance"]["posterior_format_version"] == 1
    assert json.loads((folder / "swag" / "ids.json").read_text()) == [f"te{i}" for i in range(12)]
    zero, tuned = (np.load(folder / m / "log_probs.npy") for m in ("zero-shot", "map"))
    assert not np.allclose(zero, tuned, atol=1e-4)  # fine-tuning changed the answers


def predictions(text):
    return {p["id"]: p for p in map(json.loads, text.splitlines())}


def test_predict_from_a_file_and_stdin_matches_evaluate(custom_run, evaluated, quiz, tmp_path):
    folder = custom_run / "eval" / "custom" / "test" / "swag"
    p_bar = np.exp(M.average_log_probs(np.load(folder / "log_probs.npy")))
    ids = json.loads((folder / "ids.json").read_text())
    labels = np.load(folder / "labels.npy")

    out, summary = tmp_path / "predictions.jsonl", tmp_path / "summary.json"
    proc = swag_lora("predict", custom_run, "--input", quiz / "test.csv", "--n_samples", 3, "--seed", 0,
                     "--min_confidence", 0.3, "--output", out, "--summary", summary)
    from_file = predictions(out.read_text())
    with open(quiz / "test.csv") as handle:
        records = [{k: v for k, v in r.items() if k != "answer"} for r in csv.DictReader(handle)]
    stdin = "".join(json.dumps(r) + "\n" for r in records)
    proc_stdin = subprocess.run(
        [sys.executable, "-m", "swag_lora.cli", "predict", str(custom_run), "--input", "-", "--n_samples", "3"],
        input=stdin, capture_output=True, text=True, check=True, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"})
    from_stdin = predictions(proc_stdin.stdout)

    assert list(from_file) == ids and list(from_stdin) == ids  # input order kept
    for i, row_id in enumerate(ids):
        a, b = from_file[row_id], from_stdin[row_id]
        assert sum(a["probabilities"]) == pytest.approx(1.0, abs=1e-9)
        assert np.allclose(a["probabilities"], p_bar[i, :4], atol=1e-6)  # what evaluate measured
        assert np.allclose(b["probabilities"], a["probabilities"], atol=1e-6)
        assert a["prediction"] == int(np.argmax(p_bar[i])) and a["prediction_text"] == a["choices"][a["prediction"]]
        assert a["confidence"] == pytest.approx(max(a["probabilities"]))
        assert a["entropy"] == pytest.approx(-sum(p * np.log(p) for p in a["probabilities"] if p > 0))
        assert a["mutual_information"] >= 0 and a["mutual_information"] == pytest.approx(b["mutual_information"], abs=1e-6)
        assert a["abstained"] == (a["confidence"] < 0.3) and "abstained" not in b
        assert a["label"] == labels[i] and a["correct"] == (labels[i] == a["prediction"]) and "label" not in b

    report = json.loads(summary.read_text())
    assert report["method"] == "swag" and report["n_samples"] == 3 and report["seed"] == 0
    assert report["provenance"]["posterior_format_version"] == 1
    threshold = report["threshold"]
    assert threshold["data"]["split"] == "validation" and threshold["n"] == 4
    assert threshold["answered"] == round(threshold["coverage"] * 4)
    assert threshold["by_coverage"][0]["coverage"] == 1.0
    assert report["abstained"] == sum(p["abstained"] for p in from_file.values())
    assert "with accuracy" in proc.stderr and "thresholds that reach other coverages" in proc.stderr

    # the Python function, on records, agrees with the command
    from swag_lora.prediction.predictor import predict

    result = predict(custom_run, records[:5], n_samples=3, seed=0)
    assert [p.id for p in result.predictions] == ids[:5]
    for p in result.predictions:
        assert np.allclose(p.probabilities, from_file[p.id]["probabilities"], atol=1e-5)


def test_report_has_selective_prediction_and_zero_shot(custom_run, evaluated, tmp_path):
    from swag_lora.report.run_report import write_report

    text = write_report([custom_run / "eval"], tmp_path).read_text()
    assert "## Selective prediction" in text and "| zero-shot |" in text and "aurc" in text
    assert (tmp_path / "risk_coverage_custom_test.png").is_file()


def test_bad_mappings_and_inputs_give_one_clear_line(custom_run, quiz, tmp_path, capsys, monkeypatch):
    code = main(["train", "--task", "custom", "--data_files", f"train={quiz / 'train.csv'}", "--question_column",
                 "text", "--choices_columns", "A", "B", "C", "D", "--output_dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "question_column 'text'" in err and "its columns are: id, question, A, B, C, D, answer" in err

    code = main(["train", "--task", "arc-easy", "--label_words", "yes", "no", "--output_dir", str(tmp_path / "y")])
    assert code == 2 and "label_words define a custom task" in capsys.readouterr().err

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"id": "x", "question": "Q?", "A": "1"}\n')))
    code = main(["predict", str(custom_run), "--input", "-", "--no_progress"])
    err = capsys.readouterr().err
    assert code == 2 and "choices_columns[1] 'B'" in err and "<stdin>" in err
