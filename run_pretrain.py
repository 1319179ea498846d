#!/usr/bin/env python
"""
InfoXLM pretraining: MLM on monolingual text, TLM on translation pairs and XLCO (cross-lingual contrast with a
momentum key encoder and a queue of negatives), continuing XLM-R or from scratch.

    python run_pretrain.py config.yaml
    python run_pretrain.py --model_name_or_path xlm-roberta-base --mono_data cc100/ --parallel_data opus/ \
        --output_dir out --max_steps 150000 ...
    accelerate launch --num_processes 8 run_pretrain.py ...          # GPUs
    torchrun --nproc_per_node 2 run_pretrain.py ...                   # CPU: DDP over gloo

Without any data argument it trains a tiny model on the built-in demo corpus (see README).

Everything is checked before the data is prepared: arguments, model config and XLCO settings, the output folder
(a previous run there is refused unless --resume_from_checkpoint or --overwrite_output_dir), the checkpoint to resume
from, the logging integrations and the launcher. A bad input ends the run with one message naming the file or field
and the fix, and exit status 2 (`INFOXLM_DEBUG=1` shows the traceback).
"""

import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import transformers
from accelerate import PartialState
from transformers import AutoTokenizer, set_seed
from transformers.integrations import get_available_reporting_integrations

from infoxlm_cli import (
    ConfigError,
    apply_config_overrides,
    argument_parser,
    check_sequence_length,
    check_source,
    check_tokenizer_folder,
    check_training_arguments,
    load_pretrained,
    parse_arguments,
    require_own_trainer_package,
    run_cli,
)
from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining, usable_positions

require_own_trainer_package()  # before `import trainer`: Coqui's `trainer` on PyPI has the same name

from trainer import (  # noqa: E402
    XLCO,
    CheckpointError,
    DataArguments,
    DataError,
    InfoXLMDataCollator,
    InfoXLMTrainer,
    InfoXLMTrainingArguments,
    build_pretraining_dataset,
    format_summary,
    load_parallel_pairs,
    preparation_report,
    train_tokenizer,
    write_demo_corpus,
)
from trainer.checkpoints import (  # noqa: E402
    ResumeCheckpoint,
    resolve_resume_checkpoint,
    xlco_state_files,
)
from trainer.launch_checks import has_accelerator  # noqa: E402
from trainer.output_folder import OutputFolderError, check_output_folder, remove_previous_run  # noqa: E402
from trainer.retrieval_callback import RetrievalEvaluationCallback  # noqa: E402

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
        metadata={
            "help": 'Override config fields, e.g. "num_hidden_layers=2,hidden_size=64" from scratch, or the paper\'s '
            '"hidden_dropout_prob=0,attention_probs_dropout_prob=0" when continuing --model_name_or_path.'
        },
    )
    xlco_layer: int | None = field(default=None, metadata={"help": "Layer whose <s> state is the sentence vector."})
    xlco_queue_size: int | None = field(default=None, metadata={"help": "Number of negatives in the queue."})
    xlco_temperature: float | None = field(default=None, metadata={"help": "Temperature of the XLCO logits."})
    xlco_use_projection: bool | None = field(
        default=None, metadata={"help": "Use the shared bias-free projection on sentence vectors."}
    )
    attn_implementation: str = field(default="sdpa", metadata={"help": "eager or sdpa."})


@dataclass
class RunArguments:
    """What to do with an output folder that already holds a run, and whether to only prepare the data."""

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace the run already in --output_dir: its checkpoints, model files and leftovers of killed "
            "saves are deleted once every check has passed, just before training starts. Without it (or "
            "--resume_from_checkpoint) such a folder is refused."
        },
    )
    prepare_data_only: bool = field(
        default=False,
        metadata={
            "help": "Check and tokenize the data into the cache (--data_cache_dir), print its summary and stop, in "
            "one process. A multi-process run with the same data arguments then reads the cache instead of "
            "tokenizing on rank 0 while the other ranks wait (at most --ddp_timeout) (README, Data)."
        },
    )


