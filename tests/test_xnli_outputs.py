"""run_xnli.py's outputs: a rerun replaces the previous run's predictions; the accuracy chart's legend and labels."""

import re

import torch

import run_xnli


def test_xnli_rerun_removes_the_previous_runs_predictions(tmp_path, tiny_xnli_dir, tiny_infoxlm_checkpoint):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        arguments = [
            "--model_name_or_path", str(tiny_infoxlm_checkpoint), "--test_files", str(tiny_xnli_dir),
            "--do_predict", "--output_dir", str(tmp_path), "--report_to", "none", "--disable_tqdm", "true",
        ]  # fmt: skip
        run_xnli.main(arguments)
        assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["en.test.tsv", "fr.test.tsv"]
        run_xnli.main([*arguments, "--languages", "en", "--overwrite_output_dir", "true"])
        assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == ["en.test.tsv"]
    finally:
        torch.set_num_threads(threads)


def test_xnli_chart_legend_names_the_training_language_and_labels_stay_readable():
    results = {
        "en": {"test": {"accuracy": 0.52}},
        "fr": {"test": {"accuracy": 0.48}},
        "sw": {"test": {"accuracy": 0.5}},
    }
    averages = {"test": {"all": {"accuracy": 0.5}}}
    figure = run_xnli.accuracy_figure(results, averages, "en", 3, "XNLI")
    (axes,) = figure.axes
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend[:2] == ["en (training language)", "zero-shot"] and "average 50.0" in legend
    average_line = next(line for line in axes.get_lines() if line.get_label().startswith("average"))
    labels = [text for text in axes.texts if re.fullmatch(r"\d+\.\d", text.get_text())]
    assert [text.get_text() for text in labels] == ["52.0", "48.0", "50.0"]
    for text in labels:  # drawn over the average line on an opaque box
        assert text.get_zorder() > average_line.get_zorder() and text.get_bbox_patch() is not None
