"""Export a checkpoint for use without this package.

A plain `xlm-roberta` checkpoint (as microsoft/infoxlm-base is distributed), from an InfoXLM checkpoint:

    python -m modeling_infoxlm.export path/to/infoxlm-checkpoint path/to/xlm-roberta-out

A sentence-transformers folder (`SentenceTransformer(out)` loads it without custom code), from an InfoXLM checkpoint
(default: the XLCO vector, `<s>` of layer xlco_layer through the trained projection) or from an `xlm-roberta` one
(default: mean pooling of layer 2/3 of the depth, XTREME's setting):

    python -m modeling_infoxlm.export path/to/checkpoint path/to/sentence-encoder --sentence_transformer \
        [--pooling cls|mean] [--layer N]
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from transformers import AutoConfig, AutoModel, AutoTokenizer

import modeling_infoxlm

from .sentence_transformer import POOLING_MODES, PROJECTION_WEIGHT, export_sentence_transformer


def export_sentence_encoder(
    checkpoint: str, output_dir: str | os.PathLike, pooling: str | None = None, layer: int | None = None
) -> str:
    """
    Writes a sentence-transformers folder from an `infoxlm` or `xlm-roberta` checkpoint (with its tokenizer) and
    returns one line saying what the vector is. An InfoXLM checkpoint without trained projection weights (one
    initialised from XLM-R and never trained, or `xlco_use_projection=false`) gets no projection: a random one is
    never exported.
    """
    config = AutoConfig.from_pretrained(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if config.model_type == "infoxlm":
        model, info = modeling_infoxlm.InfoXLMForPreTraining.from_pretrained(checkpoint, output_loading_info=True)
        projection = None if PROJECTION_WEIGHT in info["missing_keys"] else model.xlco_proj
        encoder, layer = model.roberta, layer or config.xlco_layer
    else:
        # The pooler is never run by sentence-transformers; leaving it out makes the export deterministic.
        encoder, projection = AutoModel.from_pretrained(checkpoint, add_pooling_layer=False), None
        layer = layer or modeling_infoxlm.InfoXLMConfig(num_hidden_layers=config.num_hidden_layers).xlco_layer
    pooling = pooling or ("cls" if projection is not None else "mean")
    projection = projection if pooling == "cls" else None
    export_sentence_transformer(
        encoder.eval(),
        config,
        tokenizer,
        output_dir,
        layer=layer,
        pooling=pooling,
        projection=None if projection is None else projection.weight,
        source=checkpoint,
    )
    through = " through the trained XLCO projection" if projection is not None else ""
    what = "`<s>` state" if pooling == "cls" else "mean of the token states"
    return f"{what} of layer {layer} of {config.num_hidden_layers}{through}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a directory written by save_pretrained / run_pretrain.py")
    parser.add_argument("output_dir", help="where to write the export (must not exist or be empty)")
    parser.add_argument(
        "--sentence_transformer",
        action="store_true",
        help="write a sentence-transformers folder (a plain xlm-roberta encoder cut at --layer, pooling, projection)",
    )
    parser.add_argument(
        "--pooling",
        choices=POOLING_MODES,
        help="with --sentence_transformer: cls (the XLCO vector; default when the checkpoint has a trained "
        "projection) or mean (XTREME's Tatoeba setting; default otherwise)",
    )
    parser.add_argument(
        "--layer", type=int, help="with --sentence_transformer: the layer pooled (default: xlco_layer, 2/3 depth)"
    )
    args = parser.parse_args(argv)
    if not args.sentence_transformer and (args.pooling or args.layer):
        parser.error("--pooling and --layer apply to --sentence_transformer exports only; add it or leave them out.")

    output = Path(args.output_dir)
    # The output folder rule of every script (trainer/output_folder.py); here the folder must be new or empty.
    from infoxlm_cli import require_own_trainer_package

    require_own_trainer_package()
    from trainer.output_folder import OutputFolderError, RunOutputs, check_output_folder

    try:
        check_output_folder(
            output,
            reads={"checkpoint": args.checkpoint},
            overwrite=False,
            outputs=RunOutputs(files=(), checkpoints=False, others_count=True),
            overwrite_flag=None,
            option="output_dir",
        )
    except OutputFolderError as error:
        parser.error(f"{error} Nothing is overwritten.")
    if not Path(args.checkpoint).is_dir():
        parser.error(f"checkpoint {args.checkpoint}: no such folder. Pass a folder written by run_pretrain.py.")
    try:
        config = AutoConfig.from_pretrained(args.checkpoint)
    except (OSError, ValueError) as error:
        parser.error(f"checkpoint {args.checkpoint}: {str(error).strip()}")
    if args.sentence_transformer:
        if config.model_type not in ("infoxlm", "xlm-roberta"):
            parser.error(f"{args.checkpoint} is of model_type {config.model_type!r}; expected infoxlm or xlm-roberta.")
        if not any(Path(args.checkpoint).glob("tokenizer*")):
            parser.error(f"{args.checkpoint}: no tokenizer files there; save the model's tokenizer beside it first.")
        if args.layer is not None and not 1 <= args.layer <= config.num_hidden_layers:
            parser.error(f"--layer {args.layer}: out of range; pass 1..{config.num_hidden_layers}.")
    elif config.model_type != "infoxlm":
        parser.error(f"{args.checkpoint} is of model_type {config.model_type!r}, not 'infoxlm'; nothing to export.")

    # Written beside the target and renamed at the end: an interrupted export leaves no half-written folder.
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        if args.sentence_transformer:
            vector = export_sentence_encoder(args.checkpoint, staging, args.pooling, args.layer)
            summary = f"a sentence-transformers folder (vector: {vector})"
        else:
            architecture = (config.architectures or ["InfoXLMForPreTraining"])[0]
            model = getattr(modeling_infoxlm, architecture).from_pretrained(args.checkpoint)
            model.save_pretrained(staging, as_xlm_roberta=True)
            if any(Path(args.checkpoint).glob("tokenizer*")):
                AutoTokenizer.from_pretrained(args.checkpoint).save_pretrained(staging)
            summary = f"an xlm-roberta checkpoint ({architecture} → XLM-R)"
        if output.exists():
            output.rmdir()
        staging.rename(output)
    except (ImportError, OSError, ValueError) as error:  # one line naming the cause; nothing left behind
        parser.error(f"{args.checkpoint}: {str(error).strip()}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Wrote {summary} to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