def parse_args(argv: list[str] | None = None):
    """(ModelArguments, DataArguments, InfoXLMTrainingArguments, RunArguments) from flags or one .json/.yaml file;
    a bad value raises ConfigError."""
    parser = argument_parser((ModelArguments, DataArguments, InfoXLMTrainingArguments, RunArguments))
    return parse_arguments(parser, sys.argv[1:] if argv is None else argv)


def load_config(model_args: ModelArguments, vocab_size: int) -> InfoXLMConfig:
    xlco = {
        name: getattr(model_args, name)
        for name in ("xlco_layer", "xlco_queue_size", "xlco_temperature", "xlco_use_projection")
        if getattr(model_args, name) is not None
    }
    source = model_args.model_name_or_path or model_args.config_name
    if source is not None:
        config = InfoXLMConfig.from_pretrained(source, **xlco)
        if model_args.config_overrides:  # typed by the existing fields; an unknown field raises
            apply_config_overrides(config, model_args.config_overrides)
        return config
    overrides = {}
    if model_args.config_overrides:
        # Each value is typed by the field's default; the config is then built from the parsed values so that
        # derived defaults (xlco_layer, projection size) follow them.
        parsed = InfoXLMConfig()
        names = apply_config_overrides(parsed, model_args.config_overrides)
        overrides = {name: getattr(parsed, name) for name in names}
    return InfoXLMConfig(vocab_size=vocab_size, **{**overrides, **xlco})


DEMO_DIR = Path("outputs/demo")
DEMO_MODEL = (
    "hidden_size=128,num_hidden_layers=3,num_attention_heads=4,intermediate_size=512,max_position_embeddings=130"
)


def demo_arguments(demo_dir: Path = DEMO_DIR) -> list[str]:
    """
    The built-in default: a tiny model trained from scratch on the CLDR demo corpus (trainer/data/demo_corpus.py), with a
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
        # From scratch at batch 32, the reference weighting gives XLCO's 32 sentences about 7% of the objective
        # against ~400 masked tokens: measured, held-out retrieval then falls (18.6% -> 12.6% in 1,000 updates) while
        # MLM reshapes the embeddings. Each objective's mean, added 1:1:1, lets the demo show XLCO at work.
        "--loss_normalization", "mean",
        "--tokenizer_name", str(tokenizer_dir),
        "--mono_data", str(corpus_dir / "mono"),
        "--parallel_data", str(corpus_dir / "parallel"),
        "--retrieval_eval_data", str(corpus_dir / "heldout"), "--retrieval_eval_steps", "250",
        "--max_seq_length", "64", "--per_device_train_batch_size", "32",
        "--max_steps", "1000", "--learning_rate", "1e-3", "--warmup_steps", "30", "--weight_decay", "0.01",
        "--logging_steps", "20", "--save_strategy", "no", "--report_to", "none",
        "--output_dir", str(demo_dir / "model"), "--overwrite_output_dir", "true", "--seed", "0",
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------------------------
# Checks that run before anything is prepared or written


def setup_processes() -> None:
    """
    Multi-process runs on CPU. `torchrun --nproc_per_node N` (or `accelerate launch --multi_gpu`) starts N processes,
    but without a GPU the Trainer only joins them into one DDP run with `--use_cpu`: each would otherwise train
    alone, into the same folder. `accelerate launch --num_processes N` without a GPU (with or without `--cpu`)
    starts a single process, which is refused. Must run before the arguments are parsed: they set up the devices.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not has_accelerator():
        os.environ["ACCELERATE_USE_CPU"] = "true"  # what `--use_cpu true` does: DDP over gloo
    elif world_size <= 1 and "MASTER_ADDR" in os.environ and "ACCELERATE_DYNAMO_BACKEND" in os.environ:
        # accelerate's single-process launcher sets MASTER_ADDR only when more processes were asked for.
        raise ConfigError(
            "`accelerate launch --num_processes N` started a single process: without GPUs (with or without --cpu) "
            "accelerate runs one process whatever N is. For N processes on CPU, run `torchrun --nproc_per_node N "
            "run_pretrain.py ...` or `accelerate launch --multi_gpu --num_processes N run_pretrain.py ...` (both "
            "train with DDP on CPU), or drop --num_processes for a single process."
        )


