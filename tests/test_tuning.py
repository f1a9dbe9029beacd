import json
import os
import subprocess
import sys

import pytest

CHECK = """
import gc, json
from parsing.tuning import keep_freed_memory, tune_process
before = gc.get_freeze_count()
applied = keep_freed_memory()
tune_process()
print(json.dumps({"applied": applied, "frozen": gc.get_freeze_count() > before}))
"""


def _run(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "PARSING_MALLOC"}
    out = subprocess.run([sys.executable, "-c", CHECK], env={**clean, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_long_runs_keep_freed_memory_unless_the_user_chose_otherwise():
    assert _run() == {"applied": True, "frozen": True}  # glibc here
    assert _run(MALLOC_ARENA_MAX="2")["applied"] is False  # the user's allocator settings win
    assert _run(PARSING_MALLOC="default")["applied"] is False
