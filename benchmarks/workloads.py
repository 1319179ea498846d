"""What the benchmarks run on: XLM-R's shapes, random-weight models, pretraining data from the shared corpora, the
batches a training step consumes, and the step's model FLOPs counted on the executed shapes."""

import argparse
import gc
import itertools
from pathlib import Path

import torch

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer import DataArguments, InfoXLMDataCollator, build_pretraining_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
OBJECTIVES = ["mlm", "tlm", "xlco"]
# XLM-R's own shapes (xlco_layer: the config's default, 2/3 of the depth as in the paper), and a tiny one for smoke runs.
SHAPES = {
    "base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
    "tiny": dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64),
}


def pretraining_dataset(
    tokenizer,
    mono_data: list[str],
    parallel_data: list[str],
    max_seq_length: int,
    *,
    seed: int = 0,
    streaming: bool = True,
    data_cache_dir: str | None = None,
    corpora=None,
):
    """build_pretraining_dataset's endless MLM + TLM + XLCO stream of the given corpora (streamed by default: a
    benchmark draws a few dozen examples, nothing to tokenize up front)."""
    corpus_fields = dict(mono_data=mono_data, parallel_data=parallel_data, max_seq_length=max_seq_length)
    data_args = DataArguments(**corpus_fields, streaming=streaming, data_cache_dir=data_cache_dir)
    dataset, _ = build_pretraining_dataset(data_args, tokenizer, OBJECTIVES, seed, corpora)
    return dataset


def collate_batches(args, tokenizer, count: int) -> list[dict]:
    """`count` batches {"mlm", "tlm", "xlco"} of `args.batch_size` examples each, from `args.mono_data` and
    `args.parallel_data` at `args.max_seq_length` (seeded with `args.seed`)."""
    dataset = pretraining_dataset(tokenizer, args.mono_data, args.parallel_data, args.max_seq_length, seed=args.seed)
    collator = InfoXLMDataCollator(tokenizer)
    torch.manual_seed(args.seed)
    examples = iter(dataset)
    batches = [collator(list(itertools.islice(examples, args.batch_size))) for _ in range(count)]
    del examples
    gc.collect()  # closes the corpus readers now rather than at interpreter exit
    return batches


def data_dir_batches(tokenizer, data_dir: Path, max_seq_length: int, batch_size: int, count: int) -> list[dict]:
    """`count` batches (seed 0) from a data folder's mono/ and tatoeba/ (../shared/data's layout)."""
    corpora = argparse.Namespace(
        mono_data=[str(data_dir / "mono")],
        parallel_data=[str(data_dir / "tatoeba")],
        max_seq_length=max_seq_length,
        batch_size=batch_size,
        seed=0,
    )
    return collate_batches(corpora, tokenizer, count)


def move(batch: dict, device: torch.device) -> dict:
    return {name: {key: t.to(device) for key, t in part.items()} for name, part in batch.items()}


def model_inputs(batch: dict) -> dict:
    """The query model's inputs for one {mlm, tlm, xlco} batch (as InfoXLMTrainer.compute_loss builds them)."""
    mlm, tlm, xlco = batch["mlm"], batch["tlm"], batch["xlco"]
    inputs = dict(
        input_ids=mlm["input_ids"],
        attention_mask=mlm["attention_mask"],
        labels=mlm["labels"],
        tlm_input_ids=tlm["input_ids"],
        tlm_attention_mask=tlm["attention_mask"],
        tlm_labels=tlm["labels"],
        tlm_masked_positions=tlm.get("masked_positions"),
        xlco_input_ids=xlco["query_input_ids"],
        xlco_attention_mask=xlco["query_attention_mask"],
    )
    # The collator's host-computed positions, as the trainer passes them (no data-dependent shape on the device).
    if "masked_positions" in mlm:
        inputs["masked_positions"] = mlm["masked_positions"]
    else:
        inputs["masked_tokens"] = mlm["labels"].ne(-100)
    return inputs


