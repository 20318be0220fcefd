"""The language-model layer (transformers and peft): load a causal LM, score multiple-choice
questions with it, encode questions into batches, and keep adapters and the base model's
identity on disk.

- :mod:`.loading`: base model, tokenizer, fresh LoRA; :mod:`.smollm2`: the packaged demo model;
- :mod:`.multiple_choice`: :class:`MultipleChoiceLM`, letter and cloze scoring;
- :mod:`.encoding`: rows -> token ids -> padded (packed cloze) batches;
- :mod:`.adapters`: PEFT adapters (and the letter head) from and to flat vectors;
- :mod:`.fingerprint`: the base model's identity, and refusing another one.
"""
