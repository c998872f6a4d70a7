"""What a sentence-transformers checkpoint runs after its transformer, read from its ``modules.json``.

sentence-transformers 6.2 turns token states into a sentence vector with the modules listed in ``modules.json``, in
order. bertwise runs the standard ones itself, exactly as sentence-transformers does (:mod:`bertwise.backbone.head`):

- ``Transformer`` (first, at the top of the folder): its ``sentence_bert_config.json`` gives ``max_seq_length`` and
  ``do_lower_case``; anything that would make it run differently (another task, modality, extra model or tokenizer
  arguments) is refused.
- ``Pooling``: one mode or several concatenated, in the order sentence-transformers concatenates them.
- ``Dense``: a linear layer (safetensors weights only) with a ``torch.nn`` activation, optionally residual.
- ``Normalize``: L2 normalisation, last.
- ``Dropout``: nothing when encoding (sentence-transformers encodes in eval mode), so it is skipped wherever it is
  after the Pooling module.

Every other module (LayerNorm, CNN, LSTM, WordEmbeddings, StaticEmbedding, Router, custom code...), another order,
or a default prompt is refused with a :class:`~bertwise.exceptions.ModelError` that names it, rather than encoded
differently from what the checkpoint's authors measured. Nothing here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from bertwise.exceptions import ModelError

PoolingMode = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
POOLING_MODES: tuple[PoolingMode, ...] = get_args(PoolingMode)
# Legacy boolean keys of 1_Pooling/config.json, in the order sentence-transformers concatenates their outputs.
_LEGACY_POOLING_KEYS: dict[str, PoolingMode] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SUPPORTED_MODULES = ("Transformer", "Pooling", "Dense", "Normalize", "Dropout")
# The names under which sentence-transformers has saved the Transformer module's settings.
_TRANSFORMER_CONFIGS = tuple(
    f"sentence_{name}_config.json"
    for name in ("bert", "roberta", "distilbert", "camembert", "albert", "xlm-roberta", "xlnet")
)
# Transformer settings that change no vector: the dtype is bertwise's --precision; the rest are about loading.
_HARMLESS_KWARGS = {"trust_remote_code", "dtype", "torch_dtype", "attn_implementation", "revision", "cache_dir"}
_FEATURES = "sentence_embedding"
DENSE_WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class DenseLayer:
    """A sentence-transformers ``Dense`` module: ``activation(linear(x))``, plus x (or its projection) if residual."""

    path: str  # its folder inside the model directory, e.g. "2_Dense"
    in_features: int
    out_features: int
    bias: bool
    activation: str  # import path of a torch.nn module class, e.g. "torch.nn.modules.activation.Tanh"
    residual: bool
    sha256: str  # of its model.safetensors ("" until resolve has hashed it)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Any) -> DenseLayer:
        """From :meth:`to_record`'s dict (a manifest), or ValueError saying what is wrong."""
        fields = {
            "path": str,
            "in_features": int,
            "out_features": int,
            "bias": bool,
            "activation": str,
            "residual": bool,
            "sha256": str,
        }
        if not isinstance(record, dict) or set(record) != set(fields):
            raise ValueError(f"a Dense layer is {record!r}; expected the keys {', '.join(fields)}")
        for key, kind in fields.items():
            value: Any = record[key]
            positive = not isinstance(value, bool) and isinstance(value, int) and value > 0
            if not isinstance(value, kind) or (kind is int and not positive):
                raise ValueError(
                    f"a Dense layer's {key} is {value!r}; expected {'a positive ' if kind is int else ''}"
                    f"{kind.__name__}"
                )
        return cls(**record)


@dataclass(frozen=True)
class ModuleStack:
    """What follows the transformer in a sentence-transformers checkpoint, and how its Transformer module tokenizes."""

    pooling: tuple[PoolingMode, ...]
    dense: tuple[DenseLayer, ...]
    normalize: bool
    max_length: int | None  # sentence_bert_config.json's max_seq_length
    lowercase: bool  # sentence_bert_config.json's do_lower_case


def pooling_modes(pooling: str) -> tuple[PoolingMode, ...]:
    """``"cls+mean"`` -> ("cls", "mean"); ValueError for anything but known modes joined by "+"."""
    modes = tuple(pooling.split("+")) if isinstance(pooling, str) else ()
    if not modes or any(mode not in POOLING_MODES for mode in modes):
        raise ValueError(f"pooling is {pooling!r}; expected one of {', '.join(POOLING_MODES)}, or several joined by +")
    return modes  # type: ignore[return-value]


def pooling_name(modes: tuple[PoolingMode, ...]) -> str:
    return "+".join(modes)