def mlm_tlm_tokens(batch: dict) -> int:
    """Real (non-padding) tokens of the MLM and TLM batches: what both variants of a step consume."""
    return sum(int(batch[o]["attention_mask"].sum()) for o in ("mlm", "tlm"))


def config_fields(
    tokenizer,
    *,
    num_hidden_layers: int,
    hidden_size: int,
    num_attention_heads: int | None = None,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 514,
) -> dict:
    """An XLM-R config's fields at these shapes with the tokenizer's vocabulary (heads default to hidden / 64, the
    intermediate size to 4 x hidden)."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads or max(1, hidden_size // 64),
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def random_infoxlm(tokenizer, shape: str, **overrides) -> InfoXLMForPreTraining:
    """A random-initialised InfoXLM at one of SHAPES with the tokenizer's vocabulary (seed 0)."""
    torch.manual_seed(0)
    return InfoXLMForPreTraining(InfoXLMConfig(**{**config_fields(tokenizer, **SHAPES[shape]), **overrides}))


def key_encoder_tensors(xlco) -> dict[str, torch.Tensor]:
    """The key encoder's tensors by the query model's names, from XLCO's public `state_dict()` (`key_encoder.<name>`):
    they share storage with the key encoder, so timing an op on them or reading them sees the real key encoder."""
    prefix = "key_encoder."
    return {name[len(prefix) :]: tensor for name, tensor in xlco.state_dict().items() if name.startswith(prefix)}


def query_tensors(model: torch.nn.Module, names) -> list[torch.Tensor]:
    """The query model's tensors of `names` (tied ones included, as the key encoder tracks them), detached."""
    params = dict(model.named_parameters(remove_duplicate=False))
    return [params[name].detach() for name in names]


def key_encoder_layers(xlco) -> int:
    """How many encoder layers the key encoder holds, counted from its state's names."""
    return len({name.split(".")[3] for name in key_encoder_tensors(xlco) if name.startswith("roberta.encoder.layer.")})


# ------------------------------------------------------------------------------------------------ model FLOPs


def encoder_flops(config, input_ids: torch.Tensor, layers: int) -> int:
    """Forward FLOPs of `layers` encoder layers on the (padded) batch: linear layers + attention's matmuls."""
    batch, length = input_ids.shape
    hidden, intermediate = config.hidden_size, config.intermediate_size
    linear = 2 * batch * length * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = 2 * 2 * batch * length * length * hidden  # QK^T and (softmax)V
    return layers * (linear + attention)


def head_flops(config, positions: int) -> int:
    """Forward FLOPs of the MLM head (dense + vocabulary projection) at `positions` rows."""
    return 2 * positions * (config.hidden_size * config.hidden_size + config.hidden_size * config.vocab_size)


def infoxlm_step_flops(config, batch: dict, queue_size: int) -> int:
    """Model FLOPs of one InfoXLM training step on `batch` (those of its objectives it holds): forward x3 for
    forward + backward; the vocabulary projection at the masked positions only; the key encoder forward only; the
    XLCO logits against the queue forward + the gradient towards the queries (the queue has none)."""
    total = 0
    for objective in ("mlm", "tlm"):
        if objective in batch:
            part = batch[objective]
            masked = int(part["labels"].ne(-100).sum())
            total += 3 * (
                encoder_flops(config, part["input_ids"], config.num_hidden_layers) + head_flops(config, masked)
            )
    if "xlco" in batch:
        hidden, dim, layers = config.hidden_size, config.xlco_projection_size, config.xlco_layer
        query, key = batch["xlco"]["query_input_ids"], batch["xlco"]["key_input_ids"]
        total += 3 * (encoder_flops(config, query, layers) + 2 * query.shape[0] * hidden * dim)
        total += encoder_flops(config, key, layers) + 2 * key.shape[0] * hidden * dim
        total += 2 * 2 * query.shape[0] * queue_size * dim
    return total
