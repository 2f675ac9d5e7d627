#!/usr/bin/env python3
"""How close KnormPress's cut is to a tie on one RULER sample, and whether rounding or the order of
tied keys decides the answer.

    python scripts/trace_knorm.py DIR --task niah_multikey_2 --index 2 --ratio 0.5

Runs kvpress 0.5.5's pipeline with KnormPress exactly as `kvpress_ruler.py run` does (same
chat-template split, same prefill tokens, greedy decoding, RULER's answer length) three times:

- f32: the model in float32, kvpress as it is (the answer `kvpress_ruler.py run` records);
- f64: the model in float64 (`model.double()`);
- f32, recent ties: float32, but the positions whose key norm lies within --tie (relative) of the
  cut's rank among themselves by recency, the most recent kept, as momentkv ranks equal scores.

KnormPress scores each post-RoPE key by minus its L2 norm, per layer and KV head, and `topk` keeps
the `compute_n_kept` highest. From the scores of the f32 and f64 prefills the script prints per
layer:

- kept: the positions kept per head, of the prefill length;
- gap: per head, the f32 relative gap at the cut, (first evicted norm - last kept norm) / last
  kept norm;
- tied: per head, kept / all of the positions within --tie of the cut's norm: keys equal in exact
  arithmetic (in layer 0, the copies of one token: the same key before RoPE, and RoPE keeps norms)
  that rounding alone orders; a tie the cut splits is listed below the table with its tokens;
- swapped: per head, how many positions the f32 run keeps and the f64 run evicts;
- |dnorm|: the largest relative difference between a key's f32 and f64 norm in the layer;

then the tokens of each tie, the smallest gaps, and the three answers. An answer that changes with
the precision or with the order of tied keys is decided by rounding, which two float32
implementations do not share.

transformers' LlamaRMSNorm computes in float32 whatever the model's dtype; for the f64 run it is
replaced by the same computation kept in the input's dtype, so that f64 is float64 throughout (the
f32 runs use transformers' own). RoPE's cos/sin table is float32 in every run (transformers builds
it in float32).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from kvpress import KnormPress
from kvpress.utils import compute_n_kept
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
from transformers.models.llama.modeling_llama import LlamaRMSNorm
from transformers.utils import logging

from kvpress_ruler import split_context_question
from ruler_scoring import TOKENS_TO_GENERATE, default_model, task_family


def recent_first_at_cut(scores: torch.Tensor, kept: int, tie: float) -> torch.Tensor:
    """`scores` (..., length) in float64, the positions within `tie` (relative) of the cut's score
    moved to the cut's score plus a step per position: most recent highest, each still within
    `tie` of the cut, so that no other position changes rank."""
    scores = scores.double()
    length = scores.shape[-1]
    cut = scores.sort(dim=-1, descending=True).values[..., kept - 1 : kept]
    tied = (scores - cut).abs() <= tie * cut.abs()
    position = torch.arange(length, dtype=scores.dtype, device=scores.device)
    return torch.where(tied, cut + position * (tie * cut.abs() / (2 * length)), scores)


@dataclass
class TracedKnormPress(KnormPress):
    """KnormPress that keeps the scores it computes, on the CPU, by layer: (kv_heads, length).
    With `tie` > 0 it ranks the positions tied at the cut by recency (`recent_first_at_cut`)."""

    tie: float = 0.0
    scores: dict[int, torch.Tensor] = field(default_factory=dict)

    def score(self, module, hidden_states, keys, values, attentions, kwargs):
        scores = super().score(module, hidden_states, keys, values, attentions, kwargs)
        self.scores[module.layer_idx] = scores[0].detach().cpu()
        if self.tie:
            kept = compute_n_kept(scores.shape[-1], self.compression_ratio)
            scores = recent_first_at_cut(scores, kept, self.tie)
        return scores


def rms_norm_in_input_dtype(self: LlamaRMSNorm, hidden_states: torch.Tensor) -> torch.Tensor:
    """LlamaRMSNorm.forward without its cast to float32 (for float32 input, the same operations)."""
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def load_sample(data: Path, task: str, index: int) -> dict:
    path = data / task / "validation.jsonl"
    for line in path.read_text().splitlines():
        if line.strip() and (sample := json.loads(line))["index"] == index:
            return sample
    sys.exit(f"{path} holds no sample with index {index}")


def answer(pipe, parts: tuple[str, str, str], task: str, press: TracedKnormPress) -> str:
    """kvpress's answer with `press`, called as `kvpress_ruler.py run` calls it."""
    context, question, answer_prefix = parts
    with torch.inference_mode():
        return pipe(
            context,
            question=question,
            answer_prefix=answer_prefix,
            press=press,
            max_new_tokens=TOKENS_TO_GENERATE[task_family(task)],
        )["answer"]


