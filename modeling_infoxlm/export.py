"""Convert an InfoXLM checkpoint into a plain `xlm-roberta` one (as microsoft/infoxlm-base is distributed).

python -m modeling_infoxlm.export path/to/infoxlm-checkpoint path/to/xlm-roberta-out
"""

import argparse
import sys
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

import modeling_infoxlm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a directory written by save_pretrained / run_pretrain.py")
    parser.add_argument("output_dir", help="where to write the xlm-roberta checkpoint (must not exist or be empty)")
    args = parser.parse_args(argv)

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
    if config.model_type != "infoxlm":
        parser.error(f"{args.checkpoint} is of model_type {config.model_type!r}, not 'infoxlm'; nothing to export.")
    architecture = (config.architectures or ["InfoXLMForPreTraining"])[0]
    model_class = getattr(modeling_infoxlm, architecture)
    model = model_class.from_pretrained(args.checkpoint)
    model.save_pretrained(output, as_xlm_roberta=True)
    if any(Path(args.checkpoint).glob("tokenizer*")):
        AutoTokenizer.from_pretrained(args.checkpoint).save_pretrained(output)
    print(f"Wrote an xlm-roberta checkpoint ({architecture} → XLM-R) to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
