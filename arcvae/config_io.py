"""Configs in and out: schema defaults <- a YAML file <- dotted CLI overrides (`load_config`), and
back out as a plain dict, YAML text, a hash and a list of changed keys.

OmegaConf does the merging and type checking; we add what it lacks for users: an unknown key is
named with the closest valid key, and ranges are checked after the merge (`config.validate`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import Config, resolve_defaults, validate
from .errors import ConfigError


def _known_keys(schema: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in fields(schema):
        value = getattr(schema, f.name)
        keys.append(prefix + f.name)
        if is_dataclass(value):
            keys += _known_keys(value, prefix + f.name + ".")
    return keys


def _check_unknown(tree: dict, schema: Any, where: str, prefix: str = "") -> None:
    """Name the first unknown key, with the closest valid one, before OmegaConf's terser error."""
    valid = {f.name: getattr(schema, f.name) for f in fields(schema)}
    for key, value in tree.items():
        dotted = prefix + str(key)
        if key not in valid:
            close = difflib.get_close_matches(dotted, _known_keys(Config()), n=1, cutoff=0.5)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: unknown config key '{dotted}'{hint}")
        if is_dataclass(valid[key]):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{dotted}' must be a section of keys, got {value!r}")
            _check_unknown(value, valid[key], where, dotted + ".")


def overrides_to_tree(overrides: list[str]) -> dict:
    tree: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key.sub=value")
        key, text = item.split("=", 1)
        node = tree
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override '{item}': '{key}' is not a dotted key like train.lr")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = _parse_value(item, text)
    return tree


def _parse_value(item: str, text: str) -> Any:
    """An override's value as YAML reads it (`[16,32]` a list, `null` None); empty text is None."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"override '{item}': the value '{text}' is not valid YAML") from None


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: str | Path | None = None,
    settings: tuple[str, dict] | None = None,
) -> Config:
    """Schema defaults <- base YAML file <- YAML file <- `settings` <- dotted overrides, then
    ranges; raises ConfigError. `base` is what a sweep's configs share (`sweep --base`);
    `settings` (where, tree) is one run of a sweep file (sweep.py)."""
    layers = [(str(file), read_yaml(Path(file))) for file in (base, path) if file is not None]
    if settings is not None:
        layers.append(settings)
    if overrides:
        layers.append(("command line", overrides_to_tree(overrides)))
    return _merge(layers)


def read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections")
    return tree


def load_config_text(text: str, where: str = "saved config") -> Config:
    """A config from YAML text (the config.yaml of a run, or a checkpoint's copy of it)."""
    return _merge([(where, yaml.safe_load(text) or {})])


# Configs written before `model.cell_dims` (config.yaml, a checkpoint's copy, a YAML file) are read
# as they were meant. Before the cells, a tree had these model keys and no cell key: one global
# vector. Then `model.spatial_dims` counted the cells' dims in all, and `latent_dim` was D.
MODEL_KEYS_BEFORE_CELLS = {"arch", "latent_dim", "embed_dim", "channels", "blocks"}


def _old_model_keys(tree: dict, grid_size: int, where: str) -> dict:
    model = tree.get("model")
    if not isinstance(model, dict) or "cell_dims" in model:
        return tree
    if "spatial_dims" in model:
        if where == "command line":
            raise ConfigError(
                "command line: model.spatial_dims was replaced by model.cell_dims (dims for each "
                "2x2-pixel cell) and model.latent_dim (the global vector's dims)"
            )
        model = dict(model)
        spatial = model.pop("spatial_dims")
        grid_size = tree.get("data", {}).get("grid_size", grid_size)
        cells = ((grid_size + 1) // 2) ** 2
        model["latent_dim"] = model.get("latent_dim", 1832) - spatial
        model["cell_dims"] = spatial // cells
        return {**tree, "model": model}
    if MODEL_KEYS_BEFORE_CELLS <= model.keys():
        return {**tree, "model": {**model, "cell_dims": 0}}
    return tree


def _merge(layers: list[tuple[str, dict]]) -> Config:
    merged = OmegaConf.structured(Config)
    for where, tree in layers:
        tree = _old_model_keys(tree, merged.data.grid_size, where)
        _check_unknown(tree, Config(), where)
        try:
            merged = OmegaConf.merge(merged, tree)
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", None) or "?"
            raise ConfigError(
                f"{where}: bad value for '{key}': {exc.msg.splitlines()[0]}"
            ) from None
    cfg: Config = OmegaConf.to_object(merged)
    resolve_defaults(cfg)
    validate(cfg)
    return cfg


def to_dict(cfg: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg))


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def config_hash(cfg: Config) -> str:
    return hashlib.sha256(json.dumps(to_dict(cfg), sort_keys=True).encode()).hexdigest()[:16]


def diff_keys(a: Config, b: Config) -> list[str]:
    """Dotted keys whose values differ between two configs."""
    flat_a = _flatten(to_dict(a))
    flat_b = _flatten(to_dict(b))
    return sorted(k for k in flat_a.keys() | flat_b.keys() if flat_a.get(k) != flat_b.get(k))


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix + key + "."))
        else:
            flat[prefix + key] = value
    return flat
