"""`principia verify --shard` defaults to the SLURM job-array task (verify.shard_from_env)."""
from __future__ import annotations

import pytest

from principia.verify import parse_shard, shard_from_env


def test_no_slurm_array_means_no_shard():
    """Outside a job array there is no default shard."""
    assert shard_from_env({}) is None


@pytest.mark.parametrize("first", [0, 1])
def test_array_tasks_map_to_one_based_shards(first):
    """--array=0-3 and --array=1-4 both give shards 1/4 … 4/4."""
    got = [shard_from_env({"SLURM_ARRAY_TASK_ID": str(first + i), "SLURM_ARRAY_TASK_MIN": str(first),
                           "SLURM_ARRAY_TASK_COUNT": "4"}) for i in range(4)]
    assert got == ["1/4", "2/4", "3/4", "4/4"] and parse_shard(got[-1]) == (4, 4)


def test_a_malformed_task_id_is_a_clear_error():
    """A non-integer task id names the variables instead of raising a bare ValueError."""
    with pytest.raises(ValueError, match="SLURM_ARRAY_TASK_ID"):
        shard_from_env({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"})
