"""What each optimisation of our training step buys (`python benchmarks/step_time.py --ablations`): the same model
and batches with and without it, timed in turn (median after one warm-up):

- masked-only MLM/TLM logits: the vocabulary projection at the masked positions only, against every position;
- the XLCO query pass stopping at xlco_layer, against a full forward read at that layer's <s> state;
- the key encoder truncated at xlco_layer (its forward and its EMA), against a MoCo-style frozen copy of the whole
  query model;
- SDPA attention against eager, on the whole forward + backward of a step.
"""

import copy
import gc
import tempfile

import torch
from measurement import median_interleaved
from step_variants import build_variants, shape_line
from workloads import key_encoder_tensors, model_inputs

from modeling_infoxlm import InfoXLMForPreTraining
from trainer import xlco_loss


def with_and_without(name: str, part: str, runs: dict, batches: list[dict], device: torch.device) -> tuple:
    """One table row: (optimisation, measured part, median seconds with it, without it), runs interleaved."""
    times = median_interleaved(runs, batches, 1, device)
    return name, part, times["with"], times["without"]


def masked_logits(ours, batches: list[dict], device: torch.device) -> list[tuple]:
    """The MLM/TLM vocabulary projection at the masked positions only, against every position."""
    model = ours.model

    def run_mlm_tlm(masked: bool):
        def run(batch):
            for objective in ("mlm", "tlm"):
                part = batch[objective]
                out = model(
                    input_ids=part["input_ids"],
                    attention_mask=part["attention_mask"],
                    labels=part["labels"],
                    masked_tokens=part["labels"].ne(-100) if masked else None,
                )
                out.mlm_loss.backward()
            model.zero_grad()

        return run

    print("  ablation: masked-only logits", flush=True)
    runs = {"with": run_mlm_tlm(True), "without": run_mlm_tlm(False)}
    return [with_and_without("masked-only MLM/TLM logits", "MLM + TLM forward + backward", runs, batches, device)]


def xlco_query_pass(ours, batches: list[dict], device: torch.device) -> list[tuple]:
    """The XLCO query pass stopping at xlco_layer, against a full forward read at that layer's <s> state."""
    trainer, model, raw = ours.trainer, ours.model, ours.trainer.model
    layer, queue, temperature = raw.config.xlco_layer, trainer.xlco.state_dict()["queue"], raw.config.xlco_temperature

    def run_xlco(truncated: bool):
        def run(batch):
            xlco = batch["xlco"]
            keys = trainer.xlco(xlco["key_input_ids"], xlco["key_attention_mask"])
            if truncated:
                vectors = model(
                    xlco_input_ids=xlco["query_input_ids"], xlco_attention_mask=xlco["query_attention_mask"]
                ).sentence_vectors
            else:  # a full forward, reading the <s> state of xlco_layer from the hidden states
                with trainer.accelerator.autocast():
                    hidden = raw.roberta(
                        xlco["query_input_ids"], attention_mask=xlco["query_attention_mask"], output_hidden_states=True
                    ).hidden_states[layer][:, 0]
                    vectors = raw.xlco_proj(hidden)
            loss, _ = xlco_loss(vectors, keys, queue, temperature)
            loss.backward()
            model.zero_grad()

        return run

    print("  ablation: XLCO query pass to xlco_layer", flush=True)
    runs = {"with": run_xlco(True), "without": run_xlco(False)}
    name, part = f"XLCO query pass stops at layer {layer}", "key forward + query forward + backward"
    return [with_and_without(name, part, runs, batches, device)]


