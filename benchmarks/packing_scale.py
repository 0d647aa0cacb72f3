"""Tokenizing and packing throughput (tokens/s) and peak RSS for a large slice of text, built in a temporary folder
by repeating the stories of the TinyStories V2 sample (``../shared/data/tinystories_v2_sample.txt``) up to
``--megabytes`` (never in the repository).

Each setting runs in a fresh process with an empty datasets cache (nothing is served from an earlier run); peak RSS
is the process's and, with ``preprocessing_num_workers``, its largest worker's.

    python benchmarks/packing_scale.py                       # 100 MB, 1 and 2 processes, block 512
    python benchmarks/packing_scale.py --megabytes 20 --num_proc 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "..", "shared", "data", "tinystories_v2_sample.txt")

PACK = """
import json, resource, sys, time
from tinystories.story_formats import iter_stories
from tinystories.tokenization import train_tokenizer
from tinystories.training.data import load_raw_datasets, pack_dataset
path, sample, num_proc, block = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tokenizer = train_tokenizer(list(iter_stories(sample)), vocab_size=4096)
start = time.perf_counter()
raw = load_raw_datasets(train_file=path, validation_split_percentage=1)
loaded = time.perf_counter()
packed = pack_dataset(raw, tokenizer, block_size=block, num_proc=num_proc or None)
end = time.perf_counter()
tokens = sum(len(packed[s]) for s in packed) * block
print("RESULT " + json.dumps({"load_s": loaded - start, "pack_s": end - loaded, "tokens": tokens,
      "stories": sum(len(raw[s]) for s in raw),
      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      "children_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def build_slice(path: str, megabytes: float) -> int:
    from tinystories.story_formats import iter_stories

    stories = list(iter_stories(SAMPLE))
    target, written, copies = megabytes * 1e6, 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            for story in stories:
                line = f"{story}\n<|endoftext|>\n"
                f.write(line)
                written += len(line.encode())
            copies += 1
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=100)
    parser.add_argument("--num_proc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--block_size", type=int, default=512)
    options = parser.parse_args()
    if not os.path.isfile(SAMPLE):
        raise SystemExit(f"the TinyStories V2 sample is not at {SAMPLE}")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "slice.txt")
        copies = build_slice(path, options.megabytes)
        size = os.path.getsize(path) / 1e6
        print(f"{size:.0f} MB slice ({copies} copies of the V2 sample), block {options.block_size}")
        print(f"{'processes':>9}{'stories':>10}{'tokens':>13}{'load s':>8}{'pack s':>8}{'tokens/s':>10}{'RSS MB':>8}")
        for num_proc in options.num_proc:
            cache = tempfile.mkdtemp(dir=folder)
            env = {**os.environ, "PYTHONPATH": REPO, "HF_DATASETS_CACHE": cache}
            command = [sys.executable, "-c", PACK, path, SAMPLE, str(num_proc), str(options.block_size)]
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
            if done.returncode:
                raise SystemExit(done.stderr[-3000:])
            r = json.loads([x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1][7:])
            rss = max(r["rss_mb"], r["children_rss_mb"])
            print(
                f"{num_proc:>9}{r['stories']:>10}{r['tokens']:>13,}{r['load_s']:>8.1f}{r['pack_s']:>8.1f}"
                f"{r['tokens'] / r['pack_s']:>10,.0f}{rss:>8.0f}"
            )


if __name__ == "__main__":
    main()
