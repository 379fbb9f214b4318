import pytest

from e2e_helpers import Cluster


@pytest.fixture
def cluster(tmp_path):
    """Gateway + 2 cpu nodes (one slot each) registered through --gateway, on ephemeral ports."""
    c = Cluster(tmp_path)
    yield c
    c.close()