def truncated_key_encoder(ours, batches: list[dict], device: torch.device) -> tuple[list[tuple], int, int]:
    """The key encoder truncated at xlco_layer against a MoCo-style one, a frozen copy of the whole query model run
    to the top: its forward and its EMA. Also returns both key encoders' bytes."""
    trainer, raw = ours.trainer, ours.trainer.model
    layer = raw.config.xlco_layer
    full = copy.deepcopy(raw).requires_grad_(False).eval()
    full_params = list(full.parameters())

    def key_forward(truncated: bool):
        def run(batch):
            xlco = batch["xlco"]
            if truncated:
                trainer.xlco(xlco["key_input_ids"], xlco["key_attention_mask"])
            else:
                with torch.no_grad():
                    hidden = full.roberta(
                        xlco["key_input_ids"], attention_mask=xlco["key_attention_mask"], output_hidden_states=True
                    ).hidden_states[layer][:, 0]
                    full.xlco_proj(hidden)

        return run

    update = trainer.xlco.enable_step + 1  # past enable_step: the EMA, not the copy that precedes XLCO

    def ema(truncated: bool):
        def run(batch):
            if truncated:
                trainer.xlco.update_key_encoder(raw, update)
            else:
                with torch.no_grad():
                    torch._foreach_lerp_(full_params, [p.detach() for p in raw.parameters()], 1 - 0.9999)

        return run

    print("  ablation: truncated key encoder", flush=True)
    name = f"key encoder truncated at layer {layer}"
    forward_runs = {"with": key_forward(True), "without": key_forward(False)}
    rows = [
        with_and_without(name, "key-encoder forward", forward_runs, batches, device),
        with_and_without(name, "EMA update", {"with": ema(True), "without": ema(False)}, batches, device),
    ]
    key_bytes = sum(p.numel() * p.element_size() for p in key_encoder_tensors(trainer.xlco).values())
    full_bytes = sum(p.numel() * p.element_size() for p in full_params)
    return rows, key_bytes, full_bytes


def sdpa_attention(ours, batches: list[dict], device: torch.device) -> list[tuple]:
    """Same weights, eager attention: what SDPA buys on the whole forward + backward of a step."""
    trainer, model, raw = ours.trainer, ours.model, ours.trainer.model
    config_eager = copy.deepcopy(raw.config)
    config_eager._attn_implementation = "eager"
    eager = InfoXLMForPreTraining(config_eager).to(device)
    eager.load_state_dict(raw.state_dict())
    eager.train()

    def forward_backward(module):
        def run(batch):
            with trainer.accelerator.autocast():
                out = module(**model_inputs(batch))
            (out.loss + out.sentence_vectors.sum() * 0).backward()
            module.zero_grad()

        return run

    print("  ablation: SDPA attention", flush=True)
    runs = {"with": forward_backward(model), "without": forward_backward(eager)}
    return [
        with_and_without("SDPA attention (vs eager)", "MLM + TLM + XLCO forward + backward", runs, batches, device)
    ]


def run_ablations(args, tokenizer, batches: list[dict], device: torch.device) -> tuple[list[tuple], int, int]:
    """Rows (optimisation, measured part, seconds with, seconds without) on the ours model, and the key encoder's
    bytes truncated and as a full copy."""
    with tempfile.TemporaryDirectory() as output_dir:
        (ours,) = build_variants(args, tokenizer, output_dir, only=f"ours:{args.queue_size}")
    ours.model.train()
    rows = masked_logits(ours, batches, device) + xlco_query_pass(ours, batches, device)
    key_rows, key_bytes, full_bytes = truncated_key_encoder(ours, batches, device)
    gc.collect()  # frees the full copy before the eager model is built
    rows += key_rows + sdpa_attention(ours, batches, device)
    return rows, key_bytes, full_bytes


def print_ablations(args, tokenizer, batches: list[dict], device: torch.device) -> None:
    """The ablation table: each optimisation's measured part with and without it, and the key encoder's bytes."""
    rows, key_bytes, full_bytes = run_ablations(args, tokenizer, batches, device)
    print(
        f"\nAblations: {shape_line(args, tokenizer)}; median of {args.ablation_repeats} after 1 warm-up, interleaved"
    )
    print("| optimisation | measured part | with (s) | without (s) | saved (s) | without / with |")
    print("|---|---|---:|---:|---:|---:|")
    for name, part, with_, without in rows:
        print(f"| {name} | {part} | {with_:.3f} | {without:.3f} | {without - with_:.3f} | {without / with_:.2f}x |")
    print(f"\nkey encoder weights: truncated {key_bytes / 2**20:,.0f} MiB, full copy {full_bytes / 2**20:,.0f} MiB")
