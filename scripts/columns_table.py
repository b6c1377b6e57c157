"""Write the README's columns tables from ``jaxsym/io/columns.toml`` (between its ``columns:begin/end`` markers).

    .venv/bin/python scripts/columns_table.py          # rewrite README.md
    .venv/bin/python scripts/columns_table.py --check  # exit 1 when README.md is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from jaxsym.io.columns import columns_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- columns:begin -->\n)(.*?)(\n<!-- columns:end -->)", re.S)


def main(check: bool) -> int:
    text = README.read_text()
    new = BLOCK.sub(lambda m: m.group(1) + columns_markdown() + m.group(3), text)
    if check:
        return int(new != text)
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))