def check_reporting(training_args) -> None:
    """`--report_to X` fails only when the Trainer is built, after the data preparation: check it first."""
    available = set(get_available_reporting_integrations())
    for name in training_args.report_to or []:
        if name not in available and name not in ("none", "all"):
            install = f"`pip install {name}`"
            if name == "tensorboard":
                install = '`pip install -e ".[tensorboard]"` (or `pip install tensorboard`)'
            raise ConfigError(
                f"--report_to {name}: {name} is not installed. Install it with {install}, or pass --report_to none."
            )


def check_output_dir(model_args: ModelArguments, training_args, run_args: RunArguments) -> ResumeCheckpoint | None:
    """
    The checkpoint to resume from (None for a new run), resolved and checked once (`InfoXLMTrainer.train` takes it
    as it is), after checking that the output folder may be used (trainer/output_folder.py: not a file, not a folder
    the run reads, another run only when resumed or replaced).
    """
    output_dir = training_args.output_dir
    resume = resolve_resume_checkpoint(
        training_args.resume_from_checkpoint, output_dir, required=xlco_state_files(training_args.objective_list)
    )
    if resume and run_args.overwrite_output_dir:
        raise ConfigError(
            "--overwrite_output_dir deletes the checkpoints that --resume_from_checkpoint would continue from: pass "
            "only one of them."
        )
    reads = {
        "--model_name_or_path": model_args.model_name_or_path,
        "--config_name": model_args.config_name,
        "--tokenizer_name": model_args.tokenizer_name,
    }
    check_output_folder(output_dir, reads=reads, overwrite=run_args.overwrite_output_dir, resuming=bool(resume))
    return resume


def check_max_steps(training_args) -> None:
    """The pretraining data is an endless stream: without --max_steps the Trainer fails after the data preparation."""
    if training_args.max_steps is None or training_args.max_steps <= 0:
        raise ConfigError(
            "--max_steps is missing: the pretraining data is an endless stream (every language is resampled "
            "without end), so the run length is a number of updates. Pass --max_steps N (the paper: 150000)."
        )


def check_model_fits(config: InfoXLMConfig, tokenizer, data_args) -> None:
    """What would otherwise fail at the first training step with an index error."""
    check_sequence_length(config, data_args.max_seq_length, "--max_seq_length")
    if len(tokenizer) > config.vocab_size:
        raise ConfigError(
            f"the tokenizer has {len(tokenizer):,} tokens but the model's vocab_size is {config.vocab_size:,}: "
            "ids beyond it have no embedding. Use the model's own tokenizer, or a config whose vocab_size is at "
            f"least {len(tokenizer):,}."
        )


def warn_about_queue(config: InfoXLMConfig, training_args, data_summary: dict) -> None:
    """A queue larger than the XLCO data: a long fill, and the positives' own older keys among the negatives."""
    languages = data_summary.get("xlco", {}).get("languages", {})
    pairs = [entry.get("pairs") for entry in languages.values()]
    if "xlco" not in training_args.objective_list or not pairs or None in pairs:  # streamed: unknown until read
        return
    pairs = sum(pairs)
    if config.xlco_queue_size <= pairs:
        return
    per_batch = training_args.per_device_train_batch_size * training_args.world_size
    fill = (
        f" Filling it takes {XLCO.prefill_batches(config.xlco_queue_size, per_batch):,} key batches "
        f"of {per_batch} before the "
        "first update."
        if training_args.xlco_queue_fill == "prefill"
        else ""
    )
    logger.warning(
        f"The XLCO queue ({config.xlco_queue_size:,} keys) is larger than the XLCO training data ({pairs:,} "
        f"translation pairs): it will hold every pair's own older key(s) as negatives of its positive (a known MoCo "
        f"pitfall).{fill} Pass --xlco_queue_size {pairs:,} or less, or add parallel data."
    )


REPOSITORY = Path(__file__).resolve().parent
SHARED_XNLI = REPOSITORY.parent / "shared" / "data" / "xnli"


