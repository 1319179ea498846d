"""Command-line options of the pretraining data pipeline (parsed with `transformers.HfArgumentParser`)."""

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    """Where the MLM / TLM / XLCO pretraining data comes from and how it is turned into examples.

    Local files and 🤗 datasets can be combined; sentences of the same language (or pairs of the same language
    pair) are pooled before language sampling.
    """

    mono_data: list[str] | None = field(
        default=None,
        metadata={
            "help": "Monolingual text for MLM: files, directories or globs. One sentence (or document line) per line, "
            "one file per language, named <lang>.txt or <name>.<lang>.txt (optionally .gz), e.g. en.txt."
        },
    )
    parallel_data: list[str] | None = field(
        default=None,
        metadata={
            "help": "Parallel text for TLM and XLCO: files, directories or globs. Line-aligned pairs "
            "<name>.<l1>-<l2>.<l1> + <name>.<l1>-<l2>.<l2> (Moses/OPUS layout), <name>.<l1>-<l2>.tsv (two "
            'tab-separated columns), or .jsonl rows {"translation": {"<l1>": ..., "<l2>": ...}}.'
        },
    )
    mono_dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A 🤗 dataset (Hub name, local folder of data files, or a save_to_disk folder) with a text column, "
            "used for MLM; each of --mono_dataset_config_names is loaded as one language, e.g. "
            "HuggingFaceFW/fineweb-2 with fra_Latn deu_Latn."
        },
    )
    mono_dataset_config_names: list[str] | None = field(
        default=None,
        metadata={
            "help": "Configurations of --mono_dataset_name, one per language (space or comma separated, e.g. "
            "fra_Latn deu_Latn); each is named after its config in the summary and the language sampling."
        },
    )
    parallel_dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "A 🤗 dataset with a `translation` column ({l1: text, l2: text}), used for TLM and XLCO; each of "
            "--parallel_dataset_config_names is loaded as one language pair, e.g. Helsinki-NLP/opus-100 with de-en."
        },
    )
    parallel_dataset_config_names: list[str] | None = field(
        default=None,
        metadata={
            "help": "Configurations of --parallel_dataset_name, one per language pair (space or comma separated, "
            "e.g. de-en en-fr)."
        },
    )
    dataset_config_name: str | None = field(
        default=None,
        metadata={
            "help": "Configuration(s), comma separated, of the one 🤗 dataset named when only --mono_dataset_name or "
            "only --parallel_dataset_name is given (transformers' examples' flag). With both, use "
            "--mono_dataset_config_names and --parallel_dataset_config_names: their configurations differ."
        },
    )
    dataset_split: str = field(default="train", metadata={"help": "Split of the 🤗 dataset(s) to train on."})
    text_column_name: str | None = field(
        default=None,
        metadata={"help": "Text column of --mono_dataset_name (default: 'text', or the only string column)."},
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read and tokenize the data on the fly instead of tokenizing it once into the datasets cache. "
            "Memory stays flat whatever the corpus size; use it for corpora that do not fit on disk twice."
        },
    )
    max_seq_length: int = field(
        default=512,
        metadata={"help": "Length of MLM blocks and the longest TLM pair / XLCO side, special tokens included."},
    )
    mlm_probability: float = field(
        default=0.15, metadata={"help": "Share of (non-special) tokens selected for masking in MLM and TLM."}
    )
    xlco_mask_probability: float | None = field(
        default=None,
        metadata={
            "help": "Share of (non-special) XLCO tokens masked like MLM inputs (80/10/10), on the query and the key "
            "side, with no loss on them: noise on both encoders' inputs, as in the reference. Default: "
            "--mlm_probability; 0 turns it off."
        },
    )
    tlm_both_directions: bool = field(
        default=True,
        metadata={
            "help": "Lay out each TLM pair as <s> src </s></s> tgt </s> or <s> tgt </s></s> src </s>, by a seeded coin "
            "per example (the reference binarises both orders). False: always source first."
        },
    )
    language_sampling_alpha: float = field(
        default=0.3,
        metadata={
            "help": "Language sampling exponent: p_i ∝ n_i^alpha (n_i = sentences or pairs of language i). "
            "1 samples in proportion to size, 0 uniformly; XLM-R uses 0.3 to up-sample low-resource languages."
        },
    )
    xlco_mixup: bool = field(
        default=True,
        metadata={
            "help": "Mixup contrast for XLCO: each side concatenates two sentences in random order "
            "(turn off with --no_xlco_mixup for one sentence per side)."
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes used to tokenize map-style data (datasets.map num_proc)."}
    )
    parallel_heldout_every: int = field(
        default=0,
        metadata={
            "help": "Hold out parallel line i when i % N == 0 (0 = off). N=5 keeps the Tatoeba eval split out of "
            "training; the held-out pairs are used for retrieval evaluation."
        },
    )
    pad_to_multiple_of: int | None = field(
        default=None, metadata={"help": "Pad each batch to a multiple of this length (8 helps tensor cores)."}
    )
    data_cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where tokenized map-style data is cached (default: the 🤗 datasets cache)."},
    )
    shuffle_buffer_size: int = field(
        default=100,
        metadata={
            "help": "With --streaming, examples of each language are shuffled within windows of whole reader "
            "chunks (1,000 lines) holding at least this many examples (0 = read in file order); a resume re-reads "
            "one window. Map-style data is fully reshuffled every pass."
        },
    )

    def __post_init__(self):
        # HfArgumentParser gives lists; a programmatic caller may pass a single path.
        if isinstance(self.mono_data, str):
            self.mono_data = [self.mono_data]
        if isinstance(self.parallel_data, str):
            self.parallel_data = [self.parallel_data]
        if self.max_seq_length < 8:
            raise ValueError(
                f"--max_seq_length must be at least 8 (a TLM pair needs 4 special tokens), got {self.max_seq_length}."
            )
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"--mlm_probability must be between 0 and 1 (exclusive), got {self.mlm_probability}.")
        if self.xlco_mask_probability is None:
            self.xlco_mask_probability = self.mlm_probability
        if not 0.0 <= self.xlco_mask_probability < 1.0:
            raise ValueError(
                f"--xlco_mask_probability must be in [0, 1) (0 turns XLCO input masking off), got "
                f"{self.xlco_mask_probability}."
            )
        if not 0.0 <= self.language_sampling_alpha <= 1.0:
            raise ValueError(
                f"--language_sampling_alpha must be in [0, 1] (XLM-R uses 0.3), got {self.language_sampling_alpha}."
            )
        if self.parallel_heldout_every < 0 or self.parallel_heldout_every == 1:
            raise ValueError(
                "--parallel_heldout_every must be 0 (off) or at least 2 (1 would hold out every pair), "
                f"got {self.parallel_heldout_every}."
            )
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ValueError(f"--pad_to_multiple_of must be a positive integer, got {self.pad_to_multiple_of}.")
        if self.preprocessing_num_workers is not None and self.preprocessing_num_workers < 1:
            raise ValueError(
                f"--preprocessing_num_workers must be a positive integer, got {self.preprocessing_num_workers}."
            )
        if self.shuffle_buffer_size < 0:
            raise ValueError(f"--shuffle_buffer_size must be 0 or more, got {self.shuffle_buffer_size}.")
        self._check_dataset_configs()

    def _check_dataset_configs(self):
        for kind in ("mono", "parallel"):
            if getattr(self, f"{kind}_dataset_config_names") and not getattr(self, f"{kind}_dataset_name"):
                raise ValueError(f"--{kind}_dataset_config_names is given without --{kind}_dataset_name.")
        if self.dataset_config_name is None:
            return
        named = [kind for kind in ("mono", "parallel") if getattr(self, f"{kind}_dataset_name")]
        if len(named) == 2:
            raise ValueError(
                "--dataset_config_name cannot serve both --mono_dataset_name and --parallel_dataset_name (their "
                "configurations differ, e.g. fra_Latn against de-en): pass --mono_dataset_config_names and "
                "--parallel_dataset_config_names instead."
            )
        if not named:
            raise ValueError(
                "--dataset_config_name is given without a 🤗 dataset: pass --mono_dataset_name or "
                "--parallel_dataset_name."
            )
        if getattr(self, f"{named[0]}_dataset_config_names"):
            raise ValueError(
                f"--dataset_config_name and --{named[0]}_dataset_config_names both name configurations of "
                f"--{named[0]}_dataset_name: pass only --{named[0]}_dataset_config_names."
            )

    @property
    def mono_dataset_configs(self) -> list[str | None]:
        """The configurations of --mono_dataset_name to load, one per language; [None] for its default one."""
        return self._configs("mono")

    @property
    def parallel_dataset_configs(self) -> list[str | None]:
        """The configurations of --parallel_dataset_name to load, one per language pair; [None] for its default."""
        return self._configs("parallel")

    def _configs(self, kind: str) -> list[str | None]:
        given = getattr(self, f"{kind}_dataset_config_names")
        if isinstance(given, str):  # a programmatic caller or a YAML file may give one string
            given = [given]
        if not given and self.dataset_config_name:
            given = [self.dataset_config_name]
        names = [name.strip() for item in given or [] for name in item.split(",") if name.strip()]
        return names or [None]
