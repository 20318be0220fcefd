"""Model settings of a run: the two spellings of cloze normalisation, the cloze prompt, and the
base model's quantisation (recorded, compared, and a different one refused), without loading models."""

from __future__ import annotations

import pytest

from swag_lora.errors import InvalidSettingError, SwagLoraError
from swag_lora.lm.quantization import Quantization, QuantizationMismatchError
from swag_lora.runs.arguments import ModelArguments
from swag_lora.runs.config import RunConfig
from swag_lora.runs.load import check_run_quantization


def _config(**model) -> RunConfig:
    return RunConfig.from_dict({"model": model})


def test_old_and_new_spellings_of_token_normalisation_are_one_setting():
    old = _config(cloze_length_normalize=True)  # a run saved before cloze_normalize existed
    new = _config(cloze_normalize="tokens", cloze_length_normalize=False)
    assert old.model.cloze_normalize == new.model.cloze_normalize == "tokens"
    assert old.architecture() == new.architecture()
    default = _config(cloze_length_normalize=False)
    assert default.model.cloze_normalize == "none" and default.model.cloze_prompt == "question"
    chars = ModelArguments(cloze_normalize="chars")
    assert chars.cloze_length_normalize is False and chars.cloze_normalize == "chars"
    assert _config(**{"cloze_normalize": "chars"}).architecture() != default.architecture()
    with pytest.raises(InvalidSettingError, match="contradicts --cloze_normalize chars"):
        ModelArguments(cloze_length_normalize=True, cloze_normalize="chars")


def test_train_flags_parse_into_the_model_arguments():
    from swag_lora.cli.train import parser

    model_args, *_ = parser().parse_args_into_dataclasses(
        ["--cloze_normalize", "chars", "--cloze_prompt", "bare", "--load_in_4bit", "true",
         "--bnb_4bit_use_double_quant", "true"])
    assert (model_args.cloze_normalize, model_args.cloze_prompt) == ("chars", "bare")
    assert model_args.quantization() == Quantization(4, "nf4", True, "float32")
    with pytest.raises(SystemExit):
        parser().parse_args_into_dataclasses(["--cloze_normalize", "words"])


def test_quantisation_settings_are_checked_and_described():
    assert ModelArguments().quantization().describe() == "none"
    assert ModelArguments(load_in_8bit=True).quantization().describe() == "8-bit"
    four = ModelArguments(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_use_double_quant=True)
    assert four.quantization().describe() == "4-bit fp4 with double quantisation"
    with pytest.raises(InvalidSettingError, match="exclude each other"):
        ModelArguments(load_in_4bit=True, load_in_8bit=True)
    with pytest.raises(InvalidSettingError, match="unknown 4-bit quantisation type 'int4'"):
        ModelArguments(load_in_4bit=True, bnb_4bit_quant_type="int4")
    assert Quantization(0).to_config() is None
    config = Quantization(4, "nf4", True, "bfloat16").to_config()
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant


def test_evaluating_with_another_quantisation_than_training_is_refused():
    run = _config(load_in_4bit=True, bnb_4bit_use_double_quant=True)
    check_run_quantization(run, None, "run R")  # nothing asked: the run's own
    check_run_quantization(run, {"load_in_4bit": True}, "run R")  # the rest is the run's
    check_run_quantization(run, {"load_in_4bit": True, "bnb_4bit_use_double_quant": True}, "run R")
    with pytest.raises(QuantizationMismatchError) as err:
        check_run_quantization(run, {"load_in_8bit": True}, "run R")
    message = str(err.value)
    assert isinstance(err.value, SwagLoraError) and "\n" not in message
    assert "'4-bit nf4 with double quantisation'" in message and "'8-bit'" in message and "run R" in message
    with pytest.raises(QuantizationMismatchError, match="'none'.*'4-bit nf4'"):
        check_run_quantization(_config(), {"load_in_4bit": True}, "run R")
    with pytest.raises(QuantizationMismatchError, match="'4-bit nf4 with double quantisation'.*'4-bit fp4 with"):
        check_run_quantization(run, {"bnb_4bit_quant_type": "fp4"}, "run R")
    with pytest.raises(InvalidSettingError, match="unknown quantisation setting"):
        check_run_quantization(run, {"load_in_2bit": True}, "run R")


def test_evaluate_and_predict_refuse_another_quantisation_before_loading_the_model(tmp_path, capsys):
    """The command line's refusal is one line naming both settings, exit status 2."""
    import json

    from swag_lora.cli.commands import main
    from swag_lora.runs.layout import ADAPTER_FILE, MAP_DIR, POSTERIOR_FILE, RUN_CONFIG

    run = tmp_path / "run"
    (run / MAP_DIR).mkdir(parents=True)
    (run / MAP_DIR / ADAPTER_FILE).write_bytes(b"")
    (run / POSTERIOR_FILE).write_bytes(b"")
    from swag_lora.runs.provenance import provenance

    config = RunConfig.from_dict({"model": {"model_name_or_path": "/nonexistent/base"},
                                  "provenance": provenance()}).to_dict()
    (run / RUN_CONFIG).write_text(json.dumps(config))
    assert main(["evaluate", str(run), "--load_in_4bit"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"swag-lora evaluate: error: run {run} was trained on a base model with quantisation 'none'; "
                   "evaluating it with '4-bit nf4' is refused (its LoRA weights fit the base they were trained "
                   "on): leave out the quantisation flags to use the run's own")
    assert main(["predict", str(run), "--input", "-", "--load_in_8bit"]) == 2
    assert "quantisation 'none'; evaluating it with '8-bit' is refused" in capsys.readouterr().err
