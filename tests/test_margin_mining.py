"""
Margin scoring against a hand computation, run_retrieval.py's XTREME setting / margin / too-small languages, the
metrics as offline `evaluate` modules, and run_mining.py on gold pairs hidden among distractors.
"""

import json
import math
import random
import runpy
import subprocess
import sys

import pytest
import torch
from helpers import REPO, WORDS, eval_split, reference_vectors, save_tiny_checkpoint, tiny_config, write_pair
from transformers import XLMRobertaModel

import run_mining
import run_retrieval
from evaluation.metrics import METRICS_DIR, load_metric
from evaluation.mining import best_by_margin, margin_score_matrix, mine_pairs
from modeling_infoxlm import InfoXLMConfig, InfoXLMForPreTraining
from trainer.data import train_tokenizer

pytestmark = pytest.mark.usefixtures("single_torch_thread")

QUIET = ["--disable_tqdm", "--device", "cpu"]  # run_retrieval.py without progress bars, on the CPU


# ---- the hand computation ----------------------------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def hand_margins(source: list[list[float]], target: list[list[float]], k: int) -> dict:
    """Plain-Python ratio margin (LASER): cos(x, y) / (mean cos of x to its k NN / 2 + mean cos of y to its k NN / 2),
    and each side's best candidate among its k nearest neighbours by cosine."""
    cos = [[cosine(x, y) for y in target] for x in source]
    columns = [[cos[i][j] for i in range(len(source))] for j in range(len(target))]
    source_avg = [sum(sorted(row, reverse=True)[:k]) / min(k, len(row)) for row in cos]
    target_avg = [sum(sorted(column, reverse=True)[:k]) / min(k, len(column)) for column in columns]
    margin = [
        [cos[i][j] / ((source_avg[i] + target_avg[j]) / 2) for j in range(len(target))] for i in range(len(source))
    ]
    forward = []
    for i, row in enumerate(cos):
        neighbours = sorted(range(len(target)), key=lambda j: -row[j])[:k]
        forward.append(max(neighbours, key=lambda j: margin[i][j]))
    backward = []
    for j, column in enumerate(columns):
        neighbours = sorted(range(len(source)), key=lambda i: -column[i])[:k]
        backward.append(max(neighbours, key=lambda i: margin[i][j]))
    return {"margin": margin, "forward": forward, "backward": backward}


# float32 scores against the float64 hand computation: torch.testing's float32 tolerances, as assert_close uses below.
FP32 = {"rel": 1.3e-6, "abs": 1e-5}


def test_margin_scores_match_a_hand_computation():
    torch.manual_seed(0)
    source, target = torch.randn(7, 5), torch.randn(9, 5)
    for k in (4, 2, 20):  # 20: more neighbours than either side has, capped
        expected = hand_margins(source.tolist(), target.tolist(), k)
        torch.testing.assert_close(margin_score_matrix(source, target, k), torch.tensor(expected["margin"]))
        (forward, forward_margin), (backward, backward_margin) = best_by_margin(source, target, k, block_size=3)
        assert forward.tolist() == expected["forward"] and backward.tolist() == expected["backward"]
        assert forward_margin.tolist() == pytest.approx(
            [expected["margin"][i][j] for i, j in enumerate(forward)], **FP32
        )
        assert backward_margin.tolist() == pytest.approx(
            [expected["margin"][i][j] for j, i in enumerate(backward)], **FP32
        )
    # Margin differs from cosine in what it picks: the check above could tell the two apart.
    cosine_best = torch.nn.functional.normalize(source, dim=-1) @ torch.nn.functional.normalize(target, dim=-1).T
    assert cosine_best.argmax(dim=1).tolist() != hand_margins(source.tolist(), target.tolist(), 4)["forward"]

    pairs = mine_pairs(source, target, k=4)
    expected = hand_margins(source.tolist(), target.tolist(), 4)
    union = {(i, j) for i, j in enumerate(expected["forward"])} | {(i, j) for j, i in enumerate(expected["backward"])}
    assert {(i, j) for i, j, _ in pairs} == union and len(pairs) == len(union)
    assert [score for _, _, score in pairs] == sorted((score for _, _, score in pairs), reverse=True)
    assert all(score == pytest.approx(expected["margin"][i][j], **FP32) for i, j, score in pairs)