def read_module_stack(directory: Path) -> ModuleStack | None:
    """The checkpoint's module stack, None when it is no sentence-transformers checkpoint (no modules.json).

    Raises :class:`ModelError` naming the first module, setting or order that bertwise cannot run exactly.
    """
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        return None
    entries = _read_json(modules_file)
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("type"), str) for e in entries
    ):
        raise ModelError(
            f"'{modules_file}' is not a list of modules with a 'type' each; expected what sentence-transformers writes"
        )
    _check_model_config(directory)
    kinds = [_kind(directory, entry) for entry in entries]
    if not kinds or kinds[0] != "Transformer":
        raise ModelError(
            f"'{modules_file}' does not start with a Transformer module; bertwise runs checkpoints whose "
            "first module is the transformer"
        )
    if str(entries[0].get("path", "")) != "":
        raise ModelError(
            f"'{modules_file}' keeps its Transformer in the subfolder {entries[0]['path']!r}; bertwise "
            "expects it at the top of the model folder"
        )
    max_length, lowercase = _transformer_settings(directory)
    pooling: tuple[PoolingMode, ...] | None = None
    width: int | None = None
    dense: list[DenseLayer] = []
    normalize = False
    for kind, entry in zip(kinds[1:], entries[1:], strict=True):
        relative = str(entry.get("path", ""))
        if kind in ("Pooling", "Dense") and (Path(relative).name != relative or relative in ("", ".", "..")):
            # A saved bertwise model copies the checkpoint's own subfolders only.
            raise ModelError(
                f"'{modules_file}' keeps its {kind} module in {relative!r}; expected a subfolder of the model folder "
                "such as '1_Pooling', as sentence-transformers writes"
            )
        folder = directory / relative
        if (
            kind == "Transformer"
            or (kind == "Pooling" and pooling is not None)
            or (pooling is None and kind != "Pooling")
        ):
            _refuse_order(modules_file, kinds, f"a {kind} module where a Pooling module belongs")
        elif kind == "Dropout":
            continue  # identity in eval mode, where sentence-transformers encodes
        elif normalize:
            _refuse_order(modules_file, kinds, f"a {kind} module after Normalize")
        elif kind == "Pooling":
            pooling, dimension = _read_pooling(folder)
            width = dimension * len(pooling) if dimension else None
        elif kind == "Dense":
            layer = _read_dense(folder, relative, width)
            dense.append(layer)
            width = layer.out_features
        else:
            if relative:  # without a folder of its own it has no settings (the top one is the transformer's)
                _check_feature_names(folder / "config.json", "Normalize")
            normalize = True
    if pooling is None:
        raise ModelError(f"'{modules_file}' lists no Pooling module; expected one after the Transformer")
    return ModuleStack(pooling, tuple(dense), normalize, max_length, lowercase)


def declared_lowercase(directory: Path) -> bool:
    """Whether a sentence-transformers checkpoint's Transformer lowercases its input before tokenizing."""
    if not (directory / "modules.json").is_file():
        return False
    config = _transformer_config(directory)
    return bool(config.get("do_lower_case", False))


def _kind(directory: Path, entry: dict[str, Any]) -> str:
    class_ref = str(entry["type"])
    name = class_ref.rsplit(".", 1)[-1]
    if not class_ref.startswith("sentence_transformers.") or name not in SUPPORTED_MODULES:
        path = entry.get("path", "")
        raise ModelError(
            f"'{directory / 'modules.json'}' lists the module {class_ref} (folder {path!r}), which bertwise cannot "
            f"run; it runs sentence-transformers' {', '.join(SUPPORTED_MODULES)} modules only"
        )
    return name


def _refuse_order(modules_file: Path, kinds: list[str], found: str) -> None:
    raise ModelError(
        f"'{modules_file}' has {found} (modules: {' -> '.join(kinds)}); bertwise runs Transformer -> Pooling -> "
        "Dense (any number) -> Normalize (optional), with Dropout anywhere after Pooling"
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(
            f"'{path}' cannot be read as JSON ({type(error).__name__}: {error}); expected "
            "sentence-transformers' settings"
        ) from None


def _read_object(path: Path) -> dict[str, Any]:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise ModelError(f"'{path}' holds {type(value).__name__}; expected a JSON object of settings")
    return value


def _check_model_config(directory: Path) -> None:
    path = directory / "config_sentence_transformers.json"
    if not path.is_file():
        return
    config = _read_object(path)
    model_type = config.get("model_type", "SentenceTransformer")
    if model_type != "SentenceTransformer":
        raise ModelError(
            f"'{path}' says model_type {model_type!r}; bertwise runs SentenceTransformer (embedding) checkpoints only"
        )
    name = config.get("default_prompt_name")
    prompt = (config.get("prompts") or {}).get(name) if name is not None else None
    if prompt:
        raise ModelError(
            f"'{path}' sets a default prompt ({name!r}: {prompt!r}) that sentence-transformers puts "
            "before every text; bertwise does not add prompts, so it would encode differently"
        )


def _transformer_config(directory: Path) -> dict[str, Any]:
    for name in _TRANSFORMER_CONFIGS:
        if (directory / name).is_file():
            return _read_object(directory / name)
    return {}


def _transformer_settings(directory: Path) -> tuple[int | None, bool]:
    config = _transformer_config(directory)
    where = f"'{directory / _TRANSFORMER_CONFIGS[0]}'"
    task = config.get("transformer_task", "feature-extraction")
    if task != "feature-extraction":
        raise ModelError(f"{where} sets transformer_task {task!r}; bertwise runs feature-extraction transformers only")
    modality = config.get("modality_config")
    if modality is not None and modality != {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}:
        raise ModelError(
            f"{where} sets modality_config {modality!r}; bertwise runs text transformers whose forward "
            "returns last_hidden_state"
        )
    if config.get("module_output_name", "token_embeddings") != "token_embeddings":
        raise ModelError(f"{where} sets module_output_name {config['module_output_name']!r}; expected token_embeddings")
    for key in ("model_args", "model_kwargs", "tokenizer_args", "processor_kwargs", "config_args", "config_kwargs"):
        extra = {k: v for k, v in (config.get(key) or {}).items() if k not in _HARMLESS_KWARGS}
        if extra:
            raise ModelError(
                f"{where} passes {key} {extra!r} to transformers; bertwise loads the model and tokenizer "
                "with their own settings only, so it would encode differently"
            )
    for key in ("processing_kwargs", "query_expansion"):
        if config.get(key):
            raise ModelError(f"{where} sets {key} {config[key]!r}, which bertwise does not apply")
    value = config.get("max_seq_length")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 2):
        raise ModelError(f"{where} sets max_seq_length {value!r}; expected a whole number of tokens")
    return value, bool(config.get("do_lower_case", False))


