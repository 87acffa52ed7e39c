"""Typed configs: YAML round trip, strict keys, types and ranges; a fuzz test of the loader."""
import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lomit_fast.config import Config, ConfigError, load_config, save_config


CONFIGS = sorted(p.name for p in Path("configs").glob("*.yaml"))


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_round_trip(tmp_path, name):
    cfg = load_config(Path("configs") / name)
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_defaults_are_the_paper_settings():
    cfg = Config()
    assert cfg.model.content_channels == 256 and cfg.model.content_size == 32
    assert cfg.loss.self_reconstruction == 10 and cfg.loss.mask_sparsity == 1e-4
    assert cfg.train.betas == [0.5, 0.999] and cfg.train.generator_every == 5


def test_unknown_key_names_the_key(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  image_sise: 64\n")
    with pytest.raises(ConfigError, match=r"'model.image_sise'"):
        load_config(tmp_path / "c.yaml")


@pytest.mark.parametrize("text, key", [
    ("model:\n  image_size: big\n", "model.image_size"),
    ("train:\n  betas: 0.5\n", "train.betas"),
    ("train:\n  bf16: 1\n", "train.bf16"),
    ("data:\n  attributes: [a, 3]\n", r"data.attributes\[1\]"),
    ("loss: 3\n", "loss"),
])
def test_wrong_type_names_the_key(tmp_path, text, key):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_config(tmp_path / "c.yaml")


def test_ints_are_accepted_for_floats(tmp_path):
    (tmp_path / "c.yaml").write_text("loss:\n  cycle: 10\n")
    assert load_config(tmp_path / "c.yaml").loss.cycle == 10.0


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.parametrize("group, attributes", [
    ("hair", ["Black_Hair", "Blond_Hair", "Brown_Hair"]),
    ("gender_age", ["Male", "Young"]),
    ("facial_hair", ["Mustache", "Goatee", "No_Beard"]),
])
def test_per_group_celeba_configs_differ_only_in_the_attributes(group, attributes):
    full = load_config("configs/celeba_128.yaml").to_dict()
    cfg = load_config(f"configs/celeba_128_{group}.yaml")
    assert cfg.data.attributes == attributes and cfg.model.n_attributes == len(attributes)
    mine = cfg.to_dict()
    diff = {f"{s}.{k}" for s in full for k in full[s] if full[s][k] != mine[s][k]}
    assert diff == {"data.attributes", "model.n_attributes"}
    assert len(full["data"]["attributes"]) == 10  # the all-attributes model stays an option


@pytest.mark.parametrize("text, message", [
    ("train:\n  log_every: 0\n", r"'train.log_every': must be at least 1, got 0"),
    ("train:\n  batch_size: 0\n", r"'train.batch_size': must be at least 1"),
    ("train:\n  iterations: -5\n", r"'train.iterations': must be at least 1, got -5"),
    ("model:\n  hain_eps: -1.0e-5\n", r"'model.hain_eps': must be greater than 0"),
    ("loss:\n  cycle: .nan\n", r"'loss.cycle': must be finite, got nan"),
    ("loss:\n  cycle: -1\n", r"'loss.cycle': must be at least 0"),
    ("train:\n  lr: .inf\n", r"'train.lr': must be finite"),
    ("train:\n  betas: [0.5]\n", r"'train.betas': must be two numbers in \[0, 1\)"),
    ("train:\n  lr_constant_fraction: 1.5\n", r"'train.lr_constant_fraction': must be between"),
    ("data:\n  test_size: -1\n", r"'data.test_size': must be at least 0"),
    ("data:\n  kind: celebA\n", r"'data.kind': must be celeba, folders, table or synthetic"),
    ("model:\n  content_downsample: 100000000\n", r"'model.content_downsample': must be between"),
    ("model:\n  image_size: 100\n", r"'model.image_size': 100 must be a multiple of 64"),
    ("model:\n  n_attributes: 3\n", r"'model.n_attributes': 3 does not match the 10 names"),
    ("loss:\n  cycle: 1.0e+400\n", r"'loss.cycle': must be finite"),
    ("loss:\n  cycle: 1" + "0" * 400 + "\n", r"'loss.cycle': a 401-digit number is too large"),
    ("1: 2\n", r"key 1 is not a name"),
])
def test_values_out_of_range_name_the_key(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


def test_non_utf8_config_is_named(tmp_path):
    (tmp_path / "c.yaml").write_bytes(b"model:\n  image_size: \xff\n")
    with pytest.raises(ConfigError, match=r"c.yaml is not UTF-8 text \(byte 21\)"):
        load_config(tmp_path / "c.yaml")


# --- fuzz: whatever the file holds, the loader returns a valid config or raises ConfigError ----
SECTIONS = {f.name: [g.name for g in dataclasses.fields(f.type)]
            for f in dataclasses.fields(Config) if dataclasses.is_dataclass(f.type)}
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.integers(),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def loads_or_refuses(path):
    try:
        cfg = load_config(path)
    except ConfigError as e:
        assert "\n" not in str(e)  # one line
        return
    assert Config.from_dict(cfg.to_dict()) == cfg  # a config that loads is a valid one


@given(name=st.sampled_from(CONFIGS), changes=st.lists(st.tuples(
    st.sampled_from([(s, k) for s, keys in SECTIONS.items() for k in keys] + [("train", "x")]),
    VALUES), min_size=1, max_size=3))
@settings(max_examples=300, deadline=2000,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_changed_values(tmp_path, name, changes):
    data = yaml.safe_load((Path("configs") / name).read_text())
    for (section, key), value in changes:
        data[section][key] = value
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    loads_or_refuses(tmp_path / "c.yaml")


@given(data=st.one_of(VALUES, st.dictionaries(st.sampled_from([*SECTIONS, "x"]), VALUES)),
       raw=st.binary(max_size=200))
@settings(max_examples=200, deadline=2000,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_any_document_and_any_bytes(tmp_path, data, raw):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    loads_or_refuses(tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_bytes(raw)
    loads_or_refuses(tmp_path / "c.yaml")
