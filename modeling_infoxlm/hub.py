"""Publishing an InfoXLM model: one folder (weights, config with `auto_map`, code, tokenizer, model card), one commit."""

import os
import tempfile
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def model_card(
    model: PreTrainedModel,
    *,
    objectives: list[str] | None = None,
    base_model: str | None = None,
    data_summary: str | None = None,
    metrics: dict[str, float] | None = None,
    languages: list[str] | None = None,
    momentum_schedule: str | None = None,
) -> str:
    """A Markdown model card with Hub metadata, how to load the model, what it was trained on, and its metrics."""
    config = model.config
    header = ["---", "library_name: transformers", "tags:", "- infoxlm", "- xlm-roberta", "- cross-lingual"]
    if languages:
        header += ["language:"] + [f"- {code}" for code in languages]
    if base_model:
        header.append(f"base_model: {base_model}")
    header.append("---")
    size = f"{config.num_hidden_layers} layers, hidden {config.hidden_size}, vocabulary {config.vocab_size}"
    body = [
        "",
        f"# {type(model).__name__}",
        "",
        "An [InfoXLM](https://aclanthology.org/2021.naacl-main.280/) model (Chi et al., NAACL 2021) "
        f"trained with the `infoxlm` package: {size}.",
        "",
        "```python",
        "from transformers import AutoModel, AutoTokenizer",
        "",
        'model = AutoModel.from_pretrained("<this repo>", trust_remote_code=True)',
        # transformers 5 reads the config (custom code: auto_map) before the tokenizer files, so without the flag
        # AutoTokenizer stops at an interactive "run custom code?" prompt.
        'tokenizer = AutoTokenizer.from_pretrained("<this repo>", trust_remote_code=True)',
        "```",
        "",
        "## Training",
        "",
        f"- Objectives: {', '.join(objectives) if objectives else 'not recorded'}",
        f"- Initialised from: {base_model or 'random initialisation'}",
        f"- XLCO: sentence vector = `<s>` state of layer {config.xlco_layer}"
        f"{' through a bias-free projection' if config.xlco_use_projection else ''}, "
        f"temperature {config.xlco_temperature}, queue {config.xlco_queue_size}, "
        f"momentum {momentum_schedule or config.xlco_momentum}",
    ]
    if data_summary:
        body += ["", "## Data", "", data_summary]
    if metrics:
        body += ["", "## Results", "", "| metric | value |", "|---|---|"]
        body += [f"| {name} | {value:.4g} |" for name, value in metrics.items()]
    return "\n".join(header + body) + "\n"


def save_for_hub(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None, save_directory: str | os.PathLike, **card
) -> None:
    """Writes everything `push_to_hub` uploads: weights, config, code, tokenizer files and README.md."""
    model.save_pretrained(save_directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(save_directory)
    Path(save_directory, "README.md").write_text(model_card(model, **card), encoding="utf-8")


def push_to_hub(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload InfoXLM model",
    **card,
):
    """Creates `repo_id` if needed and uploads model, code, tokenizer and model card in a single commit."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory() as folder:
        save_for_hub(model, tokenizer, folder, **card)
        operations = [
            CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
            for path in sorted(Path(folder).rglob("*"))
            if path.is_file()
        ]
        return api.create_commit(repo_id=repo_id, operations=operations, commit_message=commit_message)