def xnli_command(model_dir: str, positions: int = 128, fresh_clone: bool = False) -> str:
    """A run_xnli.py command that works as printed: on the English/Swahili XNLI files beside this checkout if they
    are there and `fresh_clone` is off (training on English dev, the only English NLI data there, so without
    selection), else on the Hub's XNLI; pairs cut to what the model's `positions` hold (XNLI's usual 128 at most)."""
    script = os.path.relpath(REPOSITORY / "run_xnli.py")
    common = f"--max_seq_length {min(128, positions)} --do_train --do_predict --output_dir {model_dir}-xnli"
    if (SHARED_XNLI / "en.dev.tsv").is_file() and not fresh_clone:
        xnli = os.path.relpath(SHARED_XNLI)
        data = f"--train_file {xnli}/en.dev.tsv --test_files {xnli} --eval_strategy no"
    else:
        data = "--dataset_name xnli"
    return f"python {script} --model_name_or_path {model_dir} {data} {common}"


def run_report(log_history: list[dict], output_dir: str, demo: bool, positions: int = 128) -> str:
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
    ]
    if demo:  # commands on what a fresh clone has: the demo's own corpus, model and the Hub
        lines += [
            f"  python run_retrieval.py --model_name_or_path {output_dir} --tatoeba_dir {DEMO_DIR}/corpus/heldout "
            f"--heldout_every 1 --output_dir {output_dir}-retrieval",
            f"  python -m modeling_infoxlm.export {output_dir} {output_dir}-sentence-encoder --sentence_transformer",
        ]
    lines.append(f"  {xnli_command(output_dir, positions, fresh_clone=demo)}")
    if demo:
        lines += [
            "  Real corpora: python run_pretrain.py --model_name_or_path FacebookAI/xlm-roberta-base "
            "--mono_dataset_name HuggingFaceFW/fineweb-2 --parallel_dataset_name Helsinki-NLP/opus-100 --streaming "
            "... (README.md)",
        ]
    return "\n".join(lines)


def setup_logging(training_args) -> None:
    # torchdata's StatefulDataLoader calls `torch.set_vital`, deprecated in torch 2.13: nothing a user can act on.
    warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO if training_args.should_log else logging.WARNING,
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    transformers.utils.logging.set_verbosity_warning()


def load_tokenizer(model_args: ModelArguments):
    """The tokenizer of --tokenizer_name or --model_name_or_path, checked for what the objectives need."""
    tokenizer_source = model_args.tokenizer_name or model_args.model_name_or_path
    if tokenizer_source is None:
        raise ConfigError("Pass --tokenizer_name (training from scratch) or --model_name_or_path.")
    option = "--tokenizer_name" if model_args.tokenizer_name else "--model_name_or_path"
    check_tokenizer_folder(tokenizer_source, option)
    tokenizer = load_pretrained(lambda: AutoTokenizer.from_pretrained(tokenizer_source), tokenizer_source, option)
    if tokenizer.mask_token is None:
        raise ConfigError(
            f"{option} {tokenizer_source}: the tokenizer has no mask token, which MLM, TLM and XLCO's masking need. "
            "Use a tokenizer with one (XLM-R's <mask>), or set `mask_token` in its tokenizer_config.json."
        )
    return tokenizer


def checked_config(model_args: ModelArguments, vocab_size: int) -> InfoXLMConfig:
    """`load_config`, with its source checked first and every failure turned into one ConfigError."""
    config_source = model_args.model_name_or_path or model_args.config_name
    option = "--model_name_or_path" if model_args.model_name_or_path else "--config_name"
    if config_source is not None:
        check_source(config_source, option)
    try:
        config = load_config(model_args, vocab_size)
        config.validate_xlco()  # again: --config_overrides are applied after the config's own checks
    except ConfigError:
        raise
    except (OSError, ValueError) as error:
        where = f"{option} {config_source}" if config_source else "model config"
        raise ConfigError(f"{where}: {str(error).strip()}") from error
    return config


def load_model(model_args: ModelArguments, config: InfoXLMConfig) -> InfoXLMForPreTraining:
    """The checkpoint of --model_name_or_path with `config`, or a new model of `config` (from scratch)."""
    if model_args.model_name_or_path:
        return load_pretrained(
            lambda: InfoXLMForPreTraining.from_pretrained(
                model_args.model_name_or_path, config=config, attn_implementation=model_args.attn_implementation
            ),
            model_args.model_name_or_path,
            "--model_name_or_path",
        )
    config._attn_implementation = model_args.attn_implementation
    return InfoXLMForPreTraining(config)


