"""Developer script: refresh the model table between README.md's ``<!-- models:start -->`` and
``<!-- models:end -->`` markers from the registry (``cnnlab models --markdown``).

    python scripts/update_readme.py          # rewrite README.md if the table is stale
    python scripts/update_readme.py --check  # exit 1 if it is stale (what the test checks)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKERS = re.compile(r"<!-- models:start -->.*?<!-- models:end -->", flags=re.S)


def fresh_readme(text: str) -> str:
    from cnnlab.workflows.models import model_rows, to_markdown

    block = f"<!-- models:start -->\n{to_markdown(model_rows())}\n<!-- models:end -->"
    return MARKERS.sub(lambda _m: block, text)


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    new = fresh_readme(text)
    if "--check" in argv:
        print("README.md model table is fresh" if new == text else "README.md model table is stale")
        return int(new != text)
    if new != text:
        from cnnlab.utils.io import write_text

        write_text(README, new)
    print("README.md updated" if new != text else "README.md already fresh")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
