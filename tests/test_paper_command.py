"""The README's paper command ("Continue pretraining XLM-R") runs as written, with the Hub replaced by local folders.

Its two 🤗 datasets are recreated as local Parquet folders laid out like their Hub repositories (a README whose YAML
`configs` maps each config to its files, one folder per config), and a tiny XLM-R-shaped checkpoint stands in for
FacebookAI/xlm-roberta-base, under the same names relative to the working directory: `load_dataset` and
`from_pretrained` read a local folder of that name before asking the Hub. Only sizes (batch, length, queue,
updates) are scaled down and the flags that need a GPU or the Hub (--bf16, --push_to_hub) are left out.
"""

import json
import re
import shlex
from pathlib import Path

import datasets
import pytest
from helpers import WORDS, tiny_config

import run_pretrain

README = Path(__file__).resolve().parents[1] / "README.md"
SCALED_DOWN = {
    "--max_steps": "3",
    "--per_device_train_batch_size": "2",
    "--gradient_accumulation_steps": "1",
    "--max_seq_length": "32",
    "--xlco_queue_size": "16",
}
LEFT_OUT = ("--bf16", "--push_to_hub")


def readme_paper_command() -> list[str]:
    """The arguments of run_pretrain.py in the README's "Continue pretraining XLM-R" command."""
    section = README.read_text(encoding="utf-8").split("## Continue pretraining XLM-R", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    words = shlex.split(block.replace("\\\n", " "))
    assert words[:2] == ["accelerate", "launch"], words[:2]
    return words[words.index("run_pretrain.py") + 1 :]


def options(argv: list[str]) -> dict[str, list[str]]:
    parsed, flag = {}, None
    for word in argv:
        if word.startswith("--"):
            flag = word
            parsed[flag] = []
        else:
            parsed[flag].append(word)
    return parsed


def sentences(language: str, count: int, seed: int) -> list[str]:
    """`count` short sentences in the tiny tokenizer's words, different per seed."""
    n = len(WORDS)
    return [" ".join(WORDS[(seed * 7 + 3 * i + j) % n] for j in range(3 + i % 5)) for i in range(count)]


def write_hub_layout(root: Path, files: dict[str, dict[str, str]], table) -> None:
    """A folder like a Parquet dataset on the Hub: README.md whose YAML `configs` maps each config's splits to its
    files. `files`: {config: {split: path}}; `table(config, split)`: that file's (rows, features)."""
    card = ["---", "configs:"]
    for config, splits in files.items():
        card += [f"- config_name: {config}", "  data_files:"]
        for split, path in splits.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            rows, features = table(config, split)
            datasets.Dataset.from_list(rows, features=features).to_parquet(str(root / path))
            card += [f"  - split: {split}", f"    path: {path}"]
    (root / "README.md").write_text("\n".join(card + ["---", ""]), encoding="utf-8")


def fineweb_2_table(config: str, split: str, index: int):
    features = datasets.Features({name: datasets.Value("string") for name in ("text", "id", "url", "language")})
    rows = [
        {"text": text, "id": f"{config}-{split}-{i}", "url": "https://example.org", "language": config}
        for i, text in enumerate(sentences(config, 40, index))
    ]
    return rows, features


def opus_100_table(pair: str, split: str):
    l1, l2 = pair.split("-")
    features = datasets.Features({"translation": datasets.Translation(languages=[l1, l2])})
    rows = [{"translation": {l1: a, l2: b}} for a, b in zip(sentences(l1, 30, 1), sentences(l2, 30, 2))]
    return rows, features


def test_readme_paper_command_starts_training_on_local_parquet_datasets(
    tmp_path, monkeypatch, tiny_tokenizer, single_torch_thread
):
    argv = readme_paper_command()
    given = options(argv)
    assert set(SCALED_DOWN) | set(LEFT_OUT) <= set(given), "the README command changed: update this test"
    mono, pairs = given["--mono_dataset_config_names"], given["--parallel_dataset_config_names"]
    assert len(mono) > 1 and len(pairs) > 1 and "--dataset_config_name" not in given

    # HuggingFaceFW/fineweb-2: data/<config>/<split>/*.parquet, a `text` column among other string columns.
    write_hub_layout(
        tmp_path / given["--mono_dataset_name"][0],
        {
            config: {split: f"data/{config}/{split}/000_00000.parquet" for split in ("train", "test")}
            for config in mono
        },
        lambda config, split: fineweb_2_table(config, split, mono.index(config)),
    )
    # Helsinki-NLP/opus-100: <pair>/<split>-00000-of-00001.parquet, a `translation` column {l1: ..., l2: ...}.
    write_hub_layout(
        tmp_path / given["--parallel_dataset_name"][0],
        {pair: {split: f"{pair}/{split}-00000-of-00001.parquet" for split in ("train", "test")} for pair in pairs},
        opus_100_table,
    )

    # FacebookAI/xlm-roberta-base: a tiny XLM-R checkpoint deep enough for the command's --xlco_layer.
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    model_dir = tmp_path / given["--model_name_or_path"][0]
    config = tiny_config(
        XLMRobertaConfig,
        len(tiny_tokenizer),
        hidden_size=16,
        num_hidden_layers=int(given["--xlco_layer"][0]) + 1,
        intermediate_size=32,
        max_position_embeddings=int(SCALED_DOWN["--max_seq_length"]) + 2,
    )
    XLMRobertaForMaskedLM(config).save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)

    run = []
    for flag, values in given.items():
        if flag not in LEFT_OUT:
            run += [flag, *([SCALED_DOWN[flag]] if flag in SCALED_DOWN else values)]
    run += ["--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "true"]
    monkeypatch.chdir(tmp_path)  # the Hub names now resolve to the local folders
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    trainer = run_pretrain.main(run)

    assert trainer.state.global_step == 3
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert {"mlm_loss", "tlm_loss", "xlco_loss"} <= logged
    summary = trainer.data_summary
    for name in mono + pairs:  # every configuration is a language (pair) of its own
        assert re.search(rf"\b{re.escape(name)}\b", summary), (name, summary)
    output_dir = tmp_path / given["--output_dir"][0]
    assert json.loads((output_dir / "config.json").read_text())["model_type"] == "infoxlm"


def test_one_config_flag_for_both_datasets_is_refused_with_the_new_flags_named():
    from trainer.data.arguments import DataArguments

    with pytest.raises(ValueError, match="--mono_dataset_config_names and --parallel_dataset_config_names"):
        DataArguments(mono_dataset_name="m", parallel_dataset_name="p", dataset_config_name="fr")
    with pytest.raises(ValueError, match="--parallel_dataset_config_names is given without --parallel_dataset_name"):
        DataArguments(mono_dataset_name="m", parallel_dataset_config_names=["de-en"])
    # One dataset: the transformers-style flag still names its configurations.
    assert DataArguments(mono_dataset_name="m", dataset_config_name="en, fr").mono_dataset_configs == ["en", "fr"]
    args = DataArguments(
        mono_dataset_name="m",
        parallel_dataset_name="p",
        mono_dataset_config_names=["fra_Latn,deu_Latn"],
        parallel_dataset_config_names=["de-en", "en-fr"],
    )
    assert (args.mono_dataset_configs, args.parallel_dataset_configs) == (["fra_Latn", "deu_Latn"], ["de-en", "en-fr"])
    assert DataArguments(parallel_dataset_name="p").parallel_dataset_configs == [None]


def test_a_dataset_built_by_a_loading_script_is_refused_with_what_to_use_instead(tmp_path, tiny_tokenizer):
    from trainer.data import DataError, build_pretraining_dataset
    from trainer.data.arguments import DataArguments

    (tmp_path / "cc100").mkdir()
    (tmp_path / "cc100" / "cc100.py").write_text("import datasets\n")  # what `cc100` was: a loading script
    args = DataArguments(mono_dataset_name=str(tmp_path / "cc100"), mono_dataset_config_names=["sw"])
    with pytest.raises(DataError, match="loading script.*HuggingFaceFW/fineweb-2"):
        build_pretraining_dataset(args, tiny_tokenizer, ["mlm"], seed=0)
