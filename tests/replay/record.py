"""Record the replay corpus: run the workflow tests with the corpus's test key and keep their histories.

    python -m tests.replay.record              # every workflow test; replaces every test_*.json
    python -m tests.replay.record -k refund    # only some tests; writes (over) the histories they record

Each production workflow run that a test in `tests/workflows/` drives (fake activities, no
personal data) is written to `tests/replay/histories/<Type>/<test name>.json`, encrypted with
`tests.codec_keys.REPLAY_CODEC`, a test key. Record after a change that is meant to change the
workflows' commands (with a `workflow.patched` guard for runs in flight), and keep the old
histories that the new code must still replay by renaming them first: a whole recording replaces
only the `test_*.json` files (e.g. `Refund/v1-before-settle-activity--*.json`
stay, and keep the patch's old branch tested).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.codec_keys import RECORD_ENV

HISTORIES = Path(__file__).parent / "histories"
ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="ticketops-histories-") as scratch:
        env = {**os.environ, RECORD_ENV: scratch}
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/workflows", *argv],
            cwd=ROOT,
            env=env,
        )
        if code != 0:
            print("the workflow tests failed: the corpus is left as it was", file=sys.stderr)
            return code
        recorded = sorted(p for p in Path(scratch).iterdir() if p.is_dir())
        for folder in recorded:
            kept = HISTORIES / folder.name
            if not argv:  # a whole recording replaces the last one; histories named otherwise are kept
                for old in kept.glob("test_*.json"):
                    old.unlink()
            kept.mkdir(parents=True, exist_ok=True)
            for new in folder.glob("*.json"):
                shutil.copy(new, kept / new.name)
            print(f"{folder.name}: {len(list(folder.glob('*.json')))} histories")
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main(sys.argv[1:]))
