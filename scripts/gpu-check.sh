#!/usr/bin/env bash
# One bf16 LoRA DPO step on a CUDA GPU, to check a GPU host before training on it: a small
# Llama built from a config (random weights, nothing downloaded), TRL's DPOTrainer with a PEFT
# LoraConfig, 4 preference pairs made here. Prints torch/GPU info, the step time and the peak
# CUDA memory. A warm-up step runs first, so the timed step measures no CUDA start-up.
#   bash scripts/gpu-check.sh
# Exits 3 with a message on a host without CUDA (or a CPU build of torch); any other failure
# exits non-zero with Python's traceback. Uses the repo's .venv when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$PY" - <<'EOF'
import sys
import tempfile
import time

import torch

if not torch.cuda.is_available():
    print(
        f"gpu-check: no CUDA device (torch {torch.__version__}, built for CUDA "
        f"{torch.version.cuda}): run this on a GPU host with a CUDA build of torch",
        file=sys.stderr,
    )
    sys.exit(3)

from datasets import Dataset
from peft import LoraConfig
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, TrainerCallback
from trl import DPOConfig, DPOTrainer

torch.manual_seed(0)
# A byte-level BPE tokenizer trained here: the point is the model's step, not the vocabulary.
bpe = Tokenizer(models.BPE(unk_token="<unk>"))
bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bpe.decoder = decoders.ByteLevel()
text = ["The quick brown fox jumps over the lazy dog.", "user assistant system"] * 8
bpe.train_from_iterator(
    text,
    trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    ),
)
tokenizer = PreTrainedTokenizerFast(
    tokenizer_object=bpe,
    unk_token="<unk>",
    bos_token="<|im_start|>",
    eos_token="<|im_end|>",
    pad_token="<|im_end|>",
)
tokenizer.chat_template = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
config = LlamaConfig(
    vocab_size=32000,  # a real vocabulary's LM head, the largest matrix of a small model
    hidden_size=512,
    intermediate_size=1376,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=8,
    max_position_embeddings=1024,
    bos_token_id=tokenizer.bos_token_id,
    eos_token_id=tokenizer.eos_token_id,
    pad_token_id=tokenizer.pad_token_id,
)
model = LlamaForCausalLM(config)
params = sum(p.numel() for p in model.parameters())

long = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)  # ~130 tokens a prompt
pairs = Dataset.from_list(
    [
        {
            "prompt": [{"role": "user", "content": f"{long} Question {n}?"}],
            "chosen": [{"role": "assistant", "content": f"A careful answer {n}. {long}"}],
            "rejected": [{"role": "assistant", "content": f"No. {n}"}],
        }
        for n in range(4)
    ]
)


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        if len(self.times) == 1:  # the warm-up step is done: measure the next one alone
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.start)


timer = StepTimer()
with tempfile.TemporaryDirectory() as out:
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(
            output_dir=out,
            per_device_train_batch_size=4,
            max_steps=2,
            learning_rate=5e-5,
            bf16=True,
            max_length=512,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
        ),
        train_dataset=pairs,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
        callbacks=[timer],
    )
    trainer.train()

gpu = torch.cuda.get_device_properties(0)
losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s)")
print(f"GPU 0: {gpu.name}, {gpu.total_memory / 2**30:.1f} GiB, bf16 {torch.cuda.is_bf16_supported()}")
print(f"model: Llama, {params / 1e6:.1f}M parameters, LoRA r=16 all-linear, 4 pairs per step")
print(f"warm-up step: {timer.times[0]:.3f} s")
print(f"step time: {timer.times[1]:.3f} s")
print(f"peak CUDA memory (timed step): {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
print(f"loss: {', '.join(f'{x:.4f}' for x in losses)}")
EOF
