"""The README's Python example runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from fractions import Fraction
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_engine_example(tmp_path, monkeypatch):
    code = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)[0]
    monkeypatch.chdir(tmp_path)  # the example writes exchange.sqlite in the working directory
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    lines = out.getvalue().splitlines()
    assert Fraction(lines[1]) == Fraction(80050) / Fraction("0.9955")  # the liquidation price in the comment
    assert "{'USDT': Decimal('0" in lines[2]  # money conserved
