import os
import stat
import threading
import time

import numpy as np
import pandas as pd
import pytest

from nbtrade import cache as cache_mod
from nbtrade.cache import Cache, cached, clear_disk, default_root, disk_summary, fingerprint, make_key


# ----------------------------------------------------------------------------- keys

def test_fingerprint_by_content_not_identity():
    a = np.arange(10.0)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.astype(np.float32))      # dtype matters
    assert fingerprint(a) != fingerprint(a.reshape(2, 5))            # shape matters
    b = a.copy()
    b[3] += 1e-12
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a[::2]) == fingerprint(np.ascontiguousarray(a[::2]))


def test_fingerprint_frames_include_index_and_columns():
    idx = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC")
    df = pd.DataFrame({"a": np.arange(5.0), "b": np.ones(5)}, index=idx)
    assert fingerprint(df) == fingerprint(df.copy())
    assert fingerprint(df) != fingerprint(df.rename(columns={"b": "c"}))
    assert fingerprint(df) != fingerprint(df.set_axis(idx + pd.Timedelta("1h")))
    assert fingerprint(df) != fingerprint(df[["b", "a"]])
    assert fingerprint(df["a"]) != fingerprint(df["a"].rename("z"))


def test_fingerprint_dict_order_insensitive_and_types_tagged():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint(1) != fingerprint(1.0) != fingerprint("1")
    assert fingerprint((1, 2)) != fingerprint([1, 2])
    assert make_key("f", x=1, y=2) == make_key("f", y=2, x=1)
    assert len(make_key("f")) == 64


def test_fingerprint_estimator_by_params():
    from sklearn.ensemble import RandomForestClassifier

    a = RandomForestClassifier(n_estimators=10, max_depth=3)
    assert fingerprint(a) == fingerprint(RandomForestClassifier(max_depth=3, n_estimators=10))
    assert fingerprint(a) != fingerprint(RandomForestClassifier(n_estimators=11, max_depth=3))


