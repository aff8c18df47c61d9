"""``nodes/common/cli.py``, the helpers the command lines share: a bounded ``--config`` read, the
``--out`` probe (by writing, folders made for a refused run removed), platform failures as one line."""

from __future__ import annotations

import dtlpy as dl
import pytest
import requests

from nodes.common.cli import (
    LOGIN_HINT,
    PlatformUnavailable,
    platform_failure,
    prepare_out_dir,
    read_config_text,
)


def test_read_config_text_reads_a_regular_file_and_refuses_the_rest(tmp_path):
    good = tmp_path / "c.json"
    good.write_text('{"a": 1}', encoding="utf-8")
    assert read_config_text(str(good)) == '{"a": 1}'
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"a": "\xe9"}')
    cases = [
        (str(tmp_path), "is a folder, not a regular file"),
        ("/dev/null", "is a character device"),
        (str(tmp_path / "missing.json"), "cannot be read"),
        (str(latin), "not UTF-8"),
        ("", "is not a file name"),
        ("a\nb", "is not a file name"),
        (None, "is not a file name"),
    ]
    for path, problem in cases:
        with pytest.raises(ValueError, match=problem) as error:
            read_config_text(path, "--config", fix="give a JSON file")
        assert str(error.value).startswith("--config") and len(str(error.value)) < 1000
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 11)
    with pytest.raises(ValueError, match="11 bytes, more than the 10 allowed"):
        read_config_text(str(big), max_bytes=10)
    assert read_config_text(str(big), max_bytes=11) == " " * 11


def test_prepare_out_dir_creates_probes_and_leaves_nothing_but_the_folder(tmp_path):
    out = prepare_out_dir(str(tmp_path / "x" / "y"), files=("report.md",))
    assert (
        out.path.is_dir() and list(out.path.iterdir()) == [] and out.created == [tmp_path / "x", tmp_path / "x" / "y"]
    )
    existing = prepare_out_dir(str(tmp_path / "x"))
    assert existing.created == []
    existing.discard_if_unused()
    assert (tmp_path / "x").is_dir()  # never removes a folder it did not make
    (out.path / "report.md").write_text("r", encoding="utf-8")
    out.discard_if_unused()
    assert out.path.is_dir()  # not empty: kept


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: (p / "f").write_text("x") and str(p / "f"), "is an existing file"),
        (lambda p: (p / "f").write_text("x") and str(p / "f" / "sub"), "is a file, so"),
        (lambda p: (p / "o" / "report.md").mkdir(parents=True) or str(p / "o"), "is a folder, so report.md"),
        (lambda p: "bad\x00name", "not a usable folder name"),
    ],
)
def test_prepare_out_dir_refusals_name_the_option_and_remove_what_they_made(tmp_path, make, problem):
    value = make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=problem) as error:
        prepare_out_dir(value, "--out", "--out report", files=("report.md",))
    assert str(error.value).startswith("--out") and "e.g. --out report" in str(error.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_prepare_out_dir_refuses_a_place_nobody_may_write_and_removes_nothing_else():
    if not __import__("pathlib").Path("/sys").is_dir():
        pytest.skip("no /sys")
    with pytest.raises(ValueError, match="is not writable"):
        prepare_out_dir("/sys/compare-report-probe")


def test_platform_failures_are_one_line_with_the_way_out():
    expired = dl.exceptions.TokenExpired("600", "Token expired, Please login.\nSDK login options: dl.login()")
    messages = [
        platform_failure(expired),
        platform_failure(requests.exceptions.ConnectionError("refused")),
        platform_failure(requests.exceptions.ReadTimeout("slow")),
        platform_failure(PlatformUnavailable(f"not logged in; {LOGIN_HINT}")),
    ]
    for message in messages:
        assert message is not None and "\n" not in message and LOGIN_HINT in message
    assert "not logged in" in messages[0] and "could not be reached" in messages[1]
    assert platform_failure(ValueError("bad")) is None and platform_failure(KeyError("x")) is None