def _read_pooling(folder: Path) -> tuple[tuple[PoolingMode, ...], int | None]:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelError(f"the Pooling module has no '{path}'; expected its settings there")
    config = _read_object(path)
    mode = config.get("pooling_mode")
    if mode is None:  # the legacy form: one boolean per mode; none set means mean
        mode = [value for key, value in _LEGACY_POOLING_KEYS.items() if config.get(key)] or "mean"
    modes = (mode,) if isinstance(mode, str) else tuple(mode) if isinstance(mode, list) else ()
    if not modes or any(m not in POOLING_MODES for m in modes):
        raise ModelError(f"'{path}' sets pooling_mode {mode!r}; expected one of {', '.join(POOLING_MODES)} or a list")
    dimension = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    return modes, dimension if isinstance(dimension, int) and not isinstance(dimension, bool) else None


def _check_feature_names(path: Path, kind: str) -> dict[str, Any]:
    config = _read_object(path) if path.is_file() else {}
    for key in ("module_input_name", "module_output_name"):
        if config.get(key, _FEATURES) not in (None, _FEATURES):
            raise ModelError(
                f"'{path}' sets {key} {config[key]!r}; bertwise runs {kind} on the sentence embedding only"
            )
    return config


def _read_dense(folder: Path, relative: str, width: int | None) -> DenseLayer:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelError(f"the Dense module has no '{path}'; expected its settings there")
    config = _check_feature_names(path, "Dense")
    sizes = [config.get("in_features"), config.get("out_features")]
    if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in sizes):
        raise ModelError(f"'{path}' sets in_features/out_features {sizes}; expected two positive whole numbers")
    if width is not None and sizes[0] != width:
        raise ModelError(f"'{path}' takes {sizes[0]} features but the module before it gives {width}")
    activation = config.get("activation_function", "torch.nn.modules.activation.Tanh")
    if not isinstance(activation, str) or not activation.startswith("torch."):
        raise ModelError(
            f"'{path}' names the activation {activation!r}; bertwise runs torch.nn activations only "
            "(sentence-transformers itself would replace this one by Tanh)"
        )
    weights = folder / DENSE_WEIGHTS
    if not weights.is_file():
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        found = f"found only {', '.join(pickled)}" if pickled else "found none"
        raise ModelError(
            f"the Dense module in '{folder}' has no {DENSE_WEIGHTS} ({found}); bertwise loads "
            "safetensors only, because pickled weights can run arbitrary code"
        )
    layer = DenseLayer(
        relative,
        int(sizes[0]),  # type: ignore[arg-type]
        int(sizes[1]),  # type: ignore[arg-type]
        bool(config.get("bias", True)),
        activation,
        bool(config.get("use_residual", False)),
        "",
    )
    _check_dense_weights(weights, layer)
    return layer


def _check_dense_weights(path: Path, layer: DenseLayer) -> None:
    from safetensors import SafetensorError, safe_open

    expected = {"linear.weight": [layer.out_features, layer.in_features]}
    if layer.bias:
        expected["linear.bias"] = [layer.out_features]
    if layer.residual and layer.in_features != layer.out_features:
        expected["residual.weight"] = [layer.out_features, layer.in_features]
    try:
        with safe_open(str(path), framework="numpy") as handle:
            found = {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelError(f"'{path}' cannot be read as safetensors ({error})") from None
    # Parameters of the activation itself (PReLU's weight) come on top; their shapes are checked when loaded.
    linear = {key: shape for key, shape in found.items() if not key.startswith("activation_function.")}
    if linear != expected:
        raise ModelError(
            f"'{path}' holds {linear}; expected {expected} for a {layer.in_features} -> "
            f"{layer.out_features} Dense layer"
        )
