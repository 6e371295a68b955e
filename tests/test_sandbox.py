"""The code interpreter's sandbox: escapes are contained and reported as clear errors, output
comes back (stdout, values, tables, charts), and the server keeps serving other users while a
run misbehaves.

Hermetic: no model, real namespaces (the sandbox refuses to run without them, so these tests
fail rather than pass on a machine that cannot isolate code). Limits are small so the suite
stays fast.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import new_user
from tandem.sandbox import SandboxLimits, run_code
from tandem.sandbox.outcome import HOST_FILES, NETWORK
from tandem.sandbox.outputs import PNG_MAGIC, collect_charts, safe_name
from tandem.tools.code import first_code_block

REPO = Path(__file__).resolve().parents[1]
LIMITS = SandboxLimits(wall_s=2.0, cpu_s=1, memory_mb=256, processes=16, file_mb=4)
CHART_CODE = """
import csv
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open("sales.csv")))
print("months:", len(rows))
plt.bar([r["month"] for r in rows], [float(r["total"]) for r in rows])
rows
"""
CSV = b"month,total\njan,10\nfeb,14\nmar,9\n"


def run(code: str, home: Path, files=(), limits: SandboxLimits = LIMITS):
    return run_code(code, files, home=home, limits=limits)


@pytest.fixture
def listening_port():
    """A TCP server on the host's loopback the sandbox must not reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def test_network_is_unreachable_by_address_and_by_name(tandem_home, listening_port):
    connect = f"import socket\nsocket.create_connection(('127.0.0.1', {listening_port}), 2)"
    for code in (connect, "import socket\nsocket.getaddrinfo('example.com', 80)"):
        result = run(code, tandem_home)
        assert (result.status, result.error) == ("error", NETWORK), result


def test_the_host_filesystem_is_invisible(tandem_home):
    db = tandem_home / "tandem.db"
    db.write_bytes(b"SQLite format 3 secret-db")
    other_run = tandem_home / "sandbox" / "other-run"
    other_run.mkdir(parents=True)
    (other_run / "secret.txt").write_text("another user's secret")
    for path in ("/etc/shadow", REPO / "pyproject.toml", db, other_run / "secret.txt"):
        result = run(f"print(open({str(path)!r}).read())", tandem_home)
        assert result.status == "error", path
        assert result.error.startswith("Your code raised FileNotFoundError"), result.error
        assert result.error.endswith(HOST_FILES)
        assert "secret" not in result.stdout
    hidden = [str(REPO / "src"), str(tandem_home), "/etc/passwd", "/root/.bashrc", "/home"]
    seen = run(f"import os\n[os.path.exists(p) for p in {hidden!r}]", tandem_home)
    assert (seen.status, seen.value) == ("ok", repr([False] * len(hidden)))


def test_the_code_runs_as_nobody_in_particular_with_a_read_only_root(tandem_home):
    result = run(
        "import os\nprint(os.getuid())\nopen('/usr/evil', 'w')",
        tandem_home,
    )
    if os.geteuid() == 0:
        assert int(result.stdout.split()[0]) >= LIMITS.uid_base  # never root
    assert "Read-only file system" in result.error or "Permission denied" in result.error


@pytest.mark.parametrize(
    "code",
    [
        "import os\nwhile True:\n    os.fork()",
        "import subprocess\nps = [subprocess.Popen(['sleep', '60']) for _ in range(200)]",
    ],
    ids=["fork-bomb", "subprocesses"],
)
def test_too_many_processes_is_refused(tandem_home, code):
    result = run(code, tandem_home)
    assert (result.status, result.error) == (
        "killed",
        "Your code tried to start too many processes (the limit is 16).",
    )


def test_a_memory_bomb_hits_the_memory_limit(tandem_home):
    result = run("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))", tandem_home)
    assert (result.status, result.error) == ("memory", "Your code used more than 256 MB of memory.")


def test_an_endless_loop_hits_the_cpu_limit_and_a_sleep_the_wall_limit(tandem_home):
    # A generous wall time: on a busy machine the loop needs a while to burn 1 s of CPU.
    spin = run("while True:\n    pass", tandem_home, limits=SandboxLimits(wall_s=8, cpu_s=1))
    assert (spin.status, spin.error) == ("timeout", "Your code used more than 1 s of CPU time.")
    start = time.monotonic()
    nap = run("import time\ntime.sleep(100)", tandem_home, limits=LIMITS)
    assert (nap.status, nap.error) == ("timeout", "Your code ran out of time (2 s wall limit).")
    assert time.monotonic() - start < 5


