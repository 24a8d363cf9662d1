"""Globs with ``**`` over relative paths, as the shell and rsync read them."""

from __future__ import annotations

import pytest

from threetwoone.pathglob import compile_glob, problem


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("*.md5", "P1_1001.md5", True),
    ("*.md5", "P1_1001/x.md5", False),           # * stays in one folder
    ("**/*.md5", "x.md5", True),                 # ** is zero or more folders
    ("**/*.md5", "a/b/c/x.md5", True),
    ("**/*.fastq.gz.md5", "S1/run/x.fastq.gz.md5", True),
    ("**/*.fastq.gz.md5", "S1/run/x.fastq.gz", False),
    ("fastq/md5/*.md5", "fastq/md5/SRR1.fastq.gz.md5", True),
    ("fastq/md5/*.md5", "fastq/SRR1.fastq.gz.md5", False),
    ("fastq/**", "fastq/a/b", True),
    ("P?????_100[0-9].md5", "P12345_1001.md5", True),
    ("P?????_100[!0-9].md5", "P12345_1001.md5", False),
    ("a/**/b/*.txt", "a/b/x.txt", True),
    ("a/**/b/*.txt", "a/x/y/b/x.txt", True),
    ("a+b(c).md5", "a+b(c).md5", True),          # regex characters are literal
    ("./x.md5", "x.md5", True),
])
def test_match(pattern: str, path: str, matches: bool) -> None:
    assert compile_glob(pattern).match(path) is matches


def test_literal_prefix_is_the_folder_to_walk() -> None:
    assert compile_glob("fastq/md5/*.md5").prefix == "fastq/md5"
    assert compile_glob("**/*.md5").prefix == ""
    assert compile_glob("a/*/b/*.md5").prefix == "a"


@pytest.mark.parametrize(("pattern", "message"), [
    ("", "non-empty"), ("/abs/*.md5", "no leading '/'"), ("../*.md5", "'..'"),
    ("a/../../*.md5", "'..'"), ("md5/", "not end with '/'")])
def test_problems(pattern: str, message: str) -> None:
    assert message in (problem(pattern) or "")


def test_good_pattern_has_no_problem() -> None:
    assert problem("**/*.md5") is None
