"""Model package: equivalence with transformers' XLM-R, masked-only MLM head, XLCO vector, round trips, Hub, errors."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
import torch
from helpers import SHARED_DATA as SHARED
from helpers import tiny_config
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForPreTraining,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaModel,
)

import modeling_infoxlm
from modeling_infoxlm import (
    InfoXLMConfig,
    InfoXLMForMaskedLM,
    InfoXLMForPreTraining,
    InfoXLMForQuestionAnswering,
    InfoXLMForSequenceClassification,
    InfoXLMForTokenClassification,
    InfoXLMModel,
)
from modeling_infoxlm.hub import push_to_hub

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def infoxlm_config(**overrides) -> InfoXLMConfig:
    return tiny_config(InfoXLMConfig, **{**TINY, "xlco_layer": 3, **overrides})


def padded_batch(vocab_size: int = 99, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`(3, 9)` ids starting with `<s>`, ending with `</s>`, rows 1 and 2 right-padded."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab_size, (3, 9), generator=generator)
    lengths = [9, 6, 3]
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, 0], ids[row, length - 1] = 0, 2
        ids[row, length:] = 1
        mask[row, :length] = 1
    return ids, mask


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_encoder_matches_xlm_roberta_at_every_layer(attn_implementation):
    torch.manual_seed(0)
    reference = XLMRobertaModel(tiny_config(XLMRobertaConfig, **TINY, attn_implementation=attn_implementation)).eval()
    ours = InfoXLMModel(infoxlm_config(attn_implementation=attn_implementation)).eval()
    assert ours.config._attn_implementation == attn_implementation
    missing, unexpected = ours.load_state_dict(reference.state_dict(), strict=True)
    ids, mask = padded_batch()
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, output_hidden_states=True)
        got = ours(ids, attention_mask=mask, output_hidden_states=True)
    assert len(got.hidden_states) == TINY["num_hidden_layers"] + 1
    for layer, (a, b) in enumerate(zip(expected.hidden_states, got.hidden_states)):
        valid = mask.bool()
        assert (a - b)[valid].abs().max() <= 1e-5, f"layer {layer}"
    assert (expected.pooler_output - got.pooler_output).abs().max() <= 1e-5


def test_eager_and_sdpa_agree():
    torch.manual_seed(0)
    eager = InfoXLMModel(infoxlm_config(attn_implementation="eager")).eval()
    sdpa = InfoXLMModel(infoxlm_config(attn_implementation="sdpa")).eval()
    sdpa.load_state_dict(eager.state_dict())
    ids, mask = padded_batch()
    with torch.no_grad():
        a = eager(ids, attention_mask=mask).last_hidden_state
        b = sdpa(ids, attention_mask=mask).last_hidden_state
    assert (a - b)[mask.bool()].abs().max() <= 1e-5


def test_hidden_states_at_layer_stops_early_and_matches_full_forward():
    torch.manual_seed(0)
    model = InfoXLMModel(infoxlm_config()).eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        full = model(ids, attention_mask=mask, output_hidden_states=True).hidden_states
    calls = []
    hooks = [
        block.register_forward_hook(lambda *_, i=i: calls.append(i)) for i, block in enumerate(model.encoder.layer)
    ]
    with torch.no_grad():
        partial = model.hidden_states_at_layer(ids, mask, layer=2)
    for hook in hooks:
        hook.remove()
    assert calls == [0, 1]
    assert (partial - full[2])[mask.bool()].abs().max() <= 1e-5
    with pytest.raises(ValueError, match="layer=5"):
        model.hidden_states_at_layer(ids, mask, layer=5)


def test_masked_only_logits_equal_full_logits_gathered():
    torch.manual_seed(0)
    model = InfoXLMForMaskedLM(infoxlm_config()).eval()
    ids, mask = padded_batch()
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[0, 5], labels[1, 1], labels[2, 1] = 7, 8, 9, 10
    masked = labels.ne(-100)
    with torch.no_grad():
        full = model(ids, attention_mask=mask, labels=labels)
        sparse = model(ids, attention_mask=mask, labels=labels, masked_tokens=masked)
    assert full.logits.shape == (3, 9, TINY["vocab_size"])
    assert sparse.logits.shape == (4, TINY["vocab_size"])
    assert (full.logits[masked] - sparse.logits).abs().max() <= 1e-5
    # The loss over labelled positions is the same whichever way the logits were computed.
    hand = torch.nn.functional.cross_entropy(full.logits[masked], labels[masked])
    assert abs(full.loss.item() - hand.item()) <= 1e-5
    assert abs(sparse.loss.item() - hand.item()) <= 1e-5


def test_masked_lm_matches_xlm_roberta_for_masked_lm():
    torch.manual_seed(0)
    reference = XLMRobertaForMaskedLM(tiny_config(XLMRobertaConfig, **TINY)).eval()
    ours = InfoXLMForMaskedLM(infoxlm_config()).eval()
    ours.load_state_dict(reference.state_dict())
    ids, mask = padded_batch()
    with torch.no_grad():
        diff = reference(ids, attention_mask=mask).logits - ours(ids, attention_mask=mask).logits
    assert diff[mask.bool()].abs().max() <= 1e-5
    assert ours.lm_head.decoder.weight is ours.roberta.embeddings.word_embeddings.weight


@pytest.mark.parametrize("use_projection", [True, False])
def test_sentence_vector_is_cls_state_of_xlco_layer_through_projection(use_projection):
    torch.manual_seed(0)
    model = InfoXLMForPreTraining(infoxlm_config(xlco_use_projection=use_projection, xlco_projection_size=16)).eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        hidden = model.roberta(ids, attention_mask=mask, output_hidden_states=True).hidden_states[3][:, 0]
        expected = hidden @ model.xlco_proj.weight.T if use_projection else hidden
        got = model.sentence_vector(ids, mask)
    assert got.shape == (3, 16 if use_projection else 32)
    assert (got - expected).abs().max() <= 1e-5
    assert (model.xlco_proj is None) == (not use_projection)
    if use_projection:
        assert model.xlco_proj.bias is None


def test_sentence_vector_gradient_reaches_only_layers_up_to_xlco_layer():
    torch.manual_seed(0)
    model = InfoXLMForPreTraining(infoxlm_config())
    ids, mask = padded_batch()
    model.sentence_vector(ids, mask).sum().backward()
    layers = model.roberta.encoder.layer
    assert all(p.grad is not None for p in layers[2].parameters())
    assert all(p.grad is None for p in layers[3].parameters())
    assert model.xlco_proj.weight.grad is not None


def test_config_defaults_and_validation():
    config = InfoXLMConfig()
    assert (config.num_hidden_layers, config.xlco_layer) == (12, 8)
    assert config.xlco_temperature == 0.25
    assert config.xlco_queue_size == 131072
    assert config.xlco_momentum == 0.9999
    assert config.xlco_projection_size == config.hidden_size
    assert InfoXLMConfig(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16).xlco_layer == 16
    for field, value in [
        ("xlco_layer", 0),
        ("xlco_layer", 13),
        ("xlco_temperature", 0.0),
        ("xlco_queue_size", 0),
        ("xlco_momentum", 1.5),
        ("xlco_projection_size", 0),
    ]:
        with pytest.raises(ValueError, match=field):
            InfoXLMConfig(**{field: value})


def test_keyword_overrides_of_a_saved_config_are_validated(workspace):
    for overrides, field in (
        ({"xlco_temperature": 0}, "xlco_temperature"),
        ({"xlco_layer": 99}, "xlco_layer"),
        ({"xlco_queue_size": 0}, "xlco_queue_size"),
    ):
        with pytest.raises(ValueError, match=f"{field}=.* is out of range"):
            InfoXLMConfig.from_pretrained(workspace / "config", **overrides)
    assert InfoXLMConfig.from_pretrained(workspace / "config", xlco_layer=3).xlco_layer == 3


def test_auto_classes_resolve_to_infoxlm():
    config = AutoConfig.for_model("infoxlm", **TINY, xlco_layer=2)
    assert isinstance(config, InfoXLMConfig)
    for auto_class, expected in [
        (AutoModel, InfoXLMModel),
        (AutoModelForMaskedLM, InfoXLMForMaskedLM),
        (AutoModelForPreTraining, InfoXLMForPreTraining),
        (AutoModelForSequenceClassification, InfoXLMForSequenceClassification),
        (AutoModelForTokenClassification, InfoXLMForTokenClassification),
        (AutoModelForQuestionAnswering, InfoXLMForQuestionAnswering),
    ]:
        assert type(auto_class.from_config(config)) is expected


def xlmr_checkpoint(directory: Path) -> XLMRobertaForMaskedLM:
    torch.manual_seed(0)
    model = XLMRobertaForMaskedLM(tiny_config(XLMRobertaConfig, **TINY)).eval()
    model.save_pretrained(directory)
    return model


def test_round_trip_xlmr_to_infoxlm_and_back(tmp_path):
    original = xlmr_checkpoint(tmp_path / "xlmr")
    config = InfoXLMConfig.from_pretrained(tmp_path / "xlmr")
    assert config.model_type == "infoxlm" and config.xlco_layer == 3
    model, info = InfoXLMForPreTraining.from_pretrained(tmp_path / "xlmr", output_loading_info=True)
    # Only the new projection is created; every XLM-R weight is taken from the checkpoint.
    assert set(info["missing_keys"]) == {"xlco_proj.weight"}
    assert not info["unexpected_keys"] and not info["mismatched_keys"]

    model.save_pretrained(tmp_path / "infoxlm")
    saved = json.loads((tmp_path / "infoxlm" / "config.json").read_text())
    assert saved["model_type"] == "infoxlm"
    assert saved["auto_map"]["AutoModel"] == "modeling_infoxlm.InfoXLMModel"
    assert {"model.safetensors", "modeling_infoxlm.py", "configuration_infoxlm.py"} <= set(
        os.listdir(tmp_path / "infoxlm")
    )
    assert not list((tmp_path / "infoxlm").glob("*.bin"))
    reloaded, info = InfoXLMForPreTraining.from_pretrained(tmp_path / "infoxlm", output_loading_info=True)
    assert not info["missing_keys"]
    assert torch.equal(reloaded.xlco_proj.weight, model.xlco_proj.weight)

    reloaded.save_pretrained(tmp_path / "export", as_xlm_roberta=True)
    exported_config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert exported_config["model_type"] == "xlm-roberta"
    assert "auto_map" not in exported_config and not any(k.startswith("xlco_") for k in exported_config)
    assert not (tmp_path / "export" / "modeling_infoxlm.py").exists()
    exported = XLMRobertaForMaskedLM.from_pretrained(tmp_path / "export").eval()
    assert type(AutoModel.from_pretrained(tmp_path / "export")) is XLMRobertaModel

    ids, mask = padded_batch()
    with torch.no_grad():
        a = original(ids, attention_mask=mask).logits
        b = exported(ids, attention_mask=mask).logits
        c = reloaded.eval()(ids, attention_mask=mask).logits
    assert torch.equal(a, b)
    assert torch.equal(a, c)


def test_export_cli_writes_xlm_roberta_checkpoint_and_refuses_to_overwrite(tmp_path):
    torch.manual_seed(0)
    model = InfoXLMForSequenceClassification(infoxlm_config(num_labels=3)).eval()
    model.save_pretrained(tmp_path / "clf")
    from modeling_infoxlm.export import main

    assert main([str(tmp_path / "clf"), str(tmp_path / "out")]) == 0
    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    assert type(exported).__name__ == "XLMRobertaForSequenceClassification"
    ids, mask = padded_batch()
    with torch.no_grad():
        assert torch.equal(model(ids, attention_mask=mask).logits, exported(ids, attention_mask=mask).logits)
    before = (tmp_path / "out" / "model.safetensors").read_bytes()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "clf"), str(tmp_path / "out")])
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == before


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["modeling_infoxlm"] = None  # the package is not installed here
    try:
        import modeling_infoxlm
    except ImportError:
        pass
    else:
        raise SystemExit("modeling_infoxlm must not be importable in this test")
    import torch
    from transformers import AutoModel, AutoModelForPreTraining, AutoModelForSequenceClassification
    path = sys.argv[1]
    ids = torch.load(path + "/ids.pt")
    encoder = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    pretraining = AutoModelForPreTraining.from_pretrained(path, trust_remote_code=True).eval()
    AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True, num_labels=3)
    assert type(encoder).__name__ == "InfoXLMModel", type(encoder)
    assert "transformers_modules" in type(encoder).__module__, type(encoder).__module__
    with torch.no_grad():
        hidden = encoder(ids).last_hidden_state
        vector = pretraining.sentence_vector(ids)
    torch.save({"hidden": hidden, "vector": vector}, path + "/remote.pt")
    """
)


