"""The logs of the whole test run carry none of the emails, push tokens and
coordinates the tests put into the app (issue 16, acceptance). Every
record of the run, tracebacks included, went to one file
(``tests/conftest.py``), and the processes the tests started (consumers,
``python app.py``) wrote theirs into the run's folder (``TEST_RUN_LOG_DIR``);
this test runs after all the others and reads all of it."""
import os
import re

import pytest

from tests.conftest import PERSONAL_DATA, RUN_LOG, RUN_LOG_DIR

pytestmark = pytest.mark.last


def test_the_runs_logs_carry_no_personal_data(request):
    if RUN_LOG["tests_run"] == 0:
        pytest.skip("reads the logs of a run: run it with other tests")
    assert request.session.items[-1] is request.node, "this test must run after every other test"
    with open(RUN_LOG["path"], encoding="utf-8") as handle:
        text = handle.read()
    assert text, "the run wrote no log records"
    assert re.search(r"INFO app\.request (GET|POST|PUT|PATCH|DELETE) /", text), "no request lines were logged"
    assert PERSONAL_DATA["email"], "the helpers handed out no emails"
    folder = os.environ[RUN_LOG_DIR]
    processes = sorted(os.listdir(folder))
    if processes:
        process_text = ""
        for name in processes:
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as handle:
                process_text += handle.read()
        assert process_text.strip(), f"{len(processes)} processes were started and none of them logged anything"
        text += "\n" + process_text

    found = {}
    lowered = text.lower()
    for kind, values in PERSONAL_DATA.items():
        if kind == "coordinate":
            hits = [value for value in values if re.search(rf"(?<![\d.]){re.escape(value)}(?!\d)", text)]
        else:
            hits = [value for value in values if value.lower() in lowered]
        if hits:
            found[kind] = sorted(hits)[:5]
    assert found == {}