def test_default_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NBTRADE_HOME", str(tmp_path))
    assert default_root() == tmp_path / "cache"
    monkeypatch.delenv("NBTRADE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "x"))
    assert default_root() == tmp_path / "x" / "nbtrade" / "cache"


# ----------------------------------------------------------------------------- memory level

def test_get_set_contains_delete_clear():
    c = Cache(maxsize=10)
    assert c.get("k") is None and c.get("k", 5) == 5
    c.set("k", [1, 2])
    assert c.contains("k") and "k" in c and c.get("k") == [1, 2]
    assert c.delete("k") and not c.delete("k")
    c.set("a", 1)
    c.clear()
    assert not c.contains("a")
    s = c.stats()
    assert s.hits == 1 and s.misses == 2 and s.sets == 2 and 0 < s.hit_rate < 1


def test_lru_eviction_by_count():
    c = Cache(maxsize=2)
    c.set("a", 1)
    c.set("b", 2)
    c.get("a")           # a becomes most recent
    c.set("c", 3)        # evicts b
    assert c.contains("a") and c.contains("c") and not c.contains("b")
    assert c.stats().evictions == 1 and c.stats().entries == 2


def test_lru_eviction_by_bytes():
    c = Cache(maxsize=None, maxbytes=3 * 8000)
    for i in range(5):
        c.set(f"k{i}", np.zeros(1000))  # 8000 bytes each
    s = c.stats()
    assert s.entries == 3 and s.bytes <= 3 * 8000 and s.evictions == 2
    assert not c.contains("k0") and c.contains("k4")


def test_ttl_expiry(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(cache_mod.time, "time", lambda: now[0])
    c = Cache(ttl=10)
    c.set("a", 1)
    c.set("b", 2, ttl=100)
    now[0] += 11
    assert c.get("a") is None and c.get("b") == 2
    assert c.stats().expired == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="maxsize"):
        Cache(maxsize=-1)
    with pytest.raises(ValueError, match="ttl"):
        Cache(ttl=0)
    with pytest.raises(ValueError, match="key"):
        Cache().set("../etc/passwd", 1)
    with pytest.raises(TypeError, match="callable"):
        cached(5)


# ----------------------------------------------------------------------------- disk level

def test_disk_roundtrip_survives_restart_and_key_file_is_private(tmp_path):
    c = Cache(tmp_path / "c")
    df = pd.DataFrame({"x": np.arange(100.0)})
    c.set("frame", df, cost=2.5)
    mode = stat.S_IMODE(os.stat(tmp_path / "c" / ".hmac-key").st_mode)
    assert mode == 0o600
    c2 = Cache(tmp_path / "c")     # a new process would see the same
    got = c2.get("frame")
    pd.testing.assert_frame_equal(got, df)
    s = c2.stats()
    assert s.disk_hits == 1 and s.time_saved == pytest.approx(2.5) and s.disk_entries == 1
    assert not list((tmp_path / "c").glob(".tmp-*"))


@pytest.mark.parametrize("how", ["flip_payload", "flip_meta", "truncate", "garbage", "swap"])
def test_tampered_file_refused_deleted_never_unpickled(tmp_path, monkeypatch, how):
    c = Cache(tmp_path)
    c.set("a", {"v": 1})
    c.set("b", {"v": 2})
    f = tmp_path / "a.nbc"
    data = bytearray(f.read_bytes())
    if how == "flip_payload":
        data[-3] ^= 0xFF
    elif how == "flip_meta":
        data[45] ^= 0x01
    elif how == "truncate":
        data = data[:20]
    elif how == "garbage":
        data = bytearray(b"\x80\x04junk" * 10)
    else:  # a valid file of another key renamed onto this one
        data = bytearray((tmp_path / "b.nbc").read_bytes())
    f.write_bytes(bytes(data))
    fresh = Cache(tmp_path)
    called = []
    monkeypatch.setattr(cache_mod.pickle, "loads", lambda *a, **k: called.append(1))
    assert fresh.get("a") is None
    assert not called
    assert not f.exists() and fresh.stats().corrupt == 1
    # and recomputed through the normal path
    monkeypatch.undo()
    assert fresh.get_or_compute("a", lambda: {"v": 1}) == {"v": 1}
    assert Cache(tmp_path).get("a") == {"v": 1}


def test_other_cache_key_refuses_entries(tmp_path):
    c = Cache(tmp_path)
    c.set("a", 1)
    (tmp_path / ".hmac-key").unlink()   # key lost: a new one is made, old files no longer verify
    c2 = Cache(tmp_path)
    assert c2.get("a") is None and c2.stats().corrupt == 1


def test_disk_eviction_and_ttl(tmp_path, monkeypatch):
    c = Cache(tmp_path, maxsize=0, disk_maxsize=2)
    for i, k in enumerate("abc"):
        c.set(k, i)
        os.utime(tmp_path / f"{k}.nbc", (1000 + i, 1000 + i))
        c._disk[k] = (c._disk[k][0], 1000 + i)
    assert sorted(p.stem for p in tmp_path.glob("*.nbc")) == ["b", "c"]
    now = [time.time()]
    monkeypatch.setattr(cache_mod.time, "time", lambda: now[0])
    t = Cache(tmp_path / "t", ttl=5)
    t.set("x", 1)
    now[0] += 6
    assert Cache(tmp_path / "t").get("x") is None
    assert not (tmp_path / "t" / "x.nbc").exists()


def test_disk_eviction_by_bytes(tmp_path):
    c = Cache(tmp_path, maxsize=0, disk_maxbytes=3000)
    rng = np.random.default_rng(0)
    for i in range(5):
        c.set(f"k{i}", rng.random(100))  # ~900 bytes each, incompressible
    s = c.stats()
    assert s.disk_bytes <= 3000 and s.disk_entries < 5 and s.evictions >= 2
    assert c.get("k4") is not None


def test_stats_saved_and_summarised(tmp_path):
    c = Cache(tmp_path / "one")
    c.set("a", 1)
    c.get("a")
    c.get("zz")
    c.save_stats()
    rows = disk_summary(tmp_path)
    assert rows[0]["cache"] == "one" and rows[0]["entries"] == 1 and rows[0]["hits"] == 1
    assert clear_disk(tmp_path) == 2
    assert disk_summary(tmp_path) == []


# ----------------------------------------------------------------------------- decorator

def test_decorator_hits_and_arg_binding():
    calls = []

    @cached(maxsize=8)
    def f(a, b=2, *, c=3):
        calls.append((a, b, c))
        return a + b + c

    assert f(1) == f(1, 2) == f(a=1, b=2, c=3) == f(c=3, b=2, a=1) == 6
    assert len(calls) == 1
    arr = np.arange(3.0)
    f(arr)
    f(arr.copy())
    assert len(calls) == 2
    info = f.cache_info()
    assert info.hits == 4 and info.misses == 2
    f.cache_clear()
    f(1)
    assert len(calls) == 3


def test_decorator_disk_and_version(tmp_path):
    calls = []

    def g(x):
        calls.append(x)
        return np.full(3, x)

    g1 = cached(g, disk=tmp_path, version="1")
    np.testing.assert_array_equal(g1(2), [2, 2, 2])
    g1b = cached(g, disk=tmp_path, version="1")   # "restart": fresh memory, same disk
    g1b(2)
    assert len(calls) == 1 and g1b.cache_info().disk_hits == 1
    g2 = cached(g, disk=tmp_path, version="2")   # code changed: new key
    g2(2)
    assert len(calls) == 2


def test_decorator_disk_true_uses_nbtrade_home(tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRADE_HOME", str(tmp_path))

    @cached(disk=True)
    def h(x):
        return x * 2

    assert h(4) == 8
    assert list((tmp_path / "cache" / "fn").rglob("*.nbc"))


def test_threads_compute_once_and_stay_consistent(tmp_path):
    calls = []
    lock = threading.Lock()

    @cached(maxsize=4, disk=tmp_path)
    def slow(x):
        with lock:
            calls.append(x)
        time.sleep(0.02)
        return x * x

    errors = []

    def worker(i):
        try:
            for j in range(30):
                assert slow((i + j) % 6) == ((i + j) % 6) ** 2
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = slow.cache_info()
    assert s.hits + s.misses == 240 and s.entries <= 4
    assert sorted(set(calls)) == list(range(6))
    assert calls.count(0) <= 1 + s.evictions  # single flight: no duplicate concurrent computes


def test_print_summary(tmp_path, capsys, monkeypatch):
    from nbtrade.cache import print_summary

    monkeypatch.setenv("COLUMNS", "200")
    assert print_summary(tmp_path) == 0
    assert "(empty)" in capsys.readouterr().out
    c = Cache(tmp_path / "models")
    c.set("a", np.zeros(1000))
    c.get("a")
    c.save_stats()
    assert print_summary(tmp_path) == 0
    out = capsys.readouterr().out
    assert "models" in out and "100.0 %" in out


def test_unwritable_disk_warns_and_keeps_memory(tmp_path, monkeypatch):
    c = Cache(tmp_path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "atomic_write", boom)
    with pytest.warns(UserWarning, match="disk full"):
        c.set("a", 1)
    assert c.get("a") == 1 and not list(tmp_path.glob("*.nbc"))


def test_lru_matches_reference_model():
    """Random get/set/delete sequences against a plain OrderedDict LRU bounded by count and bytes."""
    from collections import OrderedDict

    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(st.tuples(st.sampled_from(["get", "set", "delete"]), st.integers(0, 7), st.integers(1, 5)),
                   max_size=60)

    @settings(max_examples=150, deadline=None)
    @given(ops, st.integers(1, 5), st.integers(8, 40))
    def check(seq, maxsize, maxbytes):
        c = Cache(maxsize=maxsize, maxbytes=maxbytes)
        ref: OrderedDict = OrderedDict()
        for op, k, size in seq:
            key = f"k{k}"
            if op == "set":
                value = b"x" * size
                ref.pop(key, None)
                ref[key] = value
                while len(ref) > maxsize or sum(map(len, ref.values())) > maxbytes:
                    ref.popitem(last=False)
                c.set(key, value)
            elif op == "get":
                expect = ref.get(key)
                if expect is not None:
                    ref.move_to_end(key)
                assert c.get(key) == expect
            else:
                assert c.delete(key) == (ref.pop(key, None) is not None)
            assert c.keys() == list(ref)
            assert c.stats().bytes == sum(map(len, ref.values()))

    check()


# --- keys on content (issue 14) ------------------------------------------------------------
def _make_scaler(k):
    def scale(x):
        return x * k
    return scale


def _fitted(slope):
    from sklearn.linear_model import LinearRegression

    X = np.arange(20.0).reshape(-1, 1)
    return LinearRegression().fit(X, slope * X[:, 0])


CONTENT_PAIRS = {
    "closures": lambda: (_make_scaler(2), _make_scaler(3)),
    "random.Random": lambda: (__import__("random").Random(1), __import__("random").Random(2)),
    "numpy Generator": lambda: (np.random.default_rng(1), np.random.default_rng(2)),
    "pd.Period": lambda: (pd.Period("2024-01", "M"), pd.Period("2024-02", "M")),
    "pd.Period freq": lambda: (pd.Period("2024-01", "M"), pd.Period("2024-01", "D")),
    "pd.Categorical order": lambda: (pd.Categorical(["a", "b"]), pd.Categorical(["b", "a"])),
    "categories order": lambda: (pd.Categorical(["a", "b"], categories=["a", "b"]),
                                 pd.Categorical(["a", "b"], categories=["b", "a"])),
    "categorical Series": lambda: (pd.Series(["a", "b"], dtype="category"),
                                   pd.Series(["b", "a"], dtype="category")),
    "fitted models, equal params": lambda: (_fitted(1.0), _fitted(2.0)),
    "bound methods": lambda: (__import__("random").Random(1).random, __import__("random").Random(2).random),
    "defaults": lambda: ((lambda x, k=1: x * k), (lambda x, k=2: x * k)),
    "slots": lambda: (_Slotted(1), _Slotted(2)),
}


class _Slotted:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    def __reduce__(self):
        return (_Slotted, (self.v,))


@pytest.mark.parametrize("case", sorted(CONTENT_PAIRS))
def test_cached_keys_on_content_not_repr_or_class(case):
    a, b = CONTENT_PAIRS[case]()
    assert fingerprint(a) != fingerprint(b), case
    calls = []

    @cached
    def f(x):
        calls.append(1)
        return len(calls)

    assert f(a) == 1 and f(b) == 2 and f(a) == 1  # no stale value for b
    a2, _ = CONTENT_PAIRS[case]()
    if case not in ("numpy Generator",):  # rebuilt equal: same key
        assert fingerprint(a2) == fingerprint(a), case


def test_recursive_closure_keys():
    def outer(n):
        def fact(k):
            return 1 if k <= 1 else k * fact(k - 1) * n
        return fact

    assert fingerprint(outer(1)) != fingerprint(outer(2))
    assert fingerprint(outer(1)) == fingerprint(outer(1))


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_keys_do_not_depend_on_time_resolution(unit):
    idx = pd.date_range("2024-01-01", periods=48, freq="h", tz="UTC")
    df = pd.DataFrame({"close": np.arange(48.0), "t": idx}, index=idx)
    other = pd.DataFrame({"close": np.arange(48.0), "t": idx.as_unit(unit)}, index=idx.as_unit(unit))
    assert fingerprint(df) == fingerprint(other)
    assert fingerprint(df["close"]) == fingerprint(other["close"])
    assert fingerprint(idx) == fingerprint(idx.as_unit(unit))
    assert fingerprint(idx[3]) == fingerprint(idx.as_unit(unit)[3])
    assert fingerprint(idx.to_numpy()) == fingerprint(idx.as_unit(unit).to_numpy())
    assert fingerprint(idx) != fingerprint(idx.tz_convert("Asia/Tokyo"))  # another zone is another index
    assert fingerprint(idx) != fingerprint(idx + pd.Timedelta("1s"))


def test_cached_calls_with_any_time_resolution_hit_one_key(tmp_path):
    """@cached (memory and disk): the same instants in s, ms, us and ns are one entry, one call."""
    calls = []

    @cached(maxsize=8, disk=tmp_path)
    def total(df, when):
        calls.append(df.index.unit)
        return float(df["close"].sum())

    idx = pd.date_range("2024-01-01", periods=24, freq="h", tz="UTC")
    for unit in ("ns", "s", "ms", "us"):
        i = idx.as_unit(unit)
        df = pd.DataFrame({"close": np.arange(24.0), "t": i.tz_localize(None)}, index=i)
        assert total(df, i[5]) == 276.0
    assert calls == ["ns"]
    df = pd.DataFrame({"close": np.arange(24.0)}, index=idx.as_unit("s") + pd.Timedelta("1s"))
    total(df, idx[5])  # other instants: another key
    assert len(calls) == 2


def test_arguments_that_cannot_be_keyed_are_refused_by_name():
    import threading

    @cached
    def g(data, lock):
        return 1

    with pytest.raises(TypeError, match=r"argument 'lock' cannot be part of a cache key.*_thread.lock.*ignore"):
        g(1, threading.Lock())

    @cached(ignore=["lock"])
    def h(data, lock):
        return 2

    assert h(1, threading.Lock()) == 2
    with pytest.raises(TypeError, match="module"):
        fingerprint(np)
    gen = (i for i in range(3))
    with pytest.raises(TypeError, match="generator"):
        fingerprint(gen)


def test_self_containing_arguments_are_refused_by_name():
    loop = [1]
    loop.append(loop)

    @cached
    def f(x, y=0):
        return 1

    with pytest.raises(TypeError, match=r"argument 'x'.*nested more than 50 levels"):
        f(loop)
    assert f([1, [2]]) == 1
