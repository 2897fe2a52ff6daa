from pathlib import Path

import pytest

from nbtrade.config import load_settings


def test_defaults_under_home(tmp_path):
    s = load_settings(env={"NBTRADE_HOME": str(tmp_path)})
    assert s.home == tmp_path and s.store == tmp_path / "data" and s.cache == tmp_path / "cache"
    assert s.seed == 42 and s.base_url is None


def test_precedence_flags_env_file(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('seed = 1\nbase_url = "http://127.0.0.1:1"\nreports = "/tmp/r"\n')
    env = {"NBTRADE_HOME": str(tmp_path), "NBTRADE_SEED": "2"}
    s = load_settings(env=env)
    assert s.seed == 2 and s.base_url == "http://127.0.0.1:1" and s.reports == Path("/tmp/r")
    s = load_settings(flags={"seed": 3, "base_url": None}, env=env)
    assert s.seed == 3 and s.base_url == "http://127.0.0.1:1"


def test_bad_config_is_clear(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("nonsense = 1\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_settings(env={"NBTRADE_HOME": str(tmp_path)})
    cfg.write_text("seed = [\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_settings(env={"NBTRADE_HOME": str(tmp_path)})
    with pytest.raises(ValueError, match="seed"):
        load_settings(env={"NBTRADE_HOME": str(tmp_path / "x"), "NBTRADE_SEED": "abc"})
