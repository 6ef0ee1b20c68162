"""`refarch:analytics`: every value Firehose, Athena or S3 would refuse is refused first, with its key path."""

from __future__ import annotations

import pytest

from tests.config.stack_values import SRC, problems


def test_the_shipped_stacks_take_the_defaults_and_pass(config_of):
    cfg = config_of("prod")
    a = cfg.analytics
    assert (a.enabled, a.buffer_seconds, a.buffer_mb, a.query_scan_limit_mb) == (True, 300, 128, 1024)
    assert (a.infrequent_access_days, a.expire_days) == (90, 730)
    assert a.events == ["product_viewed", "product_listed", "product_created"]
    assert cfg.analytics_enabled is True
    assert config_of("dev", analytics={"enabled": False}).analytics_enabled is False


@pytest.mark.parametrize(("section", "line"), [
    ({"buffer_mb": 5}, "refarch:analytics.buffer_mb: 5 MiB: Firehose converting records to Parquet buffers 64..128 MiB"),
    ({"buffer_mb": 129}, "refarch:analytics.buffer_mb: 129 MiB: Firehose converting records to Parquet buffers 64..128 MiB"),
    ({"buffer_seconds": 901}, "refarch:analytics.buffer_seconds: Input should be less than or equal to 900 (got 901)"),
    ({"buffer_seconds": -1}, "refarch:analytics.buffer_seconds: Input should be greater than or equal to 0 (got -1)"),
    ({"query_scan_limit_mb": 9}, "refarch:analytics.query_scan_limit_mb: 9 MB is below Athena's per-query floor of 10 MB"),
    ({"infrequent_access_days": 29}, "refarch:analytics.infrequent_access_days: 29 days: S3 moves objects to "
                                     "STANDARD_IA no earlier than 30 days"),
    ({"expire_days": 90}, "refarch:analytics.expire_days: 90 days expires the events before they move to "
                          "STANDARD_IA (infrequent_access_days 90): make it later"),
    ({"events": []}, "refarch:analytics.events: name at least one event the service may emit"),
    ({"events": ["product_viewed", "Product Viewed"]}, "refarch:analytics.events: [1] 'Product Viewed' is not an "
                                                       "event name: lowercase letters, digits and _, starting with a "
                                                       "letter, at most 64 characters"),
    ({"events": ["product_viewed", "product_viewed"]}, "refarch:analytics.events: [1] 'product_viewed' is listed twice"),
    ({"bufer_mb": 64}, "refarch:analytics.bufer_mb: unknown key (did you mean 'buffer_mb'?)"),
])
def test_each_refusal_names_the_key(section, line):
    assert problems(refarch__analytics=section) == [f"{SRC}: {line}"]


def test_the_limits_themselves_are_accepted():
    assert problems(refarch__analytics={"buffer_mb": 64, "buffer_seconds": 0, "query_scan_limit_mb": 10,
                                        "infrequent_access_days": 30, "expire_days": 31}) == []