def test_huge_output_is_cut_at_the_cap(tandem_home):
    result = run("import sys\nwhile True:\n    sys.stdout.write('x' * 100_000)", tandem_home)
    assert (result.status, result.error) == (
        "output_limit",
        "Your code printed more than 1 MB; output cut.",
    )
    assert len(result.stdout) <= LIMITS.output_bytes


def test_a_huge_file_is_refused(tandem_home):
    result = run("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 10**6)", tandem_home)
    assert (result.status, result.error) == (
        "error",
        "Your code tried to write a file larger than 4 MB.",
    )


def test_a_chart_name_never_leads_outside_the_outputs(tandem_home):
    # The code rewires the runner (it runs in the same process) to report hostile names and
    # plants a link to the host's passwd where a chart would be.
    code = """
import os, sys
import matplotlib.pyplot as plt
plt.plot([1, 2, 3])
os.symlink('/etc/passwd', '/sandbox/outputs/figure-1.png')
runner = sys.modules['__main__']
real_save = runner.save_figures
runner.save_figures = lambda limit: real_save(limit) + [
    '../../etc/passwd', '/etc/passwd', 'figure-1.png', '../figure-0.png']
"""
    result = run(code, tandem_home, limits=SandboxLimits(wall_s=10, cpu_s=5))
    assert result.status == "ok", result
    assert [name for name, _ in result.charts] == ["figure-0.png"]
    assert result.charts[0][1].startswith(PNG_MAGIC)


def test_outputs_are_read_inside_their_directory_only(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "figure-0.png").write_bytes(PNG_MAGIC + b"ok")
    (out / "figure-1.png").symlink_to(tmp_path / "secret.png")
    (tmp_path / "secret.png").write_bytes(PNG_MAGIC + b"secret")
    (out / "figure-2.png").write_bytes(b"<svg onload=alert(1)>")
    (out / "figure-3.png").write_bytes(PNG_MAGIC + b"x" * 100)
    reported = ["../secret.png", "figure-0.png", "figure-1.png", "figure-2.png", "figure-3.png"]
    charts = collect_charts(out, reported, max_images=8, max_bytes=50)
    assert charts == [("figure-0.png", PNG_MAGIC + b"ok")]
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("/abs/..\\x.csv") == "x.csv"
    assert safe_name("..") == "file"


def test_output_values_tables_and_a_chart_from_a_csv(tandem_home, tmp_path):
    csv = tmp_path / "upload"
    csv.write_bytes(CSV)
    result = run(
        CHART_CODE, tandem_home, [("../../sales.csv", csv)], SandboxLimits(wall_s=10, cpu_s=5)
    )
    assert result.status == "ok", result
    assert result.stdout == "months: 3\n"
    assert result.tables == [
        {
            "columns": ["month", "total"],
            "rows": [["jan", "10"], ["feb", "14"], ["mar", "9"]],
            "total_rows": 3,
        }
    ]
    [(_, png)] = result.charts
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    # The run directory is gone afterwards.
    assert list((tandem_home / "sandbox").iterdir()) == []

    value = run("x = 6\nx * 7", tandem_home)
    assert (value.status, value.value) == ("ok", "42")
    error = run("print('before')\n1 / 0", tandem_home)
    assert error.status == "error" and error.stdout == "before\n"
    assert error.error == "Your code raised ZeroDivisionError: division by zero"
    assert 'File "<code>", line 2' in error.stderr


def test_the_code_block_is_taken_from_the_message():
    text = "Plot it:\n```sh\nrm -rf /\n```\nthen\n```python\nprint(1)\n```\n```\nprint(2)\n```"
    assert first_code_block(text) == "print(1)"
    assert first_code_block("```\nprint(2)\n```") == "print(2)"
    assert first_code_block("no code here") is None


def _chat(client, headers, text: str):
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    return conv, client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": text, "tools": ["code"]},
        headers=headers,
    )


