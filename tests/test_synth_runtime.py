"""The runtime shortcuts of an offline synth keep Pulumi's semantics and are undone afterwards."""

from __future__ import annotations

import gc

import pytest

from ops.synth import record


def _run(program):
    return record(program, project="refarch", stack="t", region="us-east-1")


def test_a_resource_made_inside_an_apply_is_still_recorded():
    import pulumi
    import pulumi_aws as aws

    def program():
        bucket = aws.s3.Bucket("first")
        # Registered only once the bucket's id resolves: the run must wait for the apply.
        bucket.id.apply(lambda bucket_id: aws.s3.BucketVersioning(
            "later", bucket=bucket_id, versioning_configuration={"status": "Enabled"}))
        pulumi.export("bucket", bucket.bucket)

    synth = _run(program)
    later = synth.one("aws:s3/bucketVersioning:BucketVersioning", "later")
    assert later["inputs"]["bucket"] == synth.one("aws:s3/bucket:Bucket", "first")["id"]


def test_an_error_inside_an_apply_fails_the_synth():
    import pulumi_aws as aws

    def broken(_: str) -> None:
        raise ValueError("derived name too long")

    def program():
        aws.s3.Bucket("first").id.apply(broken)

    with pytest.raises(Exception, match="derived name too long"):
        _run(program)


def test_the_runtime_is_unchanged_after_a_synth_even_a_failed_one():
    import pulumi
    from pulumi import _types
    from pulumi.runtime import resource as runtime_resource

    before = (pulumi.Output._track, _types.unwrap_type, runtime_resource._get_stack_trace, gc.isenabled())

    def program():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _run(program)
    _run(lambda: None)
    assert (pulumi.Output._track, _types.unwrap_type, runtime_resource._get_stack_trace, gc.isenabled()) == before


def test_registrations_run_on_the_calling_thread(monkeypatch):
    import threading

    import pulumi_aws as aws

    from ops import mocks

    threads: set[str] = set()
    new_resource = mocks.AwsLikeMocks.new_resource

    def spy(self, args):
        threads.add(threading.current_thread().name)
        return new_resource(self, args)

    monkeypatch.setattr(mocks.AwsLikeMocks, "new_resource", spy)
    _run(lambda: [aws.s3.Bucket(f"b{i}") for i in range(3)])
    assert threads == {threading.current_thread().name}