def test_remote_code_loads_where_package_is_not_importable(tmp_path):
    torch.manual_seed(0)
    model = InfoXLMForPreTraining(infoxlm_config()).eval()
    model.save_pretrained(tmp_path / "ckpt")
    ids, _ = padded_batch()
    torch.save(ids, tmp_path / "ckpt" / "ids.pt")
    script = tmp_path / "remote.py"
    script.write_text(REMOTE_CODE_SCRIPT)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    # Run outside the repository so the checkout itself is not importable either.
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "ckpt")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = torch.load(tmp_path / "ckpt" / "remote.pt")
    with torch.no_grad():
        assert torch.equal(remote["hidden"], model.roberta(ids).last_hidden_state)
        assert torch.equal(remote["vector"], model.sentence_vector(ids))


def test_push_to_hub_uploads_model_code_tokenizer_and_card(tmp_path, tiny_tokenizer):
    model = InfoXLMForPreTraining(infoxlm_config(vocab_size=len(tiny_tokenizer)))
    uploaded = {}

    def fake_create_commit(self, repo_id, operations, **kwargs):
        for op in operations:
            source = op.path_or_fileobj
            uploaded[op.path_in_repo] = Path(source).read_bytes() if isinstance(source, str) else source.read()
        return mock.Mock(repo_id=repo_id)

    with (
        mock.patch("huggingface_hub.HfApi.create_repo", return_value=mock.Mock(repo_id="me/tiny-infoxlm")),
        mock.patch("huggingface_hub.HfApi.create_commit", fake_create_commit),
    ):
        push_to_hub(model, tiny_tokenizer, "me/tiny-infoxlm", objectives=["mlm", "tlm", "xlco"], metrics={"loss": 1.5})

    expected = {"config.json", "configuration_infoxlm.py", "modeling_infoxlm.py", "model.safetensors", "README.md"}
    assert expected <= set(uploaded), sorted(uploaded)
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(uploaded), sorted(uploaded)
    config = json.loads(uploaded["config.json"])
    assert config["auto_map"]["AutoModelForPreTraining"] == "modeling_infoxlm.InfoXLMForPreTraining"
    card = uploaded["README.md"].decode()
    assert "library_name: transformers" in card and "mlm, tlm, xlco" in card and "| loss | 1.5 |" in card
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in uploaded)


