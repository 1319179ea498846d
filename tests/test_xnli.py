"""
run_xnli.py: reading local data and its errors, metrics, the zero-shot end-to-end run on generated data (InfoXLM and
XLM-R checkpoints) and on ../shared/data/xnli, LoRA, the Hub dataset path and Hub upload (mocked), config files, and
the exit code on bad input.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from helpers import (
    XNLI_LABELS,
    XNLI_WORDS,
    build_tiny_tokenizer,
    save_tiny_checkpoint,
    tiny_config,
    tiny_xnli_rows,
)
from peft import PeftModel
from safetensors.torch import load_file
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)

import run_xnli
from run_xnli import XNLIInputError, classification_metrics, load_local_split, main, read_nli_file

REPO = Path(__file__).resolve().parents[1]
MASK_ID = 4  # `<mask>` of the tiny tokenizer: never in the inputs, so its embedding row gets no gradient
QUIET = ["--disable_tqdm", "true", "--log_level", "warning", "--report_to", "none", "--seed", "0"]
NO_SELECTION = ["--eval_strategy", "no", "--save_strategy", "no"]


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def xnli_args(checkpoint: Path, data: Path, output_dir: Path, *extra: str) -> list[str]:
    """Train on the generated English data, select on its dev set, test on every `<lang>.test.tsv` of `data`."""
    return [
        "--model_name_or_path", str(checkpoint),
        "--train_file", str(data / "train.jsonl"),
        "--validation_files", f"en={data / 'en.dev.tsv'}",
        "--test_files", str(data),
        "--do_train", "--do_predict",
        "--output_dir", str(output_dir),
        "--num_train_epochs", "4",
        "--learning_rate", "3e-3",
        "--per_device_train_batch_size", "8",
        *QUIET,
        *extra,
    ]  # fmt: skip


def read_tsv(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


# ---- metrics ------------------------------------------------------------------------------------------------------


def test_classification_metrics_match_hand_computed_values():
    metrics = classification_metrics(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]), XNLI_LABELS)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # Per-class F1: entailment 1/2, neutral 2/3 (P=1, R=1/2), contradiction 4/5 (P=2/3, R=1).
    assert metrics["macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 4 / 5) / 3)
    assert metrics["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 2]]
    assert metrics["per_class"]["neutral"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    # Classes absent from both gold labels and predictions do not count (as in scikit-learn).
    assert classification_metrics(np.array([0, 0]), np.array([0, 0]), XNLI_LABELS)["macro_f1"] == 1.0


# ---- local files --------------------------------------------------------------------------------------------------


def test_read_nli_file_formats_column_names_and_labels(tmp_path):
    # TSV is read without quoting (XNLI has unbalanced quotes), with XNLI 1.0 column names and extra columns.
    tsv = tmp_path / "a.tsv"
    tsv.write_text(
        "gold_label\tsentence1\tsentence2\tpairID\n"
        'Entailment\tHe said "hi.\tHe spoke.\t1\n'
        "-\tNo consensus.\tDropped.\t2\n"
        "contradiction\tA cat.\tNo cat.\t3\n",
        encoding="utf-8",
    )
    assert read_nli_file(str(tsv), XNLI_LABELS) == {
        "premise": ['He said "hi.', "A cat."],
        "hypothesis": ["He spoke.", "No cat."],
        "label": [0, 2],
    }
    # CSV quotes commas; XNLI-MT's `hypo` column and its spelling "contradictory"; ids as strings.
    csv_file = tmp_path / "b.csv"
    csv_file.write_text('premise,hypo,label\n"A, B",C,contradictory\nD,E,1\n', encoding="utf-8")
    assert read_nli_file(str(csv_file), XNLI_LABELS)["label"] == [2, 1]
    # JSON Lines with integer ids and a language column.
    jsonl = tmp_path / "c.jsonl"
    records = [{"premise": "p", "hypothesis": "h", "label": 1, "language": lang} for lang in ("en", "fr", "en")]
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    assert read_nli_file(str(jsonl), XNLI_LABELS) == {
        "premise": ["p"] * 3,
        "hypothesis": ["h"] * 3,
        "label": [1] * 3,
        "language": ["en", "fr", "en"],
    }
    # A multilingual file with a `language` column (like XNLI 1.0's xnli.test.tsv) is split by language.
    splits = load_local_split([str(jsonl)], "test", "--test_files", XNLI_LABELS, languages=None)
    assert {lang: len(ds) for lang, ds in splits.items()} == {"en": 2, "fr": 1}
    assert splits["en"].features["label"].names == XNLI_LABELS


def test_local_split_directory_and_lang_items(tiny_xnli_dir):
    by_directory = load_local_split([str(tiny_xnli_dir)], "validation", "--validation_files", XNLI_LABELS, None)
    assert sorted(by_directory) == ["en", "fr"]
    items = [f"fr={tiny_xnli_dir / 'fr.test.tsv'}", f"en={tiny_xnli_dir / 'en.test.tsv'}"]
    by_items = load_local_split(items, "test", "--test_files", XNLI_LABELS, languages=["fr"])
    assert list(by_items) == ["fr"] and len(by_items["fr"]) == 36


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


BAD_INPUTS = {
    # name: (file name, content, expected message part, expected line, expected column)
    "unknown label": ("en.test.tsv", "premise\thypothesis\tlabel\na\tb\tneutral\nc\td\tentails\n", "unknown label 'entails'", 3, "label"),
    "label id out of range": ("en.test.jsonl", '{"premise": "a", "hypothesis": "b", "label": 3}\n', "unknown label 3", 1, "label"),
    "missing column": ("en.test.tsv", "premise\tlabel\na\tneutral\n", "no 'hypothesis' column", 1, "hypothesis"),
    "empty file": ("en.test.tsv", "", "the file is empty", None, None),
    "header only": ("en.test.csv", "premise,hypothesis,label\n", "the file has no examples", None, None),
    "stray tab": ("en.test.tsv", "premise\thypothesis\tlabel\na\tb\tneutral\na\tb\tc\tneutral\n", "expected 3 fields", 3, None),
    "bad json": ("en.test.jsonl", '{"premise": "a", "hypothesis": "b", "label": 0}\n{"premise": \n', "invalid JSON", 2, None),
    "missing value": ("en.test.jsonl", '{"premise": null, "hypothesis": "b", "label": 0}\n', "missing or non-text", 1, "premise"),
    "missing label": ("en.test.jsonl", '{"premise": "a", "hypothesis": "b", "label": 0}\n{"premise": "a", "hypothesis": "b"}\n', "missing label", 2, "label"),
    "not an object": ("en.test.jsonl", '["a", "b", 0]\n', "not a JSON object", 1, None),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_test_file_raises_with_file_line_column_and_fix(case, tmp_path, tiny_infoxlm_checkpoint):
    filename, content, message, line, column = BAD_INPUTS[case]
    path = write(tmp_path / filename, content)
    output_dir = tmp_path / "out"
    args = ["--model_name_or_path", str(tiny_infoxlm_checkpoint), "--test_files", f"en={path}", "--do_predict"]
    with pytest.raises(XNLIInputError, match=message) as raised:
        main([*args, "--output_dir", str(output_dir), *QUIET])
    error = raised.value
    assert (error.source, error.line, error.column) == (path, line, column)
    assert error.fix and "Fix:" in str(error) and path in str(error)
    assert not output_dir.exists(), "nothing may be written on bad input"


def test_missing_languages_and_selection_data_are_named(tmp_path, tiny_xnli_dir, tiny_infoxlm_checkpoint):
    output_dir = tmp_path / "out"
    base = ["--model_name_or_path", str(tiny_infoxlm_checkpoint), "--output_dir", str(output_dir), *QUIET]
    # A requested language without a test file.
    with pytest.raises(XNLIInputError, match="no test data for language de") as raised:
        main([*base, "--test_files", str(tiny_xnli_dir), "--languages", "en,de", "--do_predict"])
    assert "the data has: en" in str(raised.value) and "de=PATH" in raised.value.fix
    # Training with the default (zero-shot) selection needs the English dev set, never a target-language one.
    train = ["--train_file", str(tiny_xnli_dir / "train.jsonl"), "--do_train"]
    with pytest.raises(XNLIInputError, match="no dev data for language en") as raised:
        main([*base, *train, "--dev_files", f"fr={tiny_xnli_dir / 'fr.dev.tsv'}"])
    assert "--eval_strategy no" in raised.value.fix
    # An unknown label in the training file names that file.
    bad_train = write(tmp_path / "train.jsonl", '{"premise": "a", "hypothesis": "b", "label": "yes"}\n')
    with pytest.raises(XNLIInputError, match="unknown label 'yes'") as raised:
        main([*base, "--train_file", bad_train, "--do_train", *NO_SELECTION])
    assert raised.value.source == bad_train
    # XNLI has 15 languages; anything else is named before any download.
    with pytest.raises(XNLIInputError, match="XNLI has no language xx"):
        main([*base, "--dataset_name", "xnli", "--languages", "en", "xx", "--do_predict"])
    assert not output_dir.exists()


def test_bad_input_exits_non_zero_from_the_command_line(tmp_path, tiny_infoxlm_checkpoint):
    path = write(tmp_path / "sw.test.tsv", "premise\thypothesis\tlabel\na\tb\tneutral\nc\td\tmaybe\n")
    output_dir = tmp_path / "out"
    command = [sys.executable, str(REPO / "run_xnli.py"), "--model_name_or_path", str(tiny_infoxlm_checkpoint)]
    command += ["--test_files", f"sw={path}", "--do_predict", "--output_dir", str(output_dir)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert f"{path}, line 3, column 'label': unknown label 'maybe'" in completed.stderr
    assert "Fix:" in completed.stderr and "Traceback" not in completed.stderr
    assert not output_dir.exists()


# ---- end to end on generated data ---------------------------------------------------------------------------------


def test_zero_shot_run_on_generated_data(tmp_path, tiny_xnli_dir, tiny_xnli_checkpoint, capsys):
    """The same command for InfoXLM pretraining, XLM-R masked-LM and BERT masked-LM checkpoints."""
    output_dir = tmp_path / "out"
    report = main(xnli_args(tiny_xnli_checkpoint, tiny_xnli_dir, output_dir))

    # Table printed; en first (train language), then fr; the averages.
    table = capsys.readouterr().out
    assert "| Language | Test acc | Test macro-F1 | Test n | Dev acc | Dev macro-F1 | Dev n |" in table
    assert table.index("| en (English) — train language |") < table.index("| fr (French) |")
    assert "| **Average without en** (zero-shot) |" in table

    saved = json.loads((output_dir / "xnli_results.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["settings"]["languages"] == ["en", "fr"]
    assert saved["settings"]["id2label"] == {"0": "entailment", "1": "neutral", "2": "contradiction"}
    assert saved["results"]["fr"]["test"]["examples"] == 36 and saved["results"]["en"]["dev"]["examples"] == 24
    # The English cue words are learnt (XLM-R-style models reach 100%, the tiny BERT 67%), which needs the label ids
    # of the JSONL train file and the label names of the TSV files to agree: a permuted mapping scores 1/3 at best.
    assert saved["results"]["en"]["test"]["accuracy"] >= 0.6
    averages = saved["averages"]["test"]
    assert averages["all"]["accuracy"] == pytest.approx(
        np.mean([saved["results"][lang]["test"]["accuracy"] for lang in ("en", "fr")])
    )
    assert averages["zero_shot"]["accuracy"] == saved["results"]["fr"]["test"]["accuracy"]

    # Zero-shot selection: the best checkpoint was chosen on English dev data only.
    assert saved["selection"]["enabled"] and saved["selection"]["dev_languages"] == ["en"]
    assert saved["selection"]["best_checkpoint"] is not None
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    evaluations = [entry for entry in history if "eval_accuracy" in entry]
    assert len(evaluations) == 4 and not any("fr" in key for entry in evaluations for key in entry)

    assert (output_dir / "xnli_accuracy.png").read_bytes().startswith(b"\x89PNG")
    predictions = read_tsv(output_dir / "predictions" / "fr.test.tsv")
    assert len(predictions) == 36 and predictions[0]["premise"].startswith("le ")
    assert set(predictions[0]) == {
        "index",
        "premise",
        "hypothesis",
        "label",
        "prediction",
        "p_entailment",
        "p_neutral",
        "p_contradiction",
    }
    assert (output_dir / "predictions" / "en.dev.tsv").exists()
    config = json.loads((output_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "entailment", "1": "neutral", "2": "contradiction"}
    assert config["label2id"] == {"entailment": 0, "neutral": 1, "contradiction": 2}
    assert "| fr (French) |" in (output_dir / "README.md").read_text()

    # The encoder came from the checkpoint (only the classification head is new): `<mask>` never occurs in the
    # data, so its embedding row gets no gradient and must still equal the checkpoint's.
    key = next(key for key in load_file(output_dir / "model.safetensors") if key.endswith("word_embeddings.weight"))
    pretrained, fine_tuned = (
        load_file(tiny_xnli_checkpoint / "model.safetensors"),
        load_file(output_dir / "model.safetensors"),
    )
    assert torch.equal(pretrained[key][MASK_ID], fine_tuned[key][MASK_ID])
    assert not torch.equal(pretrained[key], fine_tuned[key])
    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert model.config.model_type == json.loads((tiny_xnli_checkpoint / "config.json").read_text())["model_type"]

    # The saved classifier evaluates to the same numbers in a run of its own.
    test_file = f"en={tiny_xnli_dir / 'en.test.tsv'}"
    args = ["--model_name_or_path", str(output_dir), "--test_files", test_file, "--do_predict", *QUIET]
    again = main([*args, "--output_dir", str(tmp_path / "evaluation")])
    assert again["results"]["en"]["test"]["accuracy"] == saved["results"]["en"]["test"]["accuracy"]
    assert not (tmp_path / "evaluation" / "README.md").exists()  # nothing was trained, no model card


def test_checkpoint_with_other_labels_is_rejected(tmp_path, tiny_xnli_dir):
    checkpoint = tmp_path / "classifier"
    config = tiny_config(XLMRobertaConfig, len(build_tiny_tokenizer()), id2label={0: "yes", 1: "no", 2: "maybe"})
    XLMRobertaForSequenceClassification(config).save_pretrained(checkpoint)
    build_tiny_tokenizer().save_pretrained(checkpoint)
    output_dir = tmp_path / "out"
    args = ["--model_name_or_path", str(checkpoint), "--test_files", str(tiny_xnli_dir), "--do_predict"]
    with pytest.raises(XNLIInputError, match="the checkpoint's labels") as raised:
        main([*args, "--output_dir", str(output_dir), *QUIET])
    assert raised.value.source == str(checkpoint) and "--label_list yes no maybe" in raised.value.fix
    assert not output_dir.exists()


def test_select_on_all_dev_uses_the_mean_over_languages(tmp_path, tiny_xnli_dir, tiny_infoxlm_checkpoint):
    output_dir = tmp_path / "out"
    args = xnli_args(tiny_infoxlm_checkpoint, tiny_xnli_dir, output_dir, "--num_train_epochs", "1")
    args[args.index("--validation_files") + 1] = str(tiny_xnli_dir)
    report = main([*args, "--select_on", "all_dev"])
    assert report["selection"]["dev_languages"] == ["en", "fr"]
    assert report["selection"]["protocol"] == "all-languages dev"
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    # One epoch: Trainer logs each language's evaluation, then XNLITrainer logs their mean.
    (en,) = [entry["eval_en_accuracy"] for entry in history if "eval_en_accuracy" in entry]
    (fr,) = [entry["eval_fr_accuracy"] for entry in history if "eval_fr_accuracy" in entry]
    (mean,) = [entry["eval_accuracy"] for entry in history if "eval_accuracy" in entry]
    assert mean == pytest.approx((en + fr) / 2)
    assert report["selection"]["best_metric"] == pytest.approx(mean)


# ---- LoRA ---------------------------------------------------------------------------------------------------------


def test_lora_trains_only_adapters_and_head_and_merged_model_matches(tmp_path, tiny_xnli_dir, tiny_infoxlm_checkpoint):
    output_dir = tmp_path / "out"
    lora = ["--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0.0", "--learning_rate", "1e-2"]
    report = main([*xnli_args(tiny_infoxlm_checkpoint, tiny_xnli_dir, output_dir, "--num_train_epochs", "2"), *lora])
    assert report["settings"]["lora"]["lora_r"] == 4

    # The adapter holds only LoRA matrices and the classification head (peft's modules_to_save).
    adapter_dir = output_dir / "lora_adapter"
    adapter = load_file(adapter_dir / "adapter_model.safetensors")
    assert adapter and all("lora_" in key or ".classifier." in key for key in adapter)
    assert any("lora_B" in key for key in adapter) and any(".classifier." in key for key in adapter)
    assert any(torch.count_nonzero(tensor) for key, tensor in adapter.items() if "lora_B" in key)

    # Merged weights differ from the pretrained ones exactly where adapters were merged (query/value weights).
    pretrained = load_file(tiny_infoxlm_checkpoint / "model.safetensors")
    merged = load_file(output_dir / "model.safetensors")
    for key, tensor in merged.items():
        if key.startswith("roberta."):
            changed = not torch.equal(tensor, pretrained[key])
            assert changed == key.endswith(("query.weight", "value.weight")), key

    # The merged model (no peft needed) reproduces the adapter model's logits.
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    rows = tiny_xnli_rows("fr", 6, seed=5) + tiny_xnli_rows("en", 6, seed=5)
    inputs = tokenizer(
        [r["premise"] for r in rows], [r["hypothesis"] for r in rows], padding=True, return_tensors="pt"
    )
    base = AutoModelForSequenceClassification.from_pretrained(tiny_infoxlm_checkpoint, num_labels=3)
    with_adapter = PeftModel.from_pretrained(base, adapter_dir).eval()
    merged_model = AutoModelForSequenceClassification.from_pretrained(output_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(merged_model(**inputs).logits, with_adapter(**inputs).logits, atol=1e-5, rtol=1e-5)
    assert "LoRA" in (output_dir / "README.md").read_text()


# ---- Hub: the dataset loader and the upload, mocked at the boundary -----------------------------------------------


def fake_xnli_config(language: str, sizes: dict[str, int], label_names: list[str]) -> DatasetDict:
    """One language config of the 🤗 `xnli` dataset: `premise`, `hypothesis`, ClassLabel `label` per split."""
    features = Features(
        {"premise": Value("string"), "hypothesis": Value("string"), "label": ClassLabel(names=label_names)}
    )
    splits = {}
    for seed, (split, size) in enumerate(sizes.items()):
        rows = tiny_xnli_rows(language, size, seed)
        # Each split's premises end with their own noun, so the test can tell the splits apart.
        labels = [label_names.index(XNLI_LABELS[r["label"]]) for r in rows]
        premises = [f"{r['premise']} {XNLI_WORDS[language]['nouns'].split()[seed]}" for r in rows]
        splits[split] = Dataset.from_dict(
            {"premise": premises, "hypothesis": [r["hypothesis"] for r in rows], "label": labels}, features=features
        )
    return DatasetDict(splits)


def test_hub_dataset_wiring_with_mocked_load_dataset(tmp_path, monkeypatch, tiny_infoxlm_checkpoint):
    configs = {
        "en": fake_xnli_config("en", {"train": 30, "validation": 12, "test": 15}, XNLI_LABELS),
        # Another label order than --label_list: labels must be mapped by name.
        "fr": fake_xnli_config(
            "fr", {"train": 33, "validation": 9, "test": 18}, ["neutral", "contradiction", "entailment"]
        ),
    }
    calls = []

    def load_dataset(name, config_name, **kwargs):
        calls.append((name, config_name))
        return configs[config_name]

    monkeypatch.setattr("datasets.load_dataset", load_dataset)
    selection_sizes = []
    evaluate = run_xnli.XNLITrainer.evaluate

    def spy(self, eval_dataset=None, **kwargs):
        selection_sizes.append(len(eval_dataset if eval_dataset is not None else self.eval_dataset))
        return evaluate(self, eval_dataset, **kwargs)

    monkeypatch.setattr(run_xnli.XNLITrainer, "evaluate", spy)
    output_dir = tmp_path / "out"
    report = main([
        "--model_name_or_path", str(tiny_infoxlm_checkpoint),
        "--dataset_name", "xnli", "--languages", "en", "fr",
        "--do_train", "--do_eval", "--do_predict",
        "--output_dir", str(output_dir), "--num_train_epochs", "2", *QUIET,
    ])  # fmt: skip

    assert sorted(calls) == [("xnli", "en"), ("xnli", "fr")]  # one load per language config
    assert report["train"]["train_samples"] == 30  # the en config's train split
    assert selection_sizes == [12, 12]  # selection after each epoch: the en validation split only
    sizes = {lang: {split: r[split]["examples"] for split in r} for lang, r in report["results"].items()}
    assert sizes == {"en": {"dev": 12, "test": 15}, "fr": {"dev": 9, "test": 18}}
    # Test = each language's own test split, with its labels mapped by name onto entailment/neutral/contradiction.
    fr_test = configs["fr"]["test"]
    predictions = read_tsv(output_dir / "predictions" / "fr.test.tsv")
    assert [p["premise"] for p in predictions] == fr_test["premise"]
    assert [p["label"] for p in predictions] == [fr_test.features["label"].int2str(i) for i in fr_test["label"]]


def test_push_to_hub_uploads_output_dir_with_model_card(tmp_path, monkeypatch, tiny_xnli_dir, tiny_infoxlm_checkpoint):
    uploads = []

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            return type("RepoUrl", (), {"repo_id": repo_id})()

        def upload_folder(self, **kwargs):
            uploads.append(kwargs)

    monkeypatch.setattr(run_xnli, "HfApi", FakeApi)
    output_dir = tmp_path / "out"
    args = xnli_args(tiny_infoxlm_checkpoint, tiny_xnli_dir, output_dir, "--max_steps", "2", *NO_SELECTION)
    main([*args, "--push_to_hub", "--hub_model_id", "someone/xnli-tiny"])
    assert len(uploads) == 1 and uploads[0]["repo_id"] == "someone/xnli-tiny"
    assert Path(uploads[0]["folder_path"]) == output_dir
    card = (output_dir / "README.md").read_text()
    assert card.startswith("---\n") and "pipeline_tag: text-classification" in card and "- fr" in card
    assert "| fr (French) |" in card and "no checkpoint selection" in card


# ---- config files -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_single_config_file_argument(suffix, tmp_path, tiny_xnli_dir, tiny_infoxlm_checkpoint):
    settings = {
        "model_name_or_path": str(tiny_infoxlm_checkpoint),
        "test_files": [f"fr={tiny_xnli_dir / 'fr.test.tsv'}"],
        "do_predict": True,
        "max_predict_samples": 10,
        "output_dir": str(tmp_path / "out"),
        "report_to": "none",
    }
    config_file = tmp_path / f"xnli{suffix}"
    # JSON is a subset of YAML, so one writer serves both.
    config_file.write_text(json.dumps(settings))
    report = main([str(config_file)])
    assert report["results"]["fr"]["test"]["examples"] == 10
    assert (tmp_path / "out" / "xnli_results.json").exists()


# ---- the acceptance run on ../shared/data/xnli --------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_infoxlm_on_shared_xnli(tmp_path, shared_data, capsys):
    """A tiny random InfoXLM with the real XLM-R tokenizer trains on en.dev.tsv and is tested on en and sw."""
    tokenizer = AutoTokenizer.from_pretrained(shared_data / "xlmr-tokenizer")
    checkpoint = save_tiny_checkpoint("infoxlm", tmp_path / "tiny-infoxlm", tokenizer)

    xnli = shared_data / "xnli"
    output_dir = tmp_path / "out"
    report = main([
        "--model_name_or_path", str(checkpoint),
        "--train_file", str(xnli / "en.dev.tsv"),
        "--test_files", f"en={xnli / 'en.test.tsv'}", f"sw={xnli / 'sw.test.tsv'}",
        "--do_train", "--do_predict", *NO_SELECTION,
        "--max_train_samples", "96", "--max_predict_samples", "150", "--max_seq_length", "128",
        "--num_train_epochs", "1", "--per_device_train_batch_size", "16",
        "--output_dir", str(output_dir), *QUIET,
    ])  # fmt: skip

    table = capsys.readouterr().out
    assert "| en (English) — train language |" in table and "| sw (Swahili) |" in table
    assert {lang: r["test"]["examples"] for lang, r in report["results"].items()} == {"en": 150, "sw": 150}
    saved = json.loads((output_dir / "xnli_results.json").read_text())
    assert 0.0 <= saved["results"]["sw"]["test"]["accuracy"] <= 1.0
    assert saved["settings"]["training"]["max_steps"] == -1 and saved["train"]["train_samples"] == 96
    assert (output_dir / "xnli_accuracy.png").read_bytes().startswith(b"\x89PNG")
    assert len(read_tsv(output_dir / "predictions" / "sw.test.tsv")) == 150
