"""Config (config.py, the schema, and config_io.py, its loading): errors that name the key, dotted
overrides, configs/default.yaml kept equal to the schema, and property-based tests (issue 6): random
config trees, overrides and text load or raise a clean ArcVaeError, never another exception."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arcvae.commands.sweep import plan
from arcvae.config import Config
from arcvae.config_io import _known_keys, diff_keys, load_config, load_config_text, to_dict, to_yaml
from arcvae.errors import ArcVaeError, ConfigError

DEFAULT_YAML = ROOT / "configs" / "default.yaml"


def _error(*overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(None, list(overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


def _leaf_keys() -> list[str]:
    sections = {f.split(".")[0] for f in _known_keys(Config()) if "." in f}
    return [k for k in _known_keys(Config()) if k not in sections]


# ---------------------------------------------------------------- errors name the key


@pytest.mark.parametrize(
    "override, unknown, closest",
    [
        ("train.lrr=1", "train.lrr", "train.lr"),
        ("train.epoch=1", "train.epoch", "train.epochs"),
        ("model.latent_dims=1", "model.latent_dims", "model.latent_dim"),
        ("data.gridsize=1", "data.gridsize", "data.grid_size"),
        ("trian.lr=1", "trian", "train"),
    ],
)
def test_an_unknown_key_is_named_with_the_closest_valid_one(override, unknown, closest):
    message = _error(override)
    assert f"unknown config key '{unknown}'" in message and f"did you mean '{closest}'" in message


def test_an_unknown_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  batchsize: 8\n")
    with pytest.raises(
        ConfigError,
        match=r"bad\.yaml: unknown config key 'train\.batchsize' \(did you mean "
        r""
        r"'train\.batch_size'\?\)",
    ):
        load_config(path)


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.lr=fast", "train.lr"),
        ("train.epochs=1.5", "train.epochs"),
        ("data.augment=maybe", "data.augment"),
        ("model.channels=wide", "model.channels"),
        ("data.grid_size=[1]", "data.grid_size"),
    ],
)
def test_a_wrong_type_names_the_key(override, key):
    assert f"'{key}'" in _error(override)


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.lr=-0.001", "train.lr"),
        ("train.lr=0", "train.lr"),
        ("beta.max_beta=-0.1", "beta.max_beta"),
        ("data.grid_size=31", "data.grid_size"),
        ("data.grid_size=0", "data.grid_size"),
        ("train.epochs=0", "train.epochs"),
        ("model.channels=[]", "model.channels"),
        ("model.channels=[8,-1]", "model.channels"),
        ("train.seed=-1", "train.seed"),
        ("train.seed=4294967296", "train.seed"),
        ("monitor.rate_floor_bits=-1", "monitor.rate_floor_bits"),
    ],
)
def test_an_out_of_range_value_names_the_key(override, key):
    assert _error(override).startswith(key + ":")


def test_an_unknown_choice_suggests_the_closest():
    message = _error("beta.schedule=cyclic")
    assert message.startswith("beta.schedule:") and "did you mean 'cyclical'" in message


def test_a_malformed_override_or_missing_file_is_a_config_error(tmp_path):
    assert "key.sub=value" in _error("train.lr")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- merging
def test_a_base_file_sits_under_the_config_file_and_the_overrides(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train:\n  epochs: 7\n  lr: 0.01\nbeta:\n  max_beta: 2.0\n")
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  lr: 0.02\n")
    cfg = load_config(config, ["beta.max_beta=1.0"], base=base)
    assert (cfg.train.epochs, cfg.train.lr, cfg.beta.max_beta) == (7, 0.02, 1.0)
    (tmp_path / "bad.yaml").write_text("train:\n  epohcs: 3\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(config, base=tmp_path / "bad.yaml")


def test_dotted_overrides_are_typed_and_win_over_the_file():
    cfg = load_config(
        ROOT / "configs" / "cpu_small.yaml",
        [
            "train.epochs=5",
            "beta.max_beta=0.2",
            "model.channels=[8,16]",
            "data.source=arc2",
            "train.lr=3e-4",
            "data.cache_dir=null",
        ],
    )
    assert cfg.train.epochs == 5 and isinstance(cfg.train.epochs, int)
    assert cfg.beta.max_beta == 0.2 and cfg.model.channels == [8, 16]
    assert (
        cfg.data.source == "arc2"
        and cfg.train.lr == pytest.approx(3e-4)
        and cfg.data.cache_dir is None
    )
    assert cfg.data.grid_size == 16  # from the file, untouched by the overrides


def test_null_beta_keys_take_the_schedules_defaults():
    assert load_config(None).beta.max_beta == 0.5
    cfg = load_config(None, ["beta.schedule=ultra_conservative"])
    assert (cfg.beta.max_beta, cfg.beta.warmup_epochs, cfg.beta.ramp_epochs) == (0.1, 20.0, 60.0)


def test_a_resolved_config_round_trips_through_yaml():
    cfg = load_config(ROOT / "configs" / "cpu_small.yaml", ["train.seed=7"])
    assert diff_keys(load_config_text(to_yaml(cfg)), cfg) == []


# ---------------------------------------------------------------- configs/ on disk


def test_default_yaml_equals_the_schema_defaults_exactly():
    raw = yaml.safe_load(DEFAULT_YAML.read_text())
    assert raw == to_dict(Config())  # null β keys stay null in the file, as in the schema
    assert diff_keys(load_config(DEFAULT_YAML), load_config(None)) == []


def test_every_schema_key_is_in_default_yaml_with_a_comment_on_its_line():
    section, seen = None, {}
    for line in DEFAULT_YAML.read_text().splitlines():
        match = re.match(r"^( *)([a-z_]+):", line)
        if not match:
            continue
        if not match.group(1):
            section = match.group(2)
            continue
        seen[f"{section}.{match.group(2)}"] = "#" in line.split(":", 1)[1]
    missing = [k for k in _leaf_keys() if k not in seen]
    uncommented = [k for k in _leaf_keys() if not seen.get(k, True)]
    assert missing == [] and uncommented == []


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "configs").rglob("*.yaml")),
    ids=lambda p: str(p.relative_to(ROOT / "configs")),
)
# the results/ studies' too: a sweep must not die on its last config
def test_every_config_file_loads(path):
    if "sweep" in yaml.safe_load(path.read_text()):  # a sweep file: each of its runs
        runs = plan([str(path)], None, Path("runs"))
        assert runs and all(
            isinstance(load_config(None, settings=run.settings), Config) for run in runs
        )
    else:
        assert isinstance(load_config(path), Config)


# ---------------------------------------------------------------- property-based: random configs

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KNOWN = _known_keys(Config())
SECTIONS = [k for k in KNOWN if "." not in k]
keys = st.sampled_from(KNOWN) | st.text(min_size=1, max_size=8)
yaml_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.lists(st.integers(-5, 300) | st.text(max_size=3), max_size=4)
    | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)
)


@st.composite
def config_trees(draw):
    """Sections known and unknown, holding keys known and unknown, with values of any type."""
    section = st.sampled_from(SECTIONS) | st.text(max_size=6)
    leaf_key = keys.map(lambda k: k.split(".")[-1])
    body = st.dictionaries(leaf_key, yaml_values, max_size=4) | yaml_values
    return draw(st.dictionaries(section, body, max_size=4))


def load_clean(path=None, overrides=None) -> None:
    try:
        cfg = load_config(path, overrides)
    except ArcVaeError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(cfg, Config)


@FUZZ
@given(config_trees())
def test_random_config_files_load_or_raise_a_clean_error(tree):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump(tree))
        load_clean(path)


overrides = st.tuples(keys, st.text(max_size=10)).map(lambda kv: f"{kv[0]}={kv[1]}") | st.text(
    max_size=12
)


@FUZZ
@given(st.lists(overrides, max_size=4))
def test_random_overrides_load_or_raise_a_clean_error(overrides):
    load_clean(None, overrides)


@FUZZ
@given(st.text(max_size=120))
def test_random_text_as_a_config_file_loads_or_raises_a_clean_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(text)
        load_clean(path)
