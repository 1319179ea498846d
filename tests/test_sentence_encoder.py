"""The sentence-transformers export: `SentenceTransformer(folder)` without custom code encodes the vector we train."""

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
import torch

pytest.importorskip("sentence_transformers")

from helpers import SHARED_DATA, tiny_config  # noqa: E402

from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining  # noqa: E402
from trainer.data import train_tokenizer  # noqa: E402

LOCALES = ("en", "fr", "de", "ru", "zh_Hans", "ar", "hi", "ja", "sw", "el")

# Loads the folder in a separate interpreter where this package cannot be imported: it must need no custom code.
ENCODE_ELSEWHERE = """
import json, sys
sys.modules["modeling_infoxlm"] = None  # any import of our package now fails
sys.modules["trainer"] = None
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
sentences = json.loads(open(sys.argv[2], encoding="utf-8").read())
print(json.dumps(model.encode(sentences, batch_size=5).tolist()))
"""


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """Genuine translations from CLDR (via babel): a country, a full date, a list and "3 days ago" in 10 languages
    and 8 scripts, of different lengths."""
    from babel import Locale
    from babel.dates import format_date, format_timedelta
    from babel.lists import format_list

    rows = []
    for name in LOCALES:
        locale = Locale.parse(name)
        rows += [
            locale.territories["DE"],
            format_date(date(2024, 3, 15), format="full", locale=name),
            format_list([locale.territories[code] for code in ("FR", "DE", "JP")], locale=name),
            format_timedelta(timedelta(days=-3), add_direction=True, locale=name),
        ]
    return rows


@pytest.fixture(scope="module")
def small_tokenizer(sentences):
    """A 1,000-piece BPE trained on CLDR territory names (a tenth of a second): small models, fast tests."""
    from babel import Locale

    names = [name for locale in LOCALES for name in Locale.parse(locale).territories.values()]
    return train_tokenizer(names + sentences, vocab_size=1000)


@pytest.fixture(scope="module")
def tokenizer(small_tokenizer):
    """XLM-R's own tokenizer from ../shared/data when present (a user's clone falls back to the small BPE)."""
    from transformers import AutoTokenizer

    if (SHARED_DATA / "xlmr-tokenizer").is_dir():
        return AutoTokenizer.from_pretrained(SHARED_DATA / "xlmr-tokenizer")
    return small_tokenizer


def encode_in_fresh_interpreter(folder: Path, sentences: list[str], tmp_path: Path) -> torch.Tensor:
    (tmp_path / "sentences.json").write_text(json.dumps(sentences, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", ENCODE_ELSEWHERE, str(folder), str(tmp_path / "sentences.json")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.tensor(json.loads(result.stdout.strip().splitlines()[-1]))


def test_export_encodes_the_xlco_sentence_vector_without_custom_code(
    tmp_path, sentences, tokenizer, single_torch_thread
):
    torch.manual_seed(0)
    config = tiny_config(InfoXLMConfig, len(tokenizer), num_hidden_layers=3, xlco_layer=2)
    model = InfoXLMForPreTraining(config).eval()
    # A square, non-symmetric projection: a transposed copy would give other vectors of the same shape.
    assert not torch.allclose(model.xlco_proj.weight, model.xlco_proj.weight.T)
    model.save_pretrained(tmp_path / "encoder", as_sentence_transformer=True, tokenizer=tokenizer)

    folder = tmp_path / "encoder"
    config_json = json.loads((folder / "config.json").read_text())
    assert config_json["model_type"] == "xlm-roberta" and "auto_map" not in config_json
    assert config_json["num_hidden_layers"] == 2  # cut at xlco_layer
    assert not list(folder.rglob("*.py"))
    assert "sentence_vector" in (folder / "README.md").read_text()

    encoded = encode_in_fresh_interpreter(folder, sentences, tmp_path)
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model.sentence_vector(batch["input_ids"], batch["attention_mask"])
    assert encoded.shape == expected.shape == (len(sentences), config.xlco_projection_size)
    assert len(sentences) == 40 and batch["attention_mask"].sum(1).unique().numel() > 5  # real padding at play
    torch.testing.assert_close(encoded, expected, atol=1e-5, rtol=0)


def test_mean_pooling_export_of_an_infoxlm_model(tmp_path, sentences, small_tokenizer, single_torch_thread):
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(1)
    model = InfoXLMForPreTraining(
        tiny_config(InfoXLMConfig, len(small_tokenizer), num_hidden_layers=3, xlco_layer=1)
    ).eval()
    model.save_pretrained(
        tmp_path / "mean", as_sentence_transformer=True, tokenizer=small_tokenizer, pooling="mean", layer=2
    )
    encoded = SentenceTransformer(str(tmp_path / "mean"), device="cpu").encode(sentences, convert_to_tensor=True)
    batch = small_tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():  # independent of the export: the full model's states of layer 2, averaged by hand
        hidden = model.roberta(**batch, output_hidden_states=True).hidden_states[2]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(encoded, (hidden * mask).sum(1) / mask.sum(1), atol=1e-5, rtol=0)
    assert "mean of the states of layer 2" in (tmp_path / "mean" / "README.md").read_text()


def test_export_cli_from_an_xlm_roberta_checkpoint(tmp_path, sentences, small_tokenizer, single_torch_thread):
    from sentence_transformers import SentenceTransformer
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from modeling_infoxlm.export import main

    torch.manual_seed(2)
    source = XLMRobertaForMaskedLM(tiny_config(XLMRobertaConfig, len(small_tokenizer), num_hidden_layers=3)).eval()
    source.save_pretrained(tmp_path / "xlmr")
    small_tokenizer.save_pretrained(tmp_path / "xlmr")
    assert main([str(tmp_path / "xlmr"), str(tmp_path / "out"), "--sentence_transformer"]) == 0
    encoded = SentenceTransformer(str(tmp_path / "out"), device="cpu").encode(sentences, convert_to_tensor=True)
    batch = small_tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():  # default for a checkpoint without projection: mean of layer 2 of 3 (2/3 of the depth)
        hidden = source.roberta(**batch, output_hidden_states=True).hidden_states[2]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    torch.testing.assert_close(encoded, (hidden * mask).sum(1) / mask.sum(1), atol=1e-5, rtol=0)

    before = sorted(path.name for path in (tmp_path / "out").iterdir())
    with pytest.raises(SystemExit):  # a non-empty target is refused, untouched
        main([str(tmp_path / "xlmr"), str(tmp_path / "out"), "--sentence_transformer"])
    with pytest.raises(SystemExit):  # the xlm-roberta export has no projection to apply
        main([str(tmp_path / "xlmr"), str(tmp_path / "out2"), "--sentence_transformer", "--layer", "4"])
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == before
    assert not (tmp_path / "out2").exists()
