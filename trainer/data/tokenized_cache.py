"""Tokenize map-style corpora once and cache them with 🤗 datasets (Arrow files, memory-mapped).

All monolingual corpora go into one dataset and all parallel corpora into another, in corpus order, so each
corpus is a contiguous row range. Rows hold token ids without special tokens and their lengths:

    mono:     input_ids list[int32], length int32
    parallel: src_ids list[int32], tgt_ids list[int32], src_length int32, tgt_length int32

Cache keys are explicit: the raw text is keyed by the corpora's fingerprints (path, size, mtime, held-out
setting; or the 🤗 dataset fingerprint) and the tokens additionally by the tokenizer's content, so changing a file or
the tokenizer re-tokenizes while a rerun on the same data reuses the cache.
"""

import hashlib
import json
import logging

import datasets

logger = logging.getLogger(__name__)

CACHE_VERSION = "1"  # bump when the cached layout changes

_RAW_FEATURES = {
    "mono": datasets.Features({"text": datasets.Value("string")}),
    "parallel": datasets.Features({"src": datasets.Value("string"), "tgt": datasets.Value("string")}),
}
_TOKEN_FEATURES = {
    "mono": datasets.Features(
        {"input_ids": datasets.List(datasets.Value("int32")), "length": datasets.Value("int32")}
    ),
    "parallel": datasets.Features(
        {
            "src_ids": datasets.List(datasets.Value("int32")),
            "tgt_ids": datasets.List(datasets.Value("int32")),
            "src_length": datasets.Value("int32"),
            "tgt_length": datasets.Value("int32"),
        }
    ),
}


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what the tokenizer does (its full fast-tokenizer definition), stable across runs."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        definition = backend.to_str()
    else:  # a slow tokenizer: let datasets hash the object
        definition = datasets.fingerprint.Hasher.hash(tokenizer)
    return hashlib.sha256(f"{type(tokenizer).__name__}:{definition}".encode()).hexdigest()[:16]


def corpora_fingerprint(corpora) -> str:
    """A short stable hash of what a list of corpora holds (for cache keys)."""
    payload = json.dumps([corpus.fingerprint() for corpus in corpora], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (batched: one call to the fast tokenizer)."""
    return tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]


def _generate_rows(corpora, kind):
    for corpus in corpora:
        for batch in corpus.iter_batches():
            if kind == "mono":
                for text in batch:
                    yield {"text": text}
            else:
                for src, tgt in batch:
                    yield {"src": src, "tgt": tgt}


def _tokenize_mono(batch, tokenizer):
    ids = encode(tokenizer, batch["text"])
    return {"input_ids": ids, "length": [len(x) for x in ids]}


def _tokenize_parallel(batch, tokenizer):
    src, tgt = encode(tokenizer, batch["src"]), encode(tokenizer, batch["tgt"])
    return {
        "src_ids": src,
        "tgt_ids": tgt,
        "src_length": [len(x) for x in src],
        "tgt_length": [len(x) for x in tgt],
    }


def tokenize_corpora(
    corpora,
    kind: str,
    tokenizer,
    num_rows: list[int],
    cache_dir: str | None = None,
    num_proc: int | None = None,
    tokenizer_hash: str | None = None,
) -> tuple[datasets.Dataset, list[tuple[int, int]]]:
    """One tokenized, cached dataset for `corpora` (all "mono" or all "parallel"), and each corpus's rows.

    num_rows: the training rows each corpus yields (CorpusStats.used from its scan), which locates the
    corpora in the concatenation.
    """
    raw_fingerprint = hashlib.sha256(f"{CACHE_VERSION}:{kind}:{corpora_fingerprint(corpora)}".encode()).hexdigest()
    raw = datasets.Dataset.from_generator(
        _generate_rows,
        features=_RAW_FEATURES[kind],
        gen_kwargs={"corpora": corpora, "kind": kind},
        cache_dir=cache_dir,
        fingerprint=raw_fingerprint[:32],
    )
    if len(raw) != sum(num_rows):  # a corpus changed between its scan and now
        raise RuntimeError(f"expected {sum(num_rows)} {kind} rows, got {len(raw)}; were the files modified?")
    tokenizer_hash = tokenizer_hash or tokenizer_fingerprint(tokenizer)
    tokenized = raw.map(
        _tokenize_mono if kind == "mono" else _tokenize_parallel,
        batched=True,
        batch_size=1000,
        remove_columns=raw.column_names,
        features=_TOKEN_FEATURES[kind],
        fn_kwargs={"tokenizer": tokenizer},
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        new_fingerprint=hashlib.sha256(f"{raw_fingerprint}:{tokenizer_hash}".encode()).hexdigest()[:32],
        desc=f"Tokenizing {kind} data",
    )
    ranges, start = [], 0
    for n in num_rows:
        ranges.append((start, start + n))
        start += n
    return tokenized, ranges
