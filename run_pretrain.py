#!/usr/bin/env python
"""
InfoXLM pretraining: MLM on monolingual text, TLM on translation pairs and XLCO (cross-lingual contrast with a
momentum key encoder and a queue of negatives), continuing XLM-R or from scratch.

    python run_pretrain.py config.yaml
    python run_pretrain.py --model_name_or_path xlm-roberta-base --mono_data cc100/ --parallel_data opus/ \
        --output_dir out --max_steps 150000 ...
    accelerate launch --num_processes 8 run_pretrain.py ...

Without any data argument it trains a tiny model on the built-in demo corpus (see README).
"""

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import transformers
from accelerate import PartialState
from transformers import AutoTokenizer, HfArgumentParser, set_seed

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer import (
    DataArguments,
    InfoXLMDataCollator,
    InfoXLMTrainer,
    InfoXLMTrainingArguments,
    RetrievalEvaluationCallback,
    build_pretraining_dataset,
    format_summary,
    load_parallel_pairs,
    train_tokenizer,
    write_demo_corpus,
)

logger = logging.getLogger("run_pretrain")


@dataclass
class ModelArguments:
    """Which model to start from, and the model-side XLCO settings (stored in its config)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Continue pretraining from this XLM-R / InfoXLM checkpoint (directory or Hub id)."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Train from scratch with this config (directory, Hub id or .json file)."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer (default: the one of --model_name_or_path)."}
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": 'From scratch: override config fields, e.g. "num_hidden_layers=2,hidden_size=64".'},
    )
    xlco_layer: int | None = field(default=None, metadata={"help": "Layer whose <s> state is the sentence vector."})
    xlco_queue_size: int | None = field(default=None, metadata={"help": "Number of negatives in the queue."})
    xlco_temperature: float | None = field(default=None, metadata={"help": "Temperature of the XLCO logits."})
    xlco_use_projection: bool | None = field(
        default=None, metadata={"help": "Use the shared bias-free projection on sentence vectors."}
    )
    attn_implementation: str = field(default="sdpa", metadata={"help": "eager or sdpa."})


def parse_args(argv: list[str] | None = None):
    parser = HfArgumentParser((ModelArguments, DataArguments, InfoXLMTrainingArguments))
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(os.path.abspath(argv[0]))
    if len(argv) == 1 and argv[0].endswith((".yaml", ".yml")):
        return parser.parse_yaml_file(os.path.abspath(argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def load_config(model_args: ModelArguments, vocab_size: int) -> InfoXLMConfig:
    xlco = {
        name: getattr(model_args, name)
        for name in ("xlco_layer", "xlco_queue_size", "xlco_temperature", "xlco_use_projection")
        if getattr(model_args, name) is not None
    }
    source = model_args.model_name_or_path or model_args.config_name
    if source is not None:
        return InfoXLMConfig.from_pretrained(source, **xlco)
    overrides = {}
    if model_args.config_overrides:
        # transformers' own "a=1,b=false" parser types each value by the field's default; the config is then
        # built from the parsed values so that derived defaults (xlco_layer, projection size) follow them.
        parsed = InfoXLMConfig()
        parsed.update_from_string(model_args.config_overrides)
        names = [item.split("=")[0] for item in model_args.config_overrides.split(",")]
        overrides = {name: getattr(parsed, name) for name in names}
    return InfoXLMConfig(vocab_size=vocab_size, **{**overrides, **xlco})


DEMO_DIR = Path("outputs/demo")
DEMO_MODEL = (
    "hidden_size=128,num_hidden_layers=3,num_attention_heads=4,intermediate_size=512,max_position_embeddings=130"
)


def demo_arguments(demo_dir: Path = DEMO_DIR) -> list[str]:
    """
    The built-in default: a tiny model trained from scratch on the CLDR demo corpus (trainer/cldr_corpus.py), with a
    tokenizer trained on that corpus, so the first command of the README works offline on a fresh machine.
    """
    corpus_dir, tokenizer_dir = demo_dir / "corpus", demo_dir / "tokenizer"
    with PartialState().main_process_first():  # under `accelerate launch` one process writes, the others read
        write_demo_corpus(corpus_dir)
        if not (tokenizer_dir / "tokenizer.json").is_file():
            texts = [line.rstrip("\n") for path in sorted((corpus_dir / "mono").glob("*.txt")) for line in open(path)]
            train_tokenizer(texts, vocab_size=8000).save_pretrained(tokenizer_dir)
    return [
        "--config_overrides", DEMO_MODEL,
        # A model trained from scratch moves fast: momentum 0.99 lets the key encoder keep up, and the batch's own
        # keys as negatives stop XLCO from recognising the positive as the freshest key (experiments/README.md).
        "--xlco_layer", "2", "--xlco_queue_size", "1024", "--xlco_momentum", "constant,0.99",
        "--xlco_in_batch_negatives", "true",
        "--tokenizer_name", str(tokenizer_dir),
        "--mono_data", str(corpus_dir / "mono"),
        "--parallel_data", str(corpus_dir / "parallel"),
        "--retrieval_eval_data", str(corpus_dir / "heldout"), "--retrieval_eval_steps", "250",
        "--max_seq_length", "64", "--per_device_train_batch_size", "32",
        "--max_steps", "1000", "--learning_rate", "1e-3", "--warmup_steps", "30", "--weight_decay", "0.01",
        "--logging_steps", "20", "--save_strategy", "no", "--report_to", "none",
        "--output_dir", str(demo_dir / "model"), "--seed", "0",
    ]  # fmt: skip


def run_report(log_history: list[dict], output_dir: str, demo: bool) -> str:
    """What a person wants to read at the end: each loss and the retrieval accuracy first → last, where the model
    is, and what to run next."""
    lines = ["", "Training summary (first logged → last logged):"]
    for name in ("mlm_loss", "tlm_loss", "xlco_loss", "xlco_accuracy", "retrieval_acc"):
        values = [entry[name] for entry in log_history if name in entry]
        if values:
            lines.append(f"  {name:<14} {values[0]:8.3f} → {values[-1]:8.3f}")
    lines += [
        "",
        f"Model, tokenizer, model card and trainer_state.json (every logged number) are in {output_dir}/",
        "Next:",
        f"  python -c \"from transformers import AutoModel; print(AutoModel.from_pretrained('{output_dir}', "
        f'trust_remote_code=True))"',
        f"  python run_xnli.py --model_name_or_path {output_dir} --train_file <en.train.tsv> "
        f"--test_files <xnli dir> --do_train --do_predict --output_dir {output_dir}-xnli",
    ]
    if demo:
        lines += [
            "  Real corpora: python run_pretrain.py --model_name_or_path FacebookAI/xlm-roberta-base "
            "--mono_dataset_name cc100 --parallel_dataset_name Helsinki-NLP/opus-100 --streaming ... (README.md)",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> InfoXLMTrainer | None:
    argv = sys.argv[1:] if argv is None else argv
    demo = not argv
    if demo:
        print(
            f"No data arguments: training a tiny model on the built-in CLDR demo corpus in {DEMO_DIR}/ (see README)."
        )
        argv = demo_arguments()
    model_args, data_args, training_args = parse_args(argv)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO if training_args.should_log else logging.WARNING,
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    transformers.utils.logging.set_verbosity_warning()
    set_seed(training_args.seed)

    tokenizer_source = model_args.tokenizer_name or model_args.model_name_or_path
    if tokenizer_source is None:
        raise ValueError("Pass --tokenizer_name (training from scratch) or --model_name_or_path.")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = load_config(model_args, len(tokenizer))
    if model_args.model_name_or_path:
        model = InfoXLMForPreTraining.from_pretrained(
            model_args.model_name_or_path, config=config, attn_implementation=model_args.attn_implementation
        )
    else:
        config._attn_implementation = model_args.attn_implementation
        model = InfoXLMForPreTraining(config)
    logger.info(
        f"Model: {model.num_parameters() / 1e6:.1f}M parameters, {config.num_hidden_layers} layers, "
        f"XLCO at layer {config.xlco_layer}, objectives {','.join(training_args.objective_list)}"
    )

    with training_args.main_process_first(desc="preparing the pretraining data"):
        train_dataset, data_summary = build_pretraining_dataset(
            data_args, tokenizer, training_args.objective_list, seed=training_args.seed
        )
    collator = InfoXLMDataCollator(
        tokenizer, mlm_probability=data_args.mlm_probability, pad_to_multiple_of=data_args.pad_to_multiple_of
    )

    trainer = InfoXLMTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        data_collator=collator,
        processing_class=tokenizer,
    )
    trainer.data_summary_markdown = f"```\n{format_summary(data_summary)}\n```"
    trainer.base_model = model_args.model_name_or_path
    if training_args.retrieval_eval_data:
        # With --parallel_heldout_every N the retrieval files are split the same way (Tatoeba: N=5 → eval rows).
        heldout = data_args.parallel_heldout_every
        pairs = load_parallel_pairs(
            training_args.retrieval_eval_data,
            split="eval" if heldout >= 2 else "all",
            heldout_every=max(heldout, 2),
            max_pairs=training_args.retrieval_eval_max_pairs,
        )
        steps = training_args.retrieval_eval_steps or int(training_args.eval_steps or 500)
        trainer.add_callback(RetrievalEvaluationCallback(trainer, tokenizer, pairs, eval_steps=steps))

    result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model()  # the query model, config, code and tokenizer; never the key encoder or the queue
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    trainer.create_model_card()
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message="InfoXLM pretraining")
    print(run_report(trainer.state.log_history, training_args.output_dir, demo))
    return trainer


if __name__ == "__main__":
    main()
