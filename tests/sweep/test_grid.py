import pytest

from nbtrade.sweep import grid, parse_param
from nbtrade.sweep.grid import check_names


def test_product_order_last_fastest_and_fixed_values():
    g = grid({"a": [1, 2], "b": [10, 20, 30], "c": "x"})
    assert g[:4] == [{"a": 1, "b": 10, "c": "x"}, {"a": 1, "b": 20, "c": "x"}, {"a": 1, "b": 30, "c": "x"},
                     {"a": 2, "b": 10, "c": "x"}]
    assert len(g) == 6


def test_constraint_and_sampling():
    g = grid({"fast": range(5, 55, 5), "slow": range(10, 110, 10)}, constraint=lambda p: p.fast < p.slow)
    assert all(p["fast"] < p["slow"] for p in g) and len(g) == 75
    s = grid({"fast": range(5, 55, 5), "slow": range(10, 110, 10)}, constraint=lambda p: p.fast < p.slow,
             max_tries=7, seed=1)
    assert len(s) == 7 and all(p in g for p in s)
    assert s == grid({"fast": range(5, 55, 5), "slow": range(10, 110, 10)}, constraint=lambda p: p.fast < p.slow,
                     max_tries=7, seed=1)


def test_list_of_dicts():
    combos = [{"fast": 5, "slow": 50}, {"fast": 10, "slow": 30}]
    assert grid(combos) == combos


def test_huge_grid_refused_with_count_and_estimate_unless_sampled():
    params = {"a": range(1000), "b": range(1001)}
    with pytest.raises(ValueError, match=r"1,001,000 combinations.*about 3 h.*max_tries"):
        grid(params, estimate=lambda n: "about 3 h")
    s = grid(params, max_tries=50, seed=0)
    assert len(s) == 50 and len({(p["a"], p["b"]) for p in s}) == 50


@pytest.mark.parametrize("params, match", [
    ({}, "params is empty"),
    ([], "empty list"),
    ({"a": []}, r"params\['a'\] has no values"),
    ({"1a": [1]}, "identifiers"),
])
def test_bad_grids(params, match):
    with pytest.raises(ValueError, match=match):
        grid(params)


def test_constraint_rejecting_everything():
    with pytest.raises(ValueError, match="constraint rejects every combination"):
        grid({"a": [1, 2]}, constraint=lambda p: False)


def test_bad_max_tries():
    with pytest.raises(ValueError, match="max_tries"):
        grid({"a": [1, 2]}, max_tries=0)


def test_unknown_parameter_name():
    def fn(market, fast, slow):
        pass

    check_names(fn, ["fast", "slow"])
    with pytest.raises(ValueError, match="unknown parameter 'slwo'.*fast, slow"):
        check_names(fn, ["fast", "slwo"])
    check_names(lambda market, **kw: None, ["anything"])


@pytest.mark.parametrize("text, expected", [
    ("fast=5:50:5", ("fast", list(range(5, 55, 5)))),
    ("slow=60:240:20", ("slow", list(range(60, 260, 20)))),
    ("fast=5,10,20", ("fast", [5, 10, 20])),
    ("k=0.5:1.5:0.5", ("k", [0.5, 1.0, 1.5])),
    ("n=7", ("n", [7])),
    ("w=1:3", ("w", [1, 2, 3])),
])
def test_parse_param(text, expected):
    assert parse_param(text) == expected


@pytest.mark.parametrize("text", ["fast", "fast=5:1", "fast=1:5:0", "9x=1", "a=1:2:3:4"])
def test_parse_param_bad(text):
    with pytest.raises(ValueError, match="--param"):
        parse_param(text)


def test_doctests():
    import doctest
    import importlib

    grid_module = importlib.import_module("nbtrade.sweep.grid")
    run = importlib.import_module("nbtrade.sweep.run")

    assert doctest.testmod(grid_module).failed == 0
    assert doctest.testmod(run).failed == 0


def test_warmup_has_a_sweep_step():
    from nbtrade import warmup

    assert "sweep" in warmup.STEPS
