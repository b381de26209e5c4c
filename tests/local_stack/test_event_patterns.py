"""EventBridge pattern matching, mostly against the examples in the EventBridge user guide."""

from __future__ import annotations

from typing import Any

import pytest
from coaching_local.event_patterns import PatternError, matches, validate

EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "terminated",
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.123",
        "location": "us-east-1",
        "tags": ["prod", "web"],
        "items": [{"sku": "a1", "qty": 2}, {"sku": "b2", "qty": 0}],
        "nothing": None,
        "empty": "",
        "Type": "Deploy",
    },
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["aws.ec2"]}, True),
        ({"source": ["aws.s3"]}, False),
        ({"source": ["aws.s3", "aws.ec2"]}, True),  # a list is an OR
        ({"source": ["aws.ec2"], "detail-type": ["nope"]}, False),  # keys are an AND
        ({"detail": {"state": ["terminated"]}}, True),
        ({"detail": {"state": ["running"]}}, False),
        ({"detail": {"missing": ["x"]}}, False),
        ({"detail": {"nothing": [None]}}, True),  # null matches an explicit null
        ({"detail": {"missing": [None]}}, False),  # ...but not a missing field
        ({"detail": {"empty": [""]}}, True),
        ({"detail": {"c-count": [5]}}, True),
        ({"detail": {"c-count": ["5"]}}, False),  # exact matching is typed
        ({"detail": {"tags": ["web"]}}, True),  # any element of an event array
        ({"detail": {"tags": ["db"]}}, False),
        ({"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]}, True),
        ({"detail": {"items": {"sku": ["b2"]}}}, True),  # arrays of objects are flattened
        ({"detail": {"items": {"qty": [{"numeric": [">", 1]}]}}}, True),
        ({"detail": {"state": [{"prefix": "term"}]}}, True),
        ({"detail": {"state": [{"prefix": "run"}]}}, False),
        ({"detail": {"state": [{"prefix": {"equals-ignore-case": "TERM"}}]}}, True),
        ({"detail": {"instance-id": [{"suffix": "def0"}]}}, True),
        ({"detail": {"instance-id": [{"suffix": {"equals-ignore-case": "DEF0"}}]}}, True),
        ({"detail": {"instance-id": [{"suffix": "xyz"}]}}, False),
        ({"detail": {"state": [{"anything-but": "running"}]}}, True),
        ({"detail": {"state": [{"anything-but": "terminated"}]}}, False),
        ({"detail": {"state": [{"anything-but": ["stopped", "terminated"]}]}}, False),
        ({"detail": {"c-count": [{"anything-but": [1, 2, 3]}]}}, True),
        ({"detail": {"c-count": [{"anything-but": 5}]}}, False),
        ({"detail": {"state": [{"anything-but": {"prefix": "term"}}]}}, False),
        ({"detail": {"state": [{"anything-but": {"prefix": "init"}}]}}, True),
        ({"detail": {"state": [{"anything-but": {"suffix": "ated"}}]}}, False),
        ({"detail": {"state": [{"anything-but": {"equals-ignore-case": ["TERMINATED"]}}]}}, False),
        ({"detail": {"missing": [{"anything-but": "x"}]}}, False),  # anything-but needs the field
        ({"detail": {"state": [{"exists": True}]}}, True),
        ({"detail": {"missing": [{"exists": True}]}}, False),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"state": [{"exists": False}]}}, False),
        ({"detail": {"items": [{"exists": True}]}}, False),  # exists applies to leaves, not objects
        ({"nested": {"deeper": {"x": [{"exists": False}]}}}, True),  # absent parents: field absent
        ({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}]}}, True),
        ({"detail": {"x-limit": [{"numeric": ["=", 301.8]}]}}, True),
        ({"detail": {"c-count": [{"numeric": [">", 5]}]}}, False),
        ({"detail": {"state": [{"numeric": [">", 0]}]}}, False),  # numeric never matches strings
        ({"detail": {"location": [{"equals-ignore-case": "US-EAST-1"}]}}, True),
        ({"detail": {"location": [{"equals-ignore-case": "eu-west-1"}]}}, False),
        ({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, True),
        ({"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}, False),
        ({"detail": {"instance-id": [{"wildcard": "i-*def0"}]}}, True),
        ({"detail": {"instance-id": [{"wildcard": "i-*xyz"}]}}, False),
        ({"detail": {"state": ["running", {"prefix": "term"}]}}, True),  # mixed OR
        ({"$or": [{"source": ["aws.s3"]}, {"detail": {"c-count": [5]}}]}, True),
        ({"$or": [{"source": ["aws.s3"]}, {"detail": {"c-count": [6]}}]}, False),
        ({"source": ["aws.ec2"], "$or": [{"detail": {"Type": ["Deploy"]}}, {"detail": {"x": ["y"]}}]}, True),
        ({}, True),
    ],
)
def test_documented_examples(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, EC2_EVENT) is expected


def test_bool_is_not_a_number() -> None:
    assert not matches({"detail": {"flag": [1]}}, {"detail": {"flag": True}})
    assert matches({"detail": {"flag": [True]}}, {"detail": {"flag": True}})
    assert not matches({"detail": {"flag": [{"numeric": [">", 0]}]}}, {"detail": {"flag": True}})


def test_case_matters_for_exact_values() -> None:
    assert not matches({"detail": {"state": ["Terminated"]}}, EC2_EVENT)


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": "aws.ec2"},  # a leaf must be an array
        {"source": []},
        {"source": [{"prefix": 1}]},
        {"source": [{"numeric": [">"]}]},
        {"source": [{"numeric": ["~", 1]}]},
        {"source": [{"exists": "yes"}]},
        {"source": [{"unknown-filter": 1}]},
        {"source": [{"prefix": "a", "suffix": "b"}]},
        {"source": [["nested"]]},
        {"$or": [{"source": ["a"]}]},
    ],
)
def test_malformed_patterns(pattern: dict[str, Any]) -> None:
    with pytest.raises(PatternError):
        validate(pattern)


def test_validate_accepts_the_real_rules() -> None:
    validate({"source": ["coaching.admin"], "detail-type": ["CoachVettingChanged", "CoachProfileUpdated"]})
    validate({"detail": {"n": [{"numeric": [">", 0, "<", 5]}], "s": [{"anything-but": {"prefix": "x"}}]}})
