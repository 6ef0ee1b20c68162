"""The CI tasks (lint, typecheck, test, policy) run the commands CI relies on, with the flags it uses."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest
from invoke import Context, MockContext, Result


@pytest.fixture
def ran(collection: Any):
    def run(task: str, **kwargs: object) -> list[str]:
        context = MockContext(run={re.compile(".*"): Result("")}, repeat=True)
        collection[task].body(context, **kwargs)
        return [call.args[0] for call in context.run.call_args_list]
    return run


def test_lint_is_ruff_over_the_repository(ran) -> None:
    assert ran("lint") == [f"{sys.executable} -m ruff check ."]
    assert ran("lint", fix=True) == [f"{sys.executable} -m ruff check --fix ."]


def test_typecheck_covers_the_program_ops_and_the_pack(ran) -> None:
    assert ran("typecheck") == [
        f"{sys.executable} -m mypy infra ops policy/refarch_policies.py ci/bootstrap/refarch_ci_bootstrap.py"]


def test_test_runs_pytest_on_two_workers_by_default(ran) -> None:
    assert ran("test") == [f"{sys.executable} -m pytest -n 2"]
    assert ran("test", workers=0, k="policy and not slow") == [f"{sys.executable} -m pytest -n 0 -k 'policy and not slow'"]


def test_policy_task_exits_cleanly_on_a_bad_synth_file(collection: Any, tmp_path) -> None:
    from invoke import Exit

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(Exit) as failure:
        collection["policy"].body(Context(), stack="dev", synth=str(bad))
    assert failure.value.code == 1 and f"{bad}: not valid JSON" in str(failure.value.message)
