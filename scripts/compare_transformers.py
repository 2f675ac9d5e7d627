#!/usr/bin/env python3
"""Prefill and decode speed of `momentkv bench` against Hugging Face transformers (f32, same weights,
same prompt ids, same thread count), measured in one run.

    cargo build --release -p momentkv-cli
    python3 scripts/compare_transformers.py [--prompt-lens 128,512] [--gen 64]

Both run the default model, SmolLM2-135M-Instruct Q4_1 GGUF dequantized to f32. transformers runs
prefill as one forward pass and decoding one token at a time with its KV cache, greedy, like
momentkv bench. Each figure is the median of --repeats alternating runs, so that a noisy machine
does not decide the ratio. Needs: pip install torch transformers gguf accelerate.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = (
    "The library kept its records in long rows of cabinets, and every evening the keeper walked the "
    "aisles to check that nothing had been moved. Some drawers held letters, some held maps, and one "
    "held nothing but the keys to the others. Visitors asked why the building needed so many locks; "
    "the keeper said that memory is only useful when it can be found again. "
)


def momentkv(binary: Path, model: str, prompt_file: Path, prompt_len: int, gen: int) -> dict:
    cmd = [str(binary), "bench", "--model", model, "--prompt-file", str(prompt_file),
           "--prompt-len", str(prompt_len), "--gen", str(gen), "--warmup", "1", "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def transformers_speed(model, tokenizer, prompt_len: int, gen: int) -> dict:
    import torch

    filler = tokenizer(TEXT, add_special_tokens=False).input_ids
    ids = torch.tensor([(filler * (prompt_len // len(filler) + 1))[:prompt_len]])

    def run(n_new):
        with torch.no_grad():
            start = time.perf_counter()
            out = model(ids, use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
            prefill = time.perf_counter() - start
            cache = out.past_key_values
            start = time.perf_counter()
            for _ in range(n_new - 1):
                out = model(token, past_key_values=cache, use_cache=True)
                cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            return prefill, time.perf_counter() - start

    run(4)  # warm-up, as momentkv bench does
    prefill, decode = run(gen)
    return {"prefill_tok_s": prompt_len / prefill, "decode_tok_s": (gen - 1) / decode}


def median_speeds(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in ["prefill_tok_s", "decode_tok_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=str(ROOT / "target/release/momentkv"))
    ap.add_argument("--prompt-lens", default="128,512")
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    binary = Path(args.binary)
    if not binary.exists():
        sys.exit(f"{binary} not found: run `cargo build --release -p momentkv-cli` first")
    home = Path(os.environ.get("MOMENTKV_HOME", Path.home() / ".cache/momentkv"))
    gguf = home / "smollm2-135m" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not gguf.exists():
        sys.exit(f"{gguf} not found: run `momentkv fetch smollm2-135m` first")

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(TEXT)
        prompt_file = Path(f.name)
    rows = []
    for prompt_len in [int(x) for x in args.prompt_lens.split(",")]:
        ours_runs, theirs_runs = [], []
        for _ in range(args.repeats):
            ours_runs.append(momentkv(binary, "smollm2-135m", prompt_file, prompt_len, args.gen))
            torch.set_num_threads(ours_runs[0]["threads"])
            if not rows and len(ours_runs) == 1:
                tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                hf = AutoModelForCausalLM.from_pretrained(
                    str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
                ).eval()
            theirs_runs.append(transformers_speed(hf, tok, prompt_len, args.gen))
        ours = {**ours_runs[0], **median_speeds(ours_runs)}
        rows.append((prompt_len, ours, median_speeds(theirs_runs)))
    prompt_file.unlink()

    threads = rows[0][1]["threads"]
    print(f"SmolLM2-135M-Instruct (Q4_1 GGUF -> f32), greedy, {threads} threads, {args.gen} generated tokens, "
          f"median of {args.repeats} alternating runs")
    print(f"momentkv backend {rows[0][1]['backend']} (kernels: {rows[0][1]['kernels']}); "
          f"transformers {__import__('transformers').__version__}, torch {torch.__version__}\n")
    print("| prompt | phase | momentkv tok/s | transformers tok/s | ratio |")
    print("|---:|---|---:|---:|---:|")
    for prompt_len, ours, theirs in rows:
        for phase in ["prefill", "decode"]:
            a, b = ours[f"{phase}_tok_s"], theirs[f"{phase}_tok_s"]
            print(f"| {prompt_len} | {phase} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