def test_unknown_model_type_is_rejected_with_its_name(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 32}))
    with pytest.raises(ValueError, match="'bert'"):
        InfoXLMConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'bert'"):
        InfoXLMForPreTraining.from_pretrained(tmp_path)


def test_xlco_layer_out_of_range_in_a_checkpoint_names_the_field(tmp_path):
    infoxlm_config().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "xlco_layer": 9}))
    with pytest.raises(ValueError, match="xlco_layer=9"):
        InfoXLMConfig.from_pretrained(tmp_path)


def test_checkpoint_with_mismatched_shapes_names_the_tensor(tmp_path):
    xlmr_checkpoint(tmp_path / "xlmr")
    config = json.loads((tmp_path / "xlmr" / "config.json").read_text())
    config["intermediate_size"] = 40  # the checkpoint's feed-forward weights are 37 wide
    (tmp_path / "xlmr" / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match="intermediate.dense.weight"):
        InfoXLMForPreTraining.from_pretrained(tmp_path / "xlmr")


@pytest.mark.skipif(not (SHARED / "xlmr-tokenizer").is_dir(), reason="../shared/data/xlmr-tokenizer is absent")
def test_base_shaped_model_with_real_vocabulary_round_trips(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(SHARED / "xlmr-tokenizer")
    config = InfoXLMConfig(vocab_size=len(tokenizer))  # XLM-R base: 12 layers, 768 hidden, 250002 tokens
    assert (config.vocab_size, config.num_hidden_layers, config.xlco_layer) == (250002, 12, 8)
    torch.manual_seed(0)
    model = InfoXLMForPreTraining(config).eval()
    batch = tokenizer(["Hello world.", "Bonjour le monde, comment ça va ?"], padding=True, return_tensors="pt")
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    reloaded = AutoModelForPreTraining.from_pretrained(tmp_path / "base").eval()
    masked = batch["attention_mask"].bool()
    with torch.no_grad():
        a = model(**batch, masked_tokens=masked).logits
        b = reloaded(**batch, masked_tokens=masked).logits
        assert a.shape == (int(masked.sum()), 250002)
        assert torch.equal(a, b)
        assert torch.equal(model.sentence_vector(**batch), reloaded.sentence_vector(**batch))
    del model
    reloaded.save_pretrained(tmp_path / "export", as_xlm_roberta=True)
    del reloaded
    exported = XLMRobertaForMaskedLM.from_pretrained(tmp_path / "export").eval()
    with torch.no_grad():
        # Logits at every position against logits at the masked positions only: the same weights, but matrix
        # products of other shapes, which CPUs may block and so round differently (fp32 tolerances).
        torch.testing.assert_close(exported(**batch).logits[masked], a, rtol=1e-4, atol=1e-4)


def test_package_exports_are_importable():
    for name in modeling_infoxlm.__all__:
        assert getattr(modeling_infoxlm, name) is not None
