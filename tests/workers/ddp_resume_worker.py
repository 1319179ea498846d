"""One rank of the two-process resume test (torch.distributed.run, gloo on CPU): 6 updates straight, then 3 updates,
a checkpoint, and a fresh trainer resuming for the other 3; dumps both end states per rank."""

import os
import sys
import time
from pathlib import Path

from helpers import (
    StopAfter,
    build_tiny_tokenizer,
    corpus_dataset,
    snapshot,
    tiny_infoxlm,
    tiny_trainer,
    write_tiny_corpus,
)
from safetensors.torch import save_file


def main(root: Path, rank: int):
    corpus = root / "corpus"
    if rank == 0:  # one rank writes the corpus, then renames it into place
        write_tiny_corpus(root / "corpus-tmp").rename(corpus)
    while not corpus.exists():
        time.sleep(0.1)
    tokenizer = build_tiny_tokenizer()

    def dataset():  # a cache per rank: the ranks tokenize at the same time
        return corpus_dataset(tokenizer, corpus, data_cache_dir=str(root / f"cache-{rank}"))

    straight = tiny_trainer(tokenizer, root / "straight", max_steps=6, dataset=dataset())
    straight.train()
    save_file(snapshot(straight), root / f"straight-rank{rank}.safetensors")

    first = tiny_trainer(
        tokenizer, root / "resumed", max_steps=6, dataset=dataset(), save_strategy="steps", save_steps=3
    )
    first.add_callback(StopAfter(3))
    first.train()
    resumed = tiny_trainer(
        tokenizer, root / "resumed", max_steps=6, dataset=dataset(), model=tiny_infoxlm(len(tokenizer), seed=7)
    )
    resumed.train(resume_from_checkpoint=str(root / "resumed" / "checkpoint-3"))
    save_file(snapshot(resumed), root / f"resumed-rank{rank}.safetensors")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(os.environ["RANK"]))
