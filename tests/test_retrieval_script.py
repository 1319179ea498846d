"""
run_retrieval.py: the end-to-end run on a generated Tatoeba-like folder checked against an independent computation
(XLMRobertaModel hidden states, one sentence at a time, and a hand-written nearest-neighbour count), the projection
of plain XLM-R checkpoints, mean pooling and padding, the language groups, bad input, and ../shared/data/tatoeba.
"""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import (
    REPO,
    build_tiny_tokenizer,
    eval_split,
    reference_vectors,
    save_tiny_checkpoint,
    tiny_config,
    write_pair,
    write_tiny_tatoeba,
)
from safetensors.torch import load_file
from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

import run_retrieval
from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer.retrieval import encode, load_retrieval_model, retrieval_report

QUIET = ["--disable_tqdm", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def tiny_tatoeba(tmp_path_factory) -> Path:
    return write_tiny_tatoeba(tmp_path_factory.mktemp("tatoeba"))


# Checkpoints with weights drawn with std 0.1 rather than 0.02: at 0.02 the `<s>` states of different sentences are so
# nearly parallel that their nearest neighbours are ties within float error, and no comparison is sharp.
SHARP = dict(initializer_range=0.1)


@pytest.fixture(scope="module")
def infoxlm_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint("infoxlm", tmp_path_factory.mktemp("infoxlm"), build_tiny_tokenizer(), **SHARP)


@pytest.fixture(scope="module")
def xlmr_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint("xlm-roberta", tmp_path_factory.mktemp("xlmr"), build_tiny_tokenizer(), **SHARP)


# ---- the independent computation ----------------------------------------------------------------------------------


# Cosine similarities closer than this to the best one are a tie: the script encodes in padded batches and this file
# one sentence at a time, which moves vectors by ~1e-7, and the `<s>` states of a random model are nearly parallel.
TIE = 1e-5


def nearest_neighbour_accuracy(source: list[torch.Tensor], target: list[torch.Tensor]) -> dict[str, tuple]:
    """
    For each direction, (lowest, highest) share of queries i whose most cosine-similar candidate on the other side
    is i: lowest counts i only when it beats every other candidate by more than TIE, highest when it is within TIE
    of the best.
    """

    def cosine(a, b):
        return float(a @ b) / (float(a.norm()) * float(b.norm()))

    n = len(source)
    similarity = [[cosine(source[i], target[j]) for j in range(n)] for i in range(n)]
    bounds = {}
    for direction, rows in (("xx->en", similarity), ("en->xx", [list(column) for column in zip(*similarity)])):
        surely = sum(all(row[i] > row[j] + TIE for j in range(n) if j != i) for i, row in enumerate(rows))
        possibly = sum(row[i] >= max(row) - TIE for i, row in enumerate(rows))
        bounds[direction] = (surely / n, possibly / n)
    bounds["mean"] = tuple((a + b) / 2 for a, b in zip(bounds["xx->en"], bounds["en->xx"]))
    return bounds


def expected_results(
    checkpoint: Path, data: Path, languages, layer: int, with_projection: bool, tokenizer=None
) -> dict:
    """{language: {"pairs": n, pooling: {direction: (lowest, highest) accuracy}}}."""
    model = XLMRobertaModel.from_pretrained(checkpoint, add_pooling_layer=False).eval()
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(checkpoint)
    projection = load_file(checkpoint / "model.safetensors")["xlco_proj.weight"] if with_projection else None
    expected = {}
    for language in languages:
        foreign, english = eval_split(data, language)
        foreign_vectors = reference_vectors(model, tokenizer, foreign, layer, projection)
        english_vectors = reference_vectors(model, tokenizer, english, layer, projection)
        expected[language] = {"pairs": len(foreign)}
        for pooling in ("xlco", "mean"):
            expected[language][pooling] = nearest_neighbour_accuracy(
                foreign_vectors[pooling], english_vectors[pooling]
            )
    return expected


def assert_matches(report: dict, expected: dict, sharp: bool = True) -> None:
    """Every accuracy of `report` within the independent bounds; `sharp`: the bounds must leave no room (no ties)."""
    assert sorted(report["languages"]) == sorted(expected)
    for language, scores in expected.items():
        got = report["languages"][language]
        assert got["pairs"] == scores["pairs"], language
        for pooling in ("xlco", "mean"):
            for key, (lowest, highest) in scores[pooling].items():
                assert not sharp or lowest == highest, (language, pooling, key, lowest, highest)
                assert lowest - 1e-9 <= got[pooling][key] <= highest + 1e-9, (language, pooling, key, lowest, highest)


def group_average(report: dict, languages: list[str], pooling: str, key: str) -> float:
    return sum(report["languages"][language][pooling][key] for language in languages) / len(languages)


# ---- end to end ---------------------------------------------------------------------------------------------------


def test_script_matches_an_independent_computation(tmp_path, tiny_tatoeba, infoxlm_checkpoint):
    output_dir = tmp_path / "retrieval"
    command = [sys.executable, str(REPO / "run_retrieval.py"), "--model_name_or_path", str(infoxlm_checkpoint)]
    command += ["--tatoeba_dir", str(tiny_tatoeba), "--mono_only_languages", "deu", "--output_dir", str(output_dir)]
    command += ["--batch_size", "4", *QUIET]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert completed.returncode == 0, completed.stderr

    report = json.loads((output_dir / "retrieval.json").read_text())
    languages = ["deu", "enm", "fra", "sco"]
    expected = expected_results(infoxlm_checkpoint, tiny_tatoeba, languages, layer=1, with_projection=True)
    # The comparison (sharp: assert_matches checks) must be able to tell a swapped direction or pooling apart.
    assert any(s[pooling]["xx->en"] != s[pooling]["en->xx"] for s in expected.values() for pooling in ("xlco", "mean"))
    assert any(s["xlco"] != s["mean"] for s in expected.values())
    assert expected["sco"]["xlco"]["mean"] == expected["sco"]["mean"]["mean"] == (1.0, 1.0)
    assert_matches(report, expected)
    assert (report["layer"], report["xlco_layer"], report["xlco_projection"]) == (1, 1, "trained")
    assert report["model_name_or_path"] == str(infoxlm_checkpoint)
    assert report["languages"]["fra"]["pairs"] == 10  # rows 0, 5, ..., 45 of 50

    # Groups: every language not declared monolingual-only has bitext.
    assert report["groups"]["bitext"]["languages"] == ["enm", "fra", "sco"]
    assert report["groups"]["mono_only"]["languages"] == ["deu"]
    for group, members in (("bitext", ["enm", "fra", "sco"]), ("mono_only", ["deu"])):
        for pooling in ("xlco", "mean"):
            for key in ("xx->en", "en->xx", "mean"):
                average = report["groups"][group][pooling][key]
                assert average == pytest.approx(group_average(report, members, pooling, key)), (group, pooling, key)

    markdown = (output_dir / "retrieval.md").read_text()
    assert markdown in completed.stdout  # the printed table is the written one
    fra = report["languages"]["fra"]
    cells = [f"{100 * fra[pooling][key]:.1f}" for pooling in ("xlco", "mean") for key in ("xx->en", "en->xx", "mean")]
    assert f"| fra | bitext | 10 | {' | '.join(cells)} |" in markdown
    assert "through the trained XLCO projection" in markdown
    chart = output_dir / "retrieval.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    assert sorted(p.name for p in output_dir.iterdir()) == ["retrieval.json", "retrieval.md", "retrieval.png"]


def test_plain_xlm_roberta_gets_the_raw_cls_state_and_layer_overrides(tmp_path, tiny_tatoeba, xlmr_checkpoint):
    output_dir = tmp_path / "retrieval"
    args = ["--model_name_or_path", str(xlmr_checkpoint), "--tatoeba_dir", str(tiny_tatoeba)]
    args += ["--languages", "fra,sco", "--layer", "2", "--output_dir", str(output_dir), *QUIET]
    report = run_retrieval.main(args)
    assert report["xlco_projection"] == "missing"
    assert "raw `<s>` state of layer 2" in report["pooling_descriptions"]["xlco"]
    assert "no trained XLCO projection" in (output_dir / "retrieval.md").read_text()
    # xlm-roberta configs have no xlco_layer: InfoXLM's default is two thirds of the depth (1 of 2 layers).
    assert (report["layer"], report["xlco_layer"]) == (2, 1)
    assert_matches(report, expected_results(xlmr_checkpoint, tiny_tatoeba, ["fra", "sco"], 2, with_projection=False))
    # No --mono_only_languages: every language has bitext, the other group is empty.
    assert report["groups"]["mono_only"] == {"languages": [], "excluded": [], "pairs": 0, "xlco": dict.fromkeys(
        ["xx->en", "en->xx", "mean"]), "mean": dict.fromkeys(["xx->en", "en->xx", "mean"])}  # fmt: skip


def test_a_projection_missing_from_the_checkpoint_is_never_applied(xlmr_checkpoint, infoxlm_checkpoint):
    model, projection = load_retrieval_model(str(xlmr_checkpoint))
    assert projection == "missing" and model.xlco_proj is None

    model, projection = load_retrieval_model(str(infoxlm_checkpoint))
    assert projection == "trained"
    saved = load_file(infoxlm_checkpoint / "model.safetensors")["xlco_proj.weight"]
    assert torch.equal(model.xlco_proj.weight, saved)

    config = InfoXLMConfig.from_pretrained(infoxlm_checkpoint, xlco_use_projection=False)
    model, projection = load_retrieval_model(str(infoxlm_checkpoint), config=config)
    assert projection == "disabled" and model.xlco_proj is None


def test_xlco_pooling_is_the_training_sentence_vector(infoxlm_checkpoint):
    model = InfoXLMForPreTraining.from_pretrained(infoxlm_checkpoint).eval()
    tokenizer = build_tiny_tokenizer()
    sentences = ["the cat sat on the mat", "le chat", "der hund ist groß und rot und klein"]
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        training = model.sentence_vector(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(encode(model, tokenizer, sentences, batch_size=3), training)
    torch.testing.assert_close(encode(model, tokenizer, sentences, batch_size=3, pooling="xlco"), training)


def test_mean_pooling_ignores_padding(infoxlm_checkpoint):
    model = InfoXLMForPreTraining.from_pretrained(infoxlm_checkpoint).eval()
    tokenizer = build_tiny_tokenizer()
    short, long = "the cat", "the big red dog sat on the small blue mat and the cat was green"
    batch = tokenizer([short, long], padding=True, return_tensors="pt")
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]  # the short one is padded

    together = encode(model, tokenizer, [short, long], batch_size=2, pooling=("mean", "xlco"))
    alone = encode(model, tokenizer, [short], batch_size=1, pooling=("mean", "xlco"))
    for pooling in ("mean", "xlco"):
        torch.testing.assert_close(together[pooling][0], alone[pooling][0], atol=1e-5, rtol=1e-5)

    # The check can fail: averaging over the padded positions too gives a clearly different vector.
    with torch.no_grad():
        states = model.roberta.hidden_states_at_layer(batch["input_ids"], batch["attention_mask"], 1)
    assert not torch.allclose(states[0].mean(dim=0), alone["mean"][0], atol=1e-3)


def test_report_groups_and_averages():
    results = {
        language: {"pairs": 10, **dict.fromkeys(("xlco", "mean"), {"xx->en": a, "en->xx": b, "mean": (a + b) / 2})}
        for language, a, b in (("fra", 0.5, 0.7), ("deu", 0.1, 0.3), ("spa", 0.2, 0.0), ("tha", 0.4, 0.4))
    }
    report = retrieval_report(results, ["spa", "tha", "vie"], model_name_or_path="m")
    assert report["groups"]["bitext"]["languages"] == ["deu", "fra"]
    assert report["groups"]["mono_only"]["languages"] == ["spa", "tha"]
    assert report["groups"]["bitext"]["xlco"]["xx->en"] == pytest.approx((0.5 + 0.1) / 2)
    assert report["groups"]["mono_only"]["mean"]["mean"] == pytest.approx((0.1 + 0.4) / 2)
    assert report["groups"]["mono_only"]["pairs"] == 20
    assert [report["languages"][lang]["group"] for lang in ("deu", "fra", "spa", "tha")] == [
        "bitext", "bitext", "mono_only", "mono_only"]  # fmt: skip


# ---- bad input ----------------------------------------------------------------------------------------------------


def run_script(monkeypatch, args: list[str]) -> int:
    """The script's own `__main__` block, in this process (a subprocess spends ~10 s importing torch): exit status."""
    monkeypatch.setattr(sys, "argv", ["run_retrieval.py", *args])
    try:
        runpy.run_path(str(REPO / "run_retrieval.py"), run_name="__main__")
    except SystemExit as exited:
        return exited.code
    return 0


def misaligned_folder(tmp_path: Path) -> Path:
    directory = tmp_path / "misaligned"
    directory.mkdir()
    write_pair(directory, "fra", ["un", "deux", "trois"], ["one", "two"])
    return directory


def checkpoint_without_tokenizer(tmp_path: Path) -> Path:
    """transformers would load a tokenizer of special tokens only from it: every word an <unk>."""
    directory = tmp_path / "bare"
    XLMRobertaModel(tiny_config(XLMRobertaConfig, 64), add_pooling_layer=False).save_pretrained(directory)
    return directory


# case: (extra arguments, what the message must say: the option or file, the problem and the fix)
BAD_INPUTS = {
    "missing tatoeba_dir": (
        lambda tmp, data: ["--tatoeba_dir", str(tmp / "nowhere")],
        lambda tmp, data: [f"--tatoeba_dir {tmp / 'nowhere'}: no such folder", "e.g. ../shared/data/tatoeba"],
    ),
    "language without files": (
        lambda tmp, data: ["--languages", "fra,xyz"],
        lambda tmp, data: [f"--languages: no files for xyz in {data}", "the folder has: deu, enm, fra, sco"],
    ),
    "mono-only language without files": (
        lambda tmp, data: ["--mono_only_languages", "spa"],
        lambda tmp, data: [f"--mono_only_languages: no files for spa in {data}", "or leave it out"],
    ),
    "misaligned files": (
        lambda tmp, data: ["--tatoeba_dir", str(misaligned_folder(tmp))],
        lambda tmp, data: [
            f"not line-aligned: {tmp / 'misaligned' / 'tatoeba.fra-eng.fra'} has 3 lines but "
            f"{tmp / 'misaligned' / 'tatoeba.fra-eng.eng'} has 2",
            "re-export the pair",
        ],
    ),
    "layer out of range": (
        lambda tmp, data: ["--layer", "3"],
        lambda tmp, data: ["--layer 3: out of range for a 2-layer encoder", "Pass 0..2", "xlco_layer (1)"],
    ),
    "model folder missing": (
        lambda tmp, data: ["--model_name_or_path", str(tmp / "runs" / "model")],
        lambda tmp, data: [f"--model_name_or_path {tmp / 'runs' / 'model'}: no such folder", "save_pretrained"],
    ),
    "checkpoint without a tokenizer": (
        lambda tmp, data: ["--model_name_or_path", str(checkpoint_without_tokenizer(tmp))],
        lambda tmp, data: [f"--model_name_or_path {tmp / 'bare'}: no tokenizer files there", "--tokenizer_name"],
    ),
    "max_length beyond the positions": (
        lambda tmp, data: ["--max_length", "512"],
        lambda tmp, data: ["--max_length 512: more tokens than the model's 128 positions", "--max_length 128 or less"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_message(case, tmp_path, tiny_tatoeba, infoxlm_checkpoint, monkeypatch, capsys):
    extra, message = BAD_INPUTS[case]
    output_dir = tmp_path / "out"
    args = ["--model_name_or_path", str(infoxlm_checkpoint), "--tatoeba_dir", str(tiny_tatoeba)]
    args += ["--output_dir", str(output_dir), *QUIET, *extra(tmp_path, tiny_tatoeba)]
    assert run_script(monkeypatch, args) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("run_retrieval.py: error: ") and stderr.count("\n") == 1, stderr
    for fragment in message(tmp_path, tiny_tatoeba):
        assert fragment in stderr
    assert not output_dir.exists()


def test_an_output_dir_with_other_files_needs_overwrite(
    tmp_path, tiny_tatoeba, infoxlm_checkpoint, monkeypatch, capsys
):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "notes.txt").write_text("mine")
    common = [
        "--model_name_or_path",
        str(infoxlm_checkpoint),
        "--tatoeba_dir",
        str(tiny_tatoeba),
        "--languages",
        "sco",
    ]
    args = [*common, "--output_dir", str(output_dir), *QUIET]
    assert run_script(monkeypatch, args) == 2
    assert f"--output_dir {output_dir} already holds other files (notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in output_dir.iterdir()) == ["notes.txt"]
    assert run_script(monkeypatch, [*args, "--overwrite_output_dir"]) == 0
    assert sorted(p.name for p in output_dir.iterdir()) == [
        "notes.txt", "retrieval.json", "retrieval.md", "retrieval.png"]  # fmt: skip
    assert (output_dir / "notes.txt").read_text() == "mine"

    # A folder holding this script's results is a previous run: refused, then replaced with --overwrite_output_dir.
    own = [*common, "--output_dir", str(tmp_path / "own"), *QUIET]
    assert run_script(monkeypatch, own) == 0 and run_script(monkeypatch, own) == 2
    assert "already holds a run (retrieval.json, retrieval.md, retrieval.png)" in capsys.readouterr().err
    assert run_script(monkeypatch, [*own, "--overwrite_output_dir"]) == 0


def test_help_prints(monkeypatch, capsys):
    assert run_script(monkeypatch, ["--help"]) == 0
    assert "i % heldout_every == 0" in capsys.readouterr().out


# ---- ../shared/data/tatoeba ---------------------------------------------------------------------------------------


def test_shared_tatoeba(tmp_path, shared_data):
    tatoeba, tokenizer_dir = shared_data / "tatoeba", shared_data / "xlmr-tokenizer"
    if not (tatoeba / "tatoeba.swh-eng.swh").is_file() or not tokenizer_dir.is_dir():
        pytest.skip(f"{tatoeba}/tatoeba.swh-eng.* or {tokenizer_dir} is absent")
    # A tiny encoder over the real XLM-R vocabulary; the tokenizer (4 s to load) stays outside the checkpoint and is
    # passed with --tokenizer_name.
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    checkpoint = save_tiny_checkpoint("infoxlm", tmp_path / "model", tokenizer, save_tokenizer=False, **SHARP)
    args = ["--model_name_or_path", str(checkpoint), "--tokenizer_name", str(tokenizer_dir)]
    args += ["--tatoeba_dir", str(tatoeba), "--languages", "fra,swh", "--mono_only_languages", "swh"]
    report = run_retrieval.main([*args, "--output_dir", str(tmp_path / "out"), *QUIET])
    for language in ("fra", "swh"):
        foreign, _ = eval_split(tatoeba, language)
        assert report["languages"][language]["pairs"] == len(foreign) > 0
    assert report["groups"]["bitext"]["languages"] == ["fra"]
    assert report["groups"]["mono_only"]["languages"] == ["swh"]
    expected = expected_results(checkpoint, tatoeba, ["swh"], layer=1, with_projection=True, tokenizer=tokenizer)
    # 250k embeddings of std 0.1 with 32 dimensions leave a few near-ties: checked within their bounds.
    assert_matches({"languages": {"swh": report["languages"]["swh"]}}, expected, sharp=False)
