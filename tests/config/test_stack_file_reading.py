"""Reading a stack file: the YAML itself, and every namespace's keys, refused in the documented format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import ConfigError
from ops import stackfile

ROOT = Path(__file__).resolve().parents[2]
PROD = (ROOT / "stacks" / "Pulumi.prod.yaml").read_text()


def lines_of(tmp_path: Path, content: bytes | str, stack: str = "prod") -> list[str]:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    try:
        stackfile.load(stack, path)
    except ConfigError as exc:
        return [line.replace(f"{path}: ", "F: ") for line in exc.lines]
    return []


def test_duplicate_keys_name_both_lines(tmp_path):
    text = "config:\n  aws:region: us-east-1\n  refarch:network:\n    az_count: 2\n    az_count: 3\n"
    assert lines_of(tmp_path, text) == [
        "F: refarch:network.az_count: duplicate key (lines 4 and 5): YAML would keep only the last one; merge them"]


def test_a_duplicated_section_is_refused_not_merged(tmp_path):
    text = PROD + "  refarch:monitoring:\n    log_retention_days: 7\n"
    (line,) = lines_of(tmp_path, text)
    first = PROD.splitlines().index("  refarch:monitoring:") + 1
    assert line == (f"F: refarch:monitoring: duplicate key (lines {first} and {len(PROD.splitlines()) + 1}): "
                    "YAML would keep only the last one; merge them")


def test_bom_and_crlf_are_accepted(tmp_path):
    assert lines_of(tmp_path, b"\xef\xbb\xbf" + PROD.replace("\n", "\r\n").encode()) == []


def test_non_utf8_is_refused_with_its_line(tmp_path):
    text = PROD.encode().replace(b"platform-alerts", b"plat\xe9form-alerts")
    line_no = next(i for i, line in enumerate(PROD.splitlines(), 1) if "platform-alerts" in line)
    assert lines_of(tmp_path, text) == [f"F: line {line_no}: not UTF-8 (byte 0xe9): save the file as UTF-8"]


def test_tab_indentation_is_explained(tmp_path):
    assert lines_of(tmp_path, "config:\n  refarch:network:\n  \taz_count: 2\n") == [
        "F: not valid YAML at line 3, column 3: found character '\\t' that cannot start any token "
        "(line has a tab character: YAML indents with spaces only)"]


def test_top_level_keys_are_checked(tmp_path):
    assert lines_of(tmp_path, PROD.replace("config:", "confg:", 1)) == [
        "F: confg: not a stack file key (did you mean 'config'?)"]
    assert lines_of(tmp_path, "secretsprovider: awskms://alias/x\n" + PROD) == []


def test_unreadable_file(tmp_path):
    path = tmp_path / "Pulumi.prod.yaml"
    path.mkdir()
    with pytest.raises(ConfigError) as info:
        stackfile.read_values("prod", path)
    (line,) = info.value.lines
    assert line.startswith(f"{path}: no such stack file (known stacks: dev, local, prod")


@pytest.mark.parametrize(("key", "message"), [
    ("refarh:monitoring", "refarh:monitoring: unknown namespace 'refarh' (did you mean 'refarch:monitoring'?)"),
    ("Refarch:network", "Refarch:network: unknown namespace 'Refarch' (did you mean 'refarch:network'?)"),
    ("azure:location", "azure:location: unknown namespace 'azure' (known namespaces: refarch, aws)"),
    ("monitoring", "monitoring: not a `<namespace>:<key>` key (did you mean 'refarch:monitoring'?)"),
    ("aws:regin", "aws:regin: unknown or unsupported aws provider setting (did you mean 'aws:region'?)"),
    ("aws:skipMetadataApiCheck", "aws:skipMetadataApiCheck: unknown or unsupported aws provider setting "
                                 "(supported: aws:region, aws:profile, aws:allowedAccountIds)"),
])
def test_every_namespace_is_checked(tmp_path, key, message):
    assert lines_of(tmp_path, PROD + f"  {key}: {{}}\n") == [f"F: {message}"]


def test_region_is_required_and_real(tmp_path):
    assert lines_of(tmp_path, PROD.replace("  aws:region: us-east-1\n", "")) == [
        "F: aws:region: required key is missing"]
    assert lines_of(tmp_path, PROD.replace("us-east-1", "us-east-1a")) == [
        "F: aws:region: 'us-east-1a' is not an AWS region this program knows (did you mean 'us-east-1'?)"]


def test_allowed_account_ids_are_checked(tmp_path):
    assert lines_of(tmp_path, PROD + "  aws:allowedAccountIds: ['123456789012']\n") == []
    assert lines_of(tmp_path, PROD + "  aws:allowedAccountIds: [1234]\n") == [
        "F: aws:allowedAccountIds: expected a list of 12-digit account ids as strings (got [1234])"]


def test_az_count_within_the_region(tmp_path):
    text = PROD.replace("us-east-1", "us-west-1")
    assert lines_of(tmp_path, text) == [
        "F: refarch:network.az_count: us-west-1 has 2 availability zones, 3 asked for"]


def test_synth_task_refuses_a_namespace_typo_and_registers_nothing(tmp_path):
    """The whole process: exit 1, the documented line, no synth output written."""
    stack = ROOT / "stacks" / "Pulumi.typo-check.yaml"
    stack.write_text(PROD.replace("refarch:monitoring:", "refarh:monitoring:"))
    out = tmp_path / "synth.json"
    try:
        run = subprocess.run([sys.executable, "-m", "invoke", "synth", "--stack", "typo-check", "--out", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        stack.unlink()
    assert run.returncode == 1
    assert "stacks/Pulumi.typo-check.yaml: refarh:monitoring: unknown namespace 'refarh' " \
           "(did you mean 'refarch:monitoring'?)" in run.stderr
    assert "Traceback" not in run.stderr
    assert not out.exists()
