"""Any GGUF model through --gguf_file: converted once to a cached safetensors copy, keyed by the
file's identity, equal to what transformers reads from the GGUF, and reused by train and
evaluate (a tiny random Llama written as GGUF with the ``gguf`` package)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from swag_lora.cli import commands as cli
from swag_lora.lm import gguf as G
from swag_lora.lm.loading import resolve_model_path
from swag_lora.runs.arguments import LoraArguments, ModelArguments
from swag_lora.runs.build import build_model

gguf = pytest.importorskip("gguf")  # installed by `make setup` (the demo model's extra)

VOCAB_HIDDEN_LAYERS_HEADS = (259, 32, 2, 4, 2)


def _permute(w: np.ndarray, n_head: int, n_kv: int | None = None) -> np.ndarray:
    """llama.cpp's rotary layout of q/k rows (transformers undoes it when it reads a GGUF)."""
    if n_kv is not None and n_head != n_kv:
        n_head = n_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path, seed: int = 0):
    """A random 2-layer Llama with a byte-level BPE tokenizer, written as an F32 GGUF file; returns
    the model (the weights the file holds)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    V, H, L, NH, NKV = VOCAB_HIDDEN_LAYERS_HEADS
    spelling = bytes_to_unicode()
    tokens = [spelling[b] for b in range(256)] + ["Ġt", "Ġa", "<|endoftext|>"]
    config = LlamaConfig(vocab_size=V, hidden_size=H, intermediate_size=2 * H, num_hidden_layers=L,
                         num_attention_heads=NH, num_key_value_heads=NKV, max_position_embeddings=512,
                         tie_word_embeddings=True, rms_norm_eps=1e-5)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(512)
    w.add_embedding_length(H)
    w.add_block_count(L)
    w.add_feed_forward_length(2 * H)
    w.add_head_count(NH)
    w.add_head_count_kv(NKV)
    w.add_rope_dimension_count(H // NH)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(V)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types([1] * (V - 1) + [3])
    w.add_token_merges(["Ġ t", "Ġ a"])
    w.add_bos_token_id(V - 1)
    w.add_eos_token_id(V - 1)
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    names = {"attn_norm": "input_layernorm", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
             "ffn_down": "mlp.down_proj"}
    for i in range(L):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_q.weight", _permute(sd[p + "self_attn.q_proj.weight"], NH, NH))
        w.add_tensor(f"blk.{i}.attn_k.weight", _permute(sd[p + "self_attn.k_proj.weight"], NH, NKV))
        for ours, theirs in names.items():
            w.add_tensor(f"blk.{i}.{ours}.weight", sd[p + theirs + ".weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model


class CountingLoads:
    """Counts transformers reading a GGUF file inside swag_lora.lm.gguf (the conversion)."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = G.AutoModelForCausalLM.from_pretrained

        def counted(*args, **kwargs):
            self.calls += "gguf_file" in kwargs
            return real(*args, **kwargs)

        monkeypatch.setattr(G.AutoModelForCausalLM, "from_pretrained", counted)


@pytest.fixture
def gguf_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SWAG_LORA_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    original = write_tiny_gguf(folder / "tiny.gguf")
    return folder, original


def logits(model, ids=((1, 5, 9, 200, 257),)):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits


def test_a_gguf_file_is_converted_once_into_a_cache_equal_to_the_gguf(gguf_folder, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, original = gguf_folder
    loads = CountingLoads(monkeypatch)
    first = resolve_model_path(str(folder), "tiny.gguf")
    assert loads.calls == 1
    cache = tmp_path / "cache" / G.GGUF_SUBDIR
    assert os.path.dirname(first) == str(cache) and os.path.basename(first).startswith("tiny-")
    record = json.loads((cache / os.path.basename(first) / "gguf_source.json").read_text())
    stat = (folder / "tiny.gguf").stat()
    assert record["size"] == stat.st_size and record["mtime_ns"] == stat.st_mtime_ns
    assert resolve_model_path(str(folder), "tiny.gguf") == first and loads.calls == 1  # the second load: cache only
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folder left

    cached = AutoModelForCausalLM.from_pretrained(first).eval()
    direct = AutoModelForCausalLM.from_pretrained(folder, gguf_file="tiny.gguf").eval()
    torch.testing.assert_close(logits(cached), logits(direct), rtol=0, atol=0)
    torch.testing.assert_close(logits(cached), logits(original), rtol=0, atol=1e-6)
    text = "Question: what heats the earth?\nAnswer: the sun"
    assert AutoTokenizer.from_pretrained(first)(text).input_ids == \
        AutoTokenizer.from_pretrained(folder, gguf_file="tiny.gguf")(text).input_ids


def test_a_changed_gguf_file_is_converted_again(gguf_folder, monkeypatch):
    folder, _ = gguf_folder
    loads = CountingLoads(monkeypatch)
    first = resolve_model_path(str(folder), "tiny.gguf")
    replaced = write_tiny_gguf(folder / "tiny.gguf", seed=1)  # same size, new weights
    stat = (folder / "tiny.gguf").stat()
    os.utime(folder / "tiny.gguf", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = resolve_model_path(str(folder), "tiny.gguf")
    assert second != first and loads.calls == 2
    from transformers import AutoModelForCausalLM

    torch.testing.assert_close(logits(AutoModelForCausalLM.from_pretrained(second).eval()), logits(replaced),
                               rtol=0, atol=1e-6)


def test_a_missing_gguf_file_names_the_ones_there(gguf_folder):
    folder, _ = gguf_folder
    with pytest.raises(G.GgufNotFoundError, match=r"no GGUF file 'other.gguf' in .*GGUF files there: tiny.gguf"):
        build_model(ModelArguments(model_name_or_path=str(folder), gguf_file="other.gguf"), LoraArguments(), 4)


def test_train_and_evaluate_read_the_gguf_once(gguf_folder, data_dir, tmp_path, monkeypatch):
    folder, _ = gguf_folder
    loads = CountingLoads(monkeypatch)
    out = tmp_path / "run"
    argv = ["train", "--model_name_or_path", str(folder), "--gguf_file", "tiny.gguf", "--task", "arc-easy",
            "--data_dir", str(data_dir), "--train_limit", "8", "--validation_limit", "0", "--num_train_epochs", "1",
            "--swag_start_step", "0", "--swag_collect_every_steps", "1", "--per_device_train_batch_size", "4",
            "--use_cpu", "true", "--disable_tqdm", "true", "--save_strategy", "no", "--output_dir", str(out)]
    assert cli.main(argv) == 0
    config = json.loads((out / "run_config.json").read_text())
    assert config["model"]["gguf_file"] == "tiny.gguf" and config["model"]["model_name_or_path"] == str(folder)
    assert cli.main(["evaluate", str(out), "--methods", "map", "--limit", "4", "--no_progress"]) == 0
    assert json.loads((out / "eval" / "arc-easy" / "test" / "map" / "metrics.json").read_text())["n_examples"] == 4
    assert loads.calls == 1  # converted by train, read from the cache by evaluate