def load_retrieval_pairs(training_args, data_args) -> dict | None:
    """The held-out translation pairs of --retrieval_eval_data, read (and checked) before the data preparation."""
    if not training_args.retrieval_eval_data:
        return None
    # With --parallel_heldout_every N the retrieval files are split the same way (Tatoeba: N=5 → eval rows).
    heldout = data_args.parallel_heldout_every
    return load_parallel_pairs(
        training_args.retrieval_eval_data,
        split="eval" if heldout >= 2 else "all",
        heldout_every=max(heldout, 2),
        max_pairs=training_args.retrieval_eval_max_pairs,
    )


def main(argv: list[str] | None = None) -> InfoXLMTrainer | None:
    argv = sys.argv[1:] if argv is None else argv
    setup_processes()
    demo = not argv
    if demo:
        print(
            f"No data arguments: training a tiny model on the built-in CLDR demo corpus in {DEMO_DIR}/ (see README)."
        )
        argv = demo_arguments()
    model_args, data_args, training_args, run_args = parse_args(argv)
    setup_logging(training_args)
    set_seed(training_args.seed)

    # Everything below up to the data preparation only reads and checks: a bad input changes nothing on disk.
    check_reporting(training_args)
    check_training_arguments(training_args)
    if run_args.prepare_data_only:
        resume = None  # writes no run: the output folder is not touched
    else:
        check_max_steps(training_args)
        resume = check_output_dir(model_args, training_args, run_args)
    tokenizer = load_tokenizer(model_args)
    config = checked_config(model_args, len(tokenizer))
    check_model_fits(config, tokenizer, data_args)
    if run_args.prepare_data_only:
        if training_args.world_size > 1:
            raise ConfigError(
                "--prepare_data_only runs in one process, where nothing waits on it: start it with "
                "`python run_pretrain.py ...`, not with torchrun or accelerate launch."
            )
        _, data_summary = build_pretraining_dataset(
            data_args, tokenizer, training_args.objective_list, seed=training_args.seed
        )
        print(preparation_report(data_summary, data_args.data_cache_dir))
        return None
    model = load_model(model_args, config)
    check_training_arguments(training_args, model)  # again, with the model: some optimizers need it
    logger.info(
        f"Model: {model.num_parameters() / 1e6:.1f}M parameters, {config.num_hidden_layers} layers, "
        f"XLCO at layer {config.xlco_layer}, objectives {','.join(training_args.objective_list)}"
    )
    retrieval_pairs = load_retrieval_pairs(training_args, data_args)

    with training_args.main_process_first(desc="preparing the pretraining data"):
        train_dataset, data_summary = build_pretraining_dataset(
            data_args, tokenizer, training_args.objective_list, seed=training_args.seed
        )
    warn_about_queue(config, training_args, data_summary)
    collator = InfoXLMDataCollator(
        tokenizer,
        mlm_probability=data_args.mlm_probability,
        pad_to_multiple_of=data_args.pad_to_multiple_of,
        xlco_mask_probability=data_args.xlco_mask_probability,
    )
    trainer = InfoXLMTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        data_collator=collator,
        processing_class=tokenizer,
        base_model=model_args.model_name_or_path,
        data_summary=f"```\n{format_summary(data_summary)}\n```",
    )
    if retrieval_pairs is not None:
        steps = training_args.retrieval_eval_steps or int(training_args.eval_steps or 500)
        trainer.add_callback(RetrievalEvaluationCallback(trainer, tokenizer, retrieval_pairs, eval_steps=steps))

    if run_args.overwrite_output_dir and trainer.args.should_save:
        removed = remove_previous_run(training_args.output_dir)
        if removed:
            logger.warning(
                f"--overwrite_output_dir: deleted the previous run's {', '.join(p.name for p in removed)} in "
                f"{training_args.output_dir}."
            )
    trainer.accelerator.wait_for_everyone()  # no process writes before the old run is gone
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()  # the query model, config, code and tokenizer; never the key encoder or the queue
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    trainer.create_model_card()
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message="InfoXLM pretraining")
    print(run_report(trainer.state.log_history, training_args.output_dir, demo, usable_positions(config)))
    return trainer


if __name__ == "__main__":
    run_cli(main, (ConfigError, DataError, CheckpointError, OutputFolderError))
