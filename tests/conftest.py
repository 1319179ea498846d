"""Shared fixtures (what they are built from lives in helpers.py)."""

from pathlib import Path

import pytest
from helpers import SHARED_DATA, build_tiny_tokenizer, save_tiny_checkpoint, write_tiny_workspace, write_tiny_xnli
from transformers import PreTrainedTokenizerFast


@pytest.fixture(scope="module")
def single_torch_thread():
    """Tiny models run far faster on one thread, and do not slow to a crawl when other processes share the CPUs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return build_tiny_tokenizer()


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the checkout; tests that need it skip when it is absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (it sits beside the checkout in CI); this test needs the shared corpora")
    return SHARED_DATA


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A tiny run_pretrain.py workspace (helpers.write_tiny_workspace), one per test module."""
    return write_tiny_workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="session")
def tiny_xnli_dir(tmp_path_factory) -> Path:
    return write_tiny_xnli(tmp_path_factory.mktemp("tiny_xnli"))


@pytest.fixture(scope="session", params=["infoxlm", "xlm-roberta", "bert"])
def tiny_xnli_checkpoint(request, tmp_path_factory) -> Path:
    """Each test using it runs once per checkpoint format."""
    return save_tiny_checkpoint(request.param, tmp_path_factory.mktemp(request.param), build_tiny_tokenizer())


@pytest.fixture(scope="session")
def tiny_infoxlm_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint("infoxlm", tmp_path_factory.mktemp("infoxlm"), build_tiny_tokenizer())