def test_a_chart_from_an_uploaded_csv_comes_back_as_an_image_in_the_answer(client, monkeypatch):
    monkeypatch.setenv("TANDEM_SANDBOX_WALL_S", "10")
    alice = new_user(client, "alice@x.io")
    conv = client.post("/api/conversations", json={}, headers=alice).json()
    up = client.post(
        "/api/files",
        files={"file": ("sales.csv", CSV)},
        data={"conversation_id": conv["id"]},
        headers=alice,
    )
    assert up.status_code == 201, up.text
    r = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": f"Chart my sales:\n```python{CHART_CODE}```", "tools": ["code"]},
        headers=alice,
    )
    assert r.status_code == 200, r.text
    turn = r.json()
    [call] = turn["generation"]["tool_calls"]
    assert call["tool"] == "code" and call["error"] is None
    assert call["display"]["status"] == "ok" and call["display"]["stdout"] == "months: 3\n"
    assert call["display"]["tables"][0]["columns"] == ["month", "total"]
    assert call["display"]["written_by"] == "user"
    [image] = [p for p in turn["assistant_message"]["parts"] if p["type"] == "image"]
    assert image["data"] == call["attachments"][0]
    served = client.get(f"/api/uploads/{image['data']['upload_id']}", headers=alice)
    assert served.status_code == 200 and served.content.startswith(PNG_MAGIC)
    bob = new_user(client, "bob@x.io")
    assert client.get(f"/api/uploads/{image['data']['upload_id']}", headers=bob).status_code == 404
    # Bob's chat does not see Alice's file.
    _, theirs = _chat(client, bob, "```python\nimport os\nprint(os.listdir('.'))\n```")
    assert theirs.json()["generation"]["tool_calls"][0]["display"]["stdout"] == "[]\n"


def test_a_failed_run_is_a_clear_tool_error_not_a_failed_turn(client, monkeypatch):
    monkeypatch.setenv("TANDEM_SANDBOX_WALL_S", "2")
    alice = new_user(client, "alice@x.io")
    _, r = _chat(
        client,
        alice,
        "```python\nimport urllib.request\nurllib.request.urlopen('http://10.0.0.1')\n```",
    )
    assert r.status_code == 200, r.text
    call = r.json()["generation"]["tool_calls"][0]
    assert call["error"] == NETWORK and call["display"]["status"] == "error"
    assert r.json()["assistant_message"]["content"]  # the model still answered


def test_without_namespaces_the_code_never_runs(client, monkeypatch):
    from tandem.sandbox import SandboxUnavailable

    def refuse():
        raise SandboxUnavailable("this server cannot create Linux namespaces")

    monkeypatch.setattr("tandem.tools.code.detect_isolation", refuse)
    alice = new_user(client, "alice@x.io")
    # The Code switch is not offered, and a message asking for it is refused before it runs.
    assert "code" not in [t["name"] for t in client.get("/api/tools", headers=alice).json()]
    _, r = _chat(client, alice, "```python\nprint('ran')\n```")
    assert r.status_code == 422
    assert "The code interpreter is switched off on this server" in r.json()["error"]["message"]
    assert "ran" not in r.text


def test_other_users_are_served_normally_while_a_run_misbehaves(
    settings, fake_catalog, live_server, monkeypatch
):
    from tandem.web.app import create_app

    monkeypatch.setenv("TANDEM_SANDBOX_WALL_S", "2")
    # Alice chats as fast as she can; that is this test's load, not abuse to rate-limit.
    unlimited = dataclasses.replace(settings, rate_generation=None, rate_generation_per_key=None)
    base = live_server(create_app(unlimited, fake_catalog))
    with httpx.Client(base_url=base, timeout=30) as http:
        attacker = new_user(http, "mallory@x.io")
        alice = new_user(http, "alice@x.io")
        conv = http.post("/api/conversations", json={}, headers=attacker).json()
        outcome: dict = {}

        def attack() -> None:
            # Forks until refused, then keeps every process alive until the wall time.
            bomb = (
                "```python\nimport os, time\nwhile True:\n    try:\n        os.fork()\n"
                "    except OSError:\n        time.sleep(0.01)\n```"
            )
            r = http.post(
                f"/api/conversations/{conv['id']}/messages",
                json={"content": bomb, "tools": ["code"]},
                headers=attacker,
            )
            outcome["response"] = r
            outcome["ended"] = time.monotonic()

        thread = threading.Thread(target=attack)
        thread.start()
        time.sleep(0.3)  # the bomb is running
        answered_at = []
        while thread.is_alive() or not answered_at:
            mine = http.post("/api/conversations", json={}, headers=alice).json()
            r = http.post(
                f"/api/conversations/{mine['id']}/messages", json={"content": "hi"}, headers=alice
            )
            assert r.status_code == 200
            answered_at.append(time.monotonic())
        thread.join()
    # Alice's chats were answered while the bomb was still running, not queued behind it.
    # (How fast they were is for the load benchmark, not for a timed test.)
    assert sum(t < outcome["ended"] for t in answered_at) >= 3, (answered_at, outcome["ended"])
    call = outcome["response"].json()["generation"]["tool_calls"][0]
    assert call["display"]["status"] == "timeout"
    assert call["error"] == "Your code ran out of time (2 s wall limit)."
