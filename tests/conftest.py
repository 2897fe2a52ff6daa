import os

import numpy as np
import pytest

# pytest-xdist's workers get COLUMNS=80 / LINES=24; the CLI sizes tables off a terminal from
# COLUMNS, so drop them and every worker prints as a plain pytest run does
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
