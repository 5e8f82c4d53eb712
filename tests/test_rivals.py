"""The clues that rank rival causes: versions printed in a log, and traceback paths."""

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from envdoctor.rivals import _frame_patterns, _version_pattern  # noqa: E402


@pytest.mark.parametrize("line,version", [
    ("transformers==4.43.0", "4.43.0"),
    ("- `transformers` version: 4.52.4", None),  # the back-quoted form is not a name followed by a version
    ("- transformers version: 4.52.4", "4.52.4"),
    ("Successfully installed peft-0.14.0 transformers-4.42.4", "4.42.4"),
    ("Requirement already satisfied: transformers==4.39.3 in /usr/lib/python3.10/site-packages", "4.39.3"),
    ("/usr/lib/python3.10/site-packages/transformers-4.38.1.dist-info", "4.38.1"),
    ("Transformers 4.36.2", "4.36.2"),
    ("torch 2.1.2+cu121", None),  # another package
    ("load transformers 4bit model", None),
    ("sentence-transformers==2.2.2", None),  # a longer name that ends the same
    ("transformers_stream_generator==0.0.5", None),
])
def test_version_printed_next_to_the_name(line, version):
    match = re.search(_version_pattern("transformers"), line)
    assert (match.group(1) if match else None) == version


def test_a_wheel_name_with_underscore():
    assert re.search(_version_pattern("flash-attn"), "flash_attn-2.5.8+cu122torch2.3-cp310").group(1) == "2.5.8+cu122torch2.3"


@pytest.mark.parametrize("line,hit", [
    ('  File "/opt/conda/lib/python3.10/site-packages/peft/tuners/lora/model.py", line 3', True),
    ('  File "/usr/lib/python3/dist-packages/peft/tuners/lora.py", line 3', True),
    ('  File "C:\\py\\Lib\\site-packages\\peft\\tuners\\lora.py", line 3', True),
    ('  File "/opt/conda/lib/python3.10/site-packages/peft_extra/tuners/x.py", line 3', False),
    ("Requirement already satisfied: peft in /opt/conda/lib/python3.10/site-packages", False),
])
def test_frame_fragment(line, hit):
    assert any(re.search(pattern, line) for pattern in _frame_patterns("site-packages/peft/")) == hit


def test_each_version_clue_has_literals_the_scan_filters_on():
    # A clue without a required literal is searched over every block of the log: a case-insensitive
    # version pattern made explain's second read about 100 times slower than its first.
    from envdoctor import logscan, rivals

    for package in ("torch", "flash-attn", "mmengine"):
        literals = logscan.required_literals(rivals._version_pattern(package))
        assert literals and package in literals and package.capitalize() in literals


def test_each_frame_clue_is_looked_for_by_its_folder_and_slash():
    # "-packages" is on every frame of every traceback, "mmengine" on every line mmengine logs:
    # a clue looked for by either made explain's second read decode and search most lines.
    from envdoctor import logscan

    for fragment, wanted in (("site-packages/mmengine/", {("mmengine/",), ("mmengine\\",)}),
                             ("site-packages/transformers/trainer.py", {("transformers/",), ("transformers\\",)}),
                             ("site-packages/peft", {("peft",)})):
        assert {logscan.required_literals(p) for p in _frame_patterns(fragment)} == wanted, fragment
