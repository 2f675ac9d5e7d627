#!/usr/bin/env python3
"""Full-cache RULER scores from transformers on the samples `momentkv eval` generated.

`momentkv eval --out DIR` writes its samples in RULER's layout to DIR/samples/TASK-LENGTH.jsonl
and its answers to DIR/results.jsonl. This script answers the same samples with transformers
(greedy, full cache, the default model's GGUF dequantized to f32), reading the same token ids
(the context with the tokenizer's special tokens, then the question without), scores them as
RULER does, and prints, per task and length, both scores and how many answers are identical.

    /root/venv/bin/python scripts/ruler_reference.py DIR [--model PATH.gguf] [--json OUT]

Needs torch, transformers and gguf.
"""

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ruler_scoring import TOKENS_TO_GENERATE, default_model, postprocess, score, task_family


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the --out directory of `momentkv eval`")
    ap.add_argument("--model", type=Path, default=default_model())
    ap.add_argument("--json", type=Path, help="also write the per-sample answers here")
    args = ap.parse_args()

    tok = AutoTokenizer.from_pretrained(str(args.model.parent), gguf_file=args.model.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(args.model.parent), gguf_file=args.model.name, dtype=torch.float32
    ).eval()
    ours = {}
    for line in (args.out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["policy"] == "full":
            ours[(r["task"], r["length"], r["index"])] = r

    rows, answers = [], []
    for path in sorted((args.out / "samples").glob("*.jsonl")):
        task, length = path.stem.rsplit("-", 1)
        length = int(length)
        ref_scores, our_scores, same = [], [], 0
        for line in path.read_text().splitlines():
            s = json.loads(line)
            mine = ours.get((task, length, s["index"]))
            if mine is None:
                continue
            # The split momentkv reads: the context, then the question from the last line break.
            cut = s["input"].rfind("\n")
            ids = tok(s["input"][:cut]).input_ids + tok(s["input"][cut:], add_special_tokens=False).input_ids
            with torch.no_grad():
                out = model.generate(
                    torch.tensor([ids]),
                    max_new_tokens=TOKENS_TO_GENERATE[task_family(task)],
                    do_sample=False,
                    pad_token_id=tok.eos_token_id,
                )
            text = tok.decode(out[0, len(ids):], skip_special_tokens=True)
            ref_scores.append(score(task, text, s["outputs"]))
            our_scores.append(mine["score"])
            same += postprocess(text) == postprocess(mine["answer"])
            answers.append({"task": task, "length": length, "index": s["index"], "transformers": text,
                            "momentkv": mine["answer"], "outputs": s["outputs"]})
        if ref_scores:
            rows.append((task, length, len(ref_scores), sum(ref_scores) / len(ref_scores),
                         sum(our_scores) / len(our_scores), same))

    print("| task | length | samples | transformers | momentkv | identical answers |")
    print("|---|---|---|---|---|---|")
    for task, length, n, ref, mine, same in rows:
        print(f"| {task} | {length} | {n} | {ref:.1f} | {mine:.1f} | {same}/{n} |")
    if rows:
        n = sum(r[2] for r in rows)
        print(f"| mean over tasks | | {n} | {sum(r[3] for r in rows) / len(rows):.1f} | "
              f"{sum(r[4] for r in rows) / len(rows):.1f} | {sum(r[5] for r in rows)}/{n} |")
    if args.json:
        args.json.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