def test_metrics_are_evaluate_modules_loaded_offline(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    retrieval = evaluate.load(str(METRICS_DIR / "retrieval_accuracy"))
    assert retrieval.compute(predictions=[0, 2, 2, 3], references=[0, 1, 2, 3]) == {
        "accuracy": 0.75, "correct": 3, "total": 4}  # fmt: skip
    # 5 candidates by descending score, gold marked; 4 gold pairs in all (one never proposed).
    scores, gold = [2.0, 1.8, 1.5, 1.2, 1.1], [1, 0, 1, 1, 0]
    mining = load_metric("bitext_mining").compute(predictions=scores, references=gold, gold_pairs=4, threshold=1.6)
    # By hand: keep top 1: P 1, R 1/4; top 2: 1/2, 1/4; top 3: 2/3, 2/4; top 4: 3/4, 3/4 (F1 0.75); top 5: 3/5, 3/4.
    assert (mining["best_threshold"], mining["mined"]) == (1.2, 4)
    assert (mining["precision"], mining["recall"], mining["f1"]) == pytest.approx((0.75, 0.75, 0.75))
    assert (mining["threshold_mined"], mining["threshold_precision"], mining["threshold_recall"]) == (2, 0.5, 0.25)
    assert mining["threshold_f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    nli = load_metric("nli_classification").compute(
        predictions=[0, 1, 1], references=[0, 1, 2], label_names=list("abc")
    )
    assert nli["accuracy"] == pytest.approx(2 / 3) and nli["confusion_matrix"][2] == [0, 1, 0]


# ---- run_retrieval.py: XTREME setting, margin, languages too small to measure -----------------------------------


def test_xtreme_setting_margin_scoring_and_small_languages(tmp_path, tiny_tokenizer):
    rng = random.Random(0)
    data = tmp_path / "tatoeba"
    data.mkdir()

    def sentences(words, count):
        out = {}
        while len(out) < count:
            out[" ".join(rng.choice(words) for _ in range(rng.randint(2, 9)))] = None
        return list(out)

    write_pair(data, "fra", sentences(WORDS[20:38], 60), sentences(WORDS[:20], 60))
    write_pair(data, "deu", sentences(WORDS[38:], 60), sentences(WORDS[:20], 60))
    write_pair(data, "xho", ["le chat"], ["the cat"])  # one pair: 100% whatever the model
    checkpoint = save_tiny_checkpoint("xlm-roberta", tmp_path / "xlmr", tiny_tokenizer, initializer_range=0.1)
    args = ["--model_name_or_path", str(checkpoint), "--tatoeba_dir", str(data), "--output_dir", str(tmp_path / "r")]
    report = run_retrieval.main([*args, "--setting", "xtreme", "--scoring", "cosine,margin", "--heldout_every", "1",
                                 "--margin_k", "4", *QUIET])  # fmt: skip

    assert (report["poolings"], report["scorings"], report["directions"]) == (
        ["mean"],
        ["cosine", "margin"],
        ["xx->en"],
    )
    assert report["methods"] == ["mean", "mean/margin"] and report["layer"] == 1  # 2/3 of 2 layers
    assert report["languages"]["fra"]["pairs"] == 60  # --heldout_every 1: every pair
    # Independent: each sentence alone through the full encoder, margins by hand.
    model = XLMRobertaModel.from_pretrained(checkpoint, add_pooling_layer=False).eval()
    for language in ("fra", "deu"):
        foreign, english = eval_split(data, language, every=1)
        x = [v.tolist() for v in reference_vectors(model, tiny_tokenizer, foreign, 1)["mean"]]
        y = [v.tolist() for v in reference_vectors(model, tiny_tokenizer, english, 1)["mean"]]
        by_margin = sum(j == i for i, j in enumerate(hand_margins(x, y, 4)["forward"])) / len(x)
        by_cosine = sum(max(range(len(y)), key=lambda j: cosine(x[i], y[j])) == i for i in range(len(x))) / len(x)
        assert report["languages"][language]["mean/margin"] == {"xx->en": by_margin, "mean": by_margin}
        assert report["languages"][language]["mean"]["xx->en"] == by_cosine
    # The one-pair language scores 100% by chance: reported, flagged, not averaged.
    assert report["languages"]["xho"]["too_small"] and report["languages"]["xho"]["mean"]["xx->en"] == 1.0
    assert report["groups"]["bitext"]["languages"] == ["deu", "fra"] and report["groups"]["bitext"]["excluded"] == [
        "xho"
    ]
    average = (report["languages"]["deu"]["mean"]["xx->en"] + report["languages"]["fra"]["mean"]["xx->en"]) / 2
    assert report["groups"]["bitext"]["mean"]["xx->en"] == pytest.approx(average)
    markdown = (tmp_path / "r" / "retrieval.md").read_text()
    for stated in ("Layer: 1 of 2", "Pooling `mean`", "Scoring cosine", "Scoring margin: among the 4 nearest",
                   "Candidates per query", "xx→en, XTREME's direction", "Not averaged", "xho (1)"):  # fmt: skip
        assert stated in markdown, stated


# ---- run_mining.py ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucc_like(tmp_path_factory):
    """
    From CLDR (babel, shipped with the package): 150 French territory names as source distractors and 150 Greek ones
    as target distractors (another script: no distractor pair is itself a translation, as French and German
    "Oman" would be), and 20 gold pairs hidden among them, each an Italian name and its exact copy (a random model
    has no cross-lingual knowledge; an identical sentence is the one signal it sees). Ids are shuffled.
    """
    from babel import Locale

    directory = tmp_path_factory.mktemp("bucc")
    names = {code: sorted(set(Locale.parse(code).territories.values())) for code in ("fr", "el", "it")}
    rng = random.Random(0)
    hidden = rng.sample([n for n in names["it"] if n not in names["fr"]], 20)
    source = [(f"src-{i}", s) for i, s in enumerate(rng.sample(names["fr"], 150) + hidden)]
    target = [(f"tgt-{i}", s) for i, s in enumerate(rng.sample(names["el"], 150) + hidden)]
    rng.shuffle(source)
    rng.shuffle(target)
    target_id = {sentence: identifier for identifier, sentence in target}
    gold = [(identifier, target_id[sentence]) for identifier, sentence in source if sentence in hidden]
    for name, rows in (("source.tsv", source), ("target.tsv", target), ("gold.tsv", gold)):
        (directory / name).write_text("".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    tokenizer = train_tokenizer([s for rows in names.values() for s in rows], vocab_size=800)
    # A random model's sentence vectors are nearly parallel (every sentence shares its position embeddings and
    # `<s>`/`</s>`), so margins barely differ. With position and token-type embeddings zeroed, the embedding
    # output (layer 0) depends on the words alone, and a copy stands out as clearly as a translation would.
    torch.manual_seed(0)
    config = tiny_config(InfoXLMConfig, len(tokenizer), xlco_layer=1, initializer_range=0.1)
    model = InfoXLMForPreTraining(config)
    with torch.no_grad():
        model.roberta.embeddings.position_embeddings.weight.zero_()
        model.roberta.embeddings.token_type_embeddings.weight.zero_()
    model.save_pretrained(directory / "model")
    tokenizer.save_pretrained(directory / "model")
    return directory


def test_mining_finds_the_hidden_pairs(tmp_path, bucc_like):
    d = bucc_like
    args = ["--model_name_or_path", str(d / "model"), "--source_file", str(d / "source.tsv"), "--target_file",
            str(d / "target.tsv"), "--gold_file", str(d / "gold.tsv"), "--output_dir", str(tmp_path / "m"),
            "--disable_tqdm", "--device", "cpu"]  # fmt: skip
    report = run_mining.main([*args, "--pooling", "mean", "--layer", "0", "--threshold", "1.05"])
    scores = report["scores"]
    assert report["pooling"] == "mean" and report["gold_pairs"] == 20
    assert scores["f1"] == 1.0 and scores["mined"] == 20  # every copy found, no distractor above them
    # At the user threshold: recount from the written candidates by hand.
    rows = [line.split("\t") for line in (tmp_path / "m" / "candidates.tsv").read_text().splitlines()[1:]]
    kept = [row for row in rows if float(row[2]) >= 1.05]
    correct = sum(row[3] == "1" for row in kept)
    assert scores["threshold_mined"] == len(kept) > 20  # the threshold lets distractors in: precision < 1
    assert scores["threshold_precision"] == pytest.approx(correct / len(kept))
    assert scores["threshold_recall"] == pytest.approx(correct / 20)
    gold = {tuple(line.split("\t")) for line in (d / "gold.tsv").read_text().splitlines()}
    assert all((row[0], row[1]) in gold for row in rows[:20])
    assert json.loads((tmp_path / "m" / "mining.json").read_text())["scores"] == scores
    assert "| best F1 on gold |" in (tmp_path / "m" / "mining.md").read_text()


def test_mining_bad_input_exits_2_with_one_line(tmp_path, bucc_like):
    d = bucc_like
    (tmp_path / "bad.tsv").write_text("src-1\tfine\nno tab here\n", encoding="utf-8")
    command = [sys.executable, str(REPO / "run_mining.py"), "--model_name_or_path", str(d / "model"),
               "--source_file", str(tmp_path / "bad.tsv"), "--target_file", str(d / "target.tsv"),
               "--gold_file", str(d / "gold.tsv"), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().count("\n") == 0 and "line 2" in completed.stderr and "bad.tsv" in completed.stderr
    assert not (tmp_path / "out").exists()


def test_mining_refuses_a_folder_holding_other_files_in_one_line(tmp_path, bucc_like, monkeypatch, capsys):
    """The output-folder rule of every script, with its one-line refusal (not a traceback) and nothing written."""
    d = bucc_like
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine\n")
    args = ["--model_name_or_path", str(d / "model"), "--source_file", str(d / "source.tsv"), "--target_file",
            str(d / "target.tsv"), "--gold_file", str(d / "gold.tsv"), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["run_mining.py", *args])
    monkeypatch.delenv("INFOXLM_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / "run_mining.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err, err[-2000:]
    assert err.strip().count("\n") == 0 and err.startswith("run_mining.py: error: --output_dir"), err
    assert "already holds other files (notes.txt)" in err and "--overwrite_output_dir" in err, err
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "option, message",
    [
        (["--scoring", "cosine,csls"], "--scoring csls: pass one or more of cosine, margin"),
        (["--setting", "laser"], "--setting laser: unknown"),
        (["--directions", "fr->en"], "--directions fr->en"),
        (["--margin_k", "0"], "--margin_k 0: must be at least 1"),
        (["--min_pairs", "0"], "--min_pairs 0: must be at least 1"),
    ],
)
def test_bad_retrieval_options_name_the_option(option, message):
    from infoxlm_cli import ConfigError

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        run_retrieval.parse_args(["--model_name_or_path", "m", "--tatoeba_dir", "t", "--output_dir", "o", *option])