def report(s32: dict[int, torch.Tensor], s64: dict[int, torch.Tensor], ids: torch.Tensor, tok, ratio: float,
           tie: float, smallest: int) -> None:
    heads, length = s32[0].shape
    if length != len(ids):
        sys.exit(f"KnormPress scored {length} positions, the prefill has {len(ids)} tokens")
    kept = compute_n_kept(length, ratio)
    print(f"prefill {length} tokens, {len(s32)} layers x {heads} KV heads, {kept} kept per head")
    print(f"{'layer':>5}  {'kept':>9}  {'gap per head (f32)':<29}  {'tied kept/all':<17}  "
          f"{'swapped f32/f64':<15}  {'|dnorm|':>7}")
    gaps, ties, swapped_total = [], [], 0
    for layer in sorted(s32):
        a, b = s32[layer], s64[layer]
        ranked = a.sort(dim=-1, descending=True).values
        # Scores are minus the norms: the first evicted norm exceeds the last kept by ranked[k-1] - ranked[k].
        gap = (ranked[:, kept - 1] - ranked[:, kept]) / -ranked[:, kept - 1]
        cut = ranked[:, kept - 1 : kept]
        tied = (a - cut).abs() <= tie * cut.abs()
        kept32, kept64 = a.topk(kept, dim=-1).indices, b.topk(kept, dim=-1).indices
        tied_cells, swapped = [], []
        for h in range(heads):
            kept_here = set(kept32[h].tolist())
            group = tied[h].nonzero().flatten().tolist()
            kept_tied = sum(p in kept_here for p in group)
            tied_cells.append(f"{kept_tied}/{len(group)}")
            if kept_tied < len(group):  # the cut splits the tie
                ties.append((layer, h, group, kept_tied))
            swapped.append(kept - len(kept_here & set(kept64[h].tolist())))
        dnorm = ((a.double() - b) / b).abs().max().item()
        swapped_total += sum(swapped)
        gaps.extend((g, layer, h) for h, g in enumerate(gap.tolist()))
        print(f"{layer:>5}  {kept:>4}/{length:<4}  {' '.join(f'{g:9.2e}' for g in gap.tolist()):<29}  "
              f"{' '.join(tied_cells):<17}  {'/'.join(map(str, swapped)):<15}  {dnorm:7.1e}")
    print()
    for layer, h, group, kept_tied in ties:
        tokens = Counter(tok.decode([t]) for t in ids[group].tolist())
        print(f"layer {layer} head {h}: the cut splits {len(group)} positions within {tie:g} of its norm, "
              f"{kept_tied} kept (f32); tokens {dict(tokens)}")
    print("smallest gaps at the cut (f32): "
          + ", ".join(f"{g:.2e} (layer {layer} head {h})" for g, layer, h in sorted(gaps)[:smallest]))
    print(f"positions kept in f32 and evicted in f64: {swapped_total} of {kept * heads * len(s32)} kept")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="RULER samples, DIR/<task>/validation.jsonl")
    ap.add_argument("--task", required=True)
    ap.add_argument("--index", type=int, required=True, help="the sample's `index` field")
    ap.add_argument("--ratio", type=float, required=True, help="KnormPress's compression_ratio, in (0, 1)")
    ap.add_argument("--tie", type=float, default=1e-6,
                    help="relative distance from the cut's norm within which keys count as tied")
    ap.add_argument("--model", type=Path, default=default_model())
    ap.add_argument("--threads", type=int, default=1, help="torch's CPU threads")
    ap.add_argument("--smallest", type=int, default=5, help="how many of the smallest gaps to list")
    args = ap.parse_args()
    if not 0 < args.ratio < 1:
        sys.exit(f"compression ratio {args.ratio} is outside (0, 1)")
    if not 0 < args.tie < 1:
        sys.exit(f"--tie {args.tie} is outside (0, 1)")

    torch.set_num_threads(args.threads)
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    sample = load_sample(args.dir, args.task, args.index)
    parts = split_context_question(args.task, sample["input"])
    tok = AutoTokenizer.from_pretrained(str(args.model.parent), gguf_file=args.model.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(args.model.parent), gguf_file=args.model.name, dtype=torch.float32
    ).eval()
    pipe = pipeline("kv-press-text-generation", model=model, tokenizer=tok, device="cpu")
    # The prefill tokens, as the pipeline makes them (its default max_context_length).
    ids = pipe.preprocess(parts[0], questions=[parts[1]], answer_prefix=parts[2],
                          max_context_length=min(tok.model_max_length, int(1e10)))["context_ids"][0]

    f32 = TracedKnormPress(compression_ratio=args.ratio)
    answer32 = answer(pipe, parts, args.task, f32)
    recent = TracedKnormPress(compression_ratio=args.ratio, tie=args.tie)
    answer_recent = answer(pipe, parts, args.task, recent)
    LlamaRMSNorm.forward = rms_norm_in_input_dtype
    model.double()
    f64 = TracedKnormPress(compression_ratio=args.ratio)
    answer64 = answer(pipe, parts, args.task, f64)

    print(f"{args.task} #{args.index} knorm @ {args.ratio} (expected {sample['outputs']})")
    report(f32.scores, f64.scores, ids, tok, args.ratio, args.tie, args.smallest)
    print(f"answer f32:              {answer32!r}")
    print(f"answer f64:              {answer64!r}")
    print(f"answer f32, recent ties: {answer_recent!r}")


if __name__ == "__main__":
    main()
