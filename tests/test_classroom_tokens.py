"""Per-student tokens (issue 24, finding 2): the tokens file (helpers/relay/roster.py), the
relay's ``--tokens FILE`` in one process and with ``--workers 2``, ``start_relay`` with a
mapping or a path, revocation by editing the file, and the command that makes the file and
its handout (helpers/relay/tokens.py).

The limits count per student whatever the address: every request here comes from 127.0.0.1,
and the offline provider's counters prove which ones reached it. The usage view is
tests/test_usage_view.py.
"""

from __future__ import annotations

import logging
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FAKE_KEY, need_system_part, stop_process, wait_until
from relay_process import RelayProcess

from helpers.offline import OfflineProvider
from helpers.relay import roster as roster_module
from helpers.relay import start_relay
from helpers.relay.access import new_token
from helpers.relay.limits import Limits
from helpers.relay.roster import RosterError, RosterFile, parse_names, parse_roster
from helpers.relay.tokens import QR_SCALE, handout_html
from helpers.relay.tokens import main as tokens_main
from helpers.settings import Config

pytestmark = pytest.mark.timeout(180)
#: Liveness, not speed: a revoked token is refused well before this.
REVOKE_DEADLINE = 30.0
ANNA, BEN, TEACHER = new_token(), new_token(), new_token()


def roster_file(path: Path, **tokens: str) -> Path:
    path.write_text("# class 7b\n\n" + "".join(f"{n} {t}  # a comment\n"
                                                for n, t in tokens.items()), encoding="utf-8")
    return path


def ask(url: str, token: str, question: str = "What is a prime number?") -> httpx.Response:
    return httpx.post(url + "api/chat/stream", json={"question": question}, timeout=30,
                      headers={"Authorization": f"Bearer {token}"})


# -- the file --------------------------------------------------------------------------------
def test_a_tokens_file_allows_comments_blank_lines_and_unicode_names() -> None:
    text = f"# the class\n\nteacher {TEACHER}\n  anna   {ANNA}   # first row\n张伟 {BEN}\n"
    assert parse_roster(text) == {"teacher": TEACHER, "anna": ANNA, "张伟": BEN}
    assert parse_names("# names\nanna\n\n张伟  # second\n") == ["anna", "张伟"]


@pytest.mark.parametrize(("line", "says"), [
    (f"anna {ANNA} extra", "expected 'name token' (2 fields, found 3)"),
    ("anna", "expected 'name token' (2 fields, found 1)"),
    ("anna short-token", "a token is 16 to 512"),
    (f"anna {ANNA[:-3]}!!!", "a token is 16 to 512"),
    (f"an:na {ANNA}", "a name is letters"),
    (f"teacher {ANNA}", "the same name as line 2"),
    (f"ben {TEACHER}", "the same token as line 2"),
])
def test_a_bad_line_is_named_by_its_number_and_never_shows_a_token(line: str, says: str) -> None:
    with pytest.raises(RosterError) as caught:
        parse_roster(f"# class\nteacher {TEACHER}\n\n{line}\n")
    message = str(caught.value)
    assert "line 4" in message and says in message, message
    for secret in (ANNA, TEACHER, ANNA[:-3], "short-token"):
        assert secret not in message
    with pytest.raises(RosterError, match="has no 'name token' lines"):
        parse_roster("# nobody yet\n\n")


def test_the_file_is_re_read_when_it_changes_and_a_bad_one_keeps_the_last_good(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = roster_file(tmp_path / "class.txt", teacher=TEACHER, anna=ANNA, ben=BEN)
    roster = RosterFile(path)
    assert dict(roster.tokens) == {"teacher": TEACHER, "anna": ANNA, "ben": BEN}
    assert roster.look() is False  # unchanged: not even read
    roster_file(path, teacher=TEACHER, anna=ANNA)  # ben's line deleted
    assert roster.look() is True and "ben" not in roster.tokens
    caplog.set_level(logging.WARNING, "helpers.relay")
    for broken in (f"anna {ANNA}\nanna {BEN}\n", "x" * (roster_module.MAX_BYTES + 1), None):
        caplog.clear()
        if broken is None:
            path.unlink()
        else:
            path.write_text(broken)
        assert roster.look() is False
        assert dict(roster.tokens) == {"teacher": TEACHER, "anna": ANNA}  # the last good
        assert "not used, the last good roster (2 names) stays" in caplog.text, caplog.text
        assert roster.look() is False and caplog.text.count("not used") == 1  # said once
        assert not any(t in caplog.text for t in (ANNA, BEN, TEACHER))
    roster_file(path, teacher=TEACHER, ben=BEN)
    assert roster.look() is True and dict(roster.tokens) == {"teacher": TEACHER, "ben": BEN}
    assert ANNA not in repr(roster) and "names=2" in repr(roster)


def test_a_bad_file_stops_the_relay_at_start_naming_the_line(tmp_path: Path,
                                                               offline: OfflineProvider) -> None:
    path = tmp_path / "class.txt"
    path.write_text(f"teacher {TEACHER}\nanna {ANNA}\nben {ANNA}\n")
    done = subprocess.run([sys.executable, "-m", "helpers.relay", "--port", "0", "--tokens",
                           str(path), "--base-url", offline.base_url, "--api-key", FAKE_KEY],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert "line 3: the same token as line 2" in done.stderr, done.stderr
    assert ANNA not in done.stderr + done.stdout and TEACHER not in done.stderr
    assert offline.stats()["requests"] == 0


# -- start_relay -----------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["mapping", "path"])
def test_start_relay_takes_a_mapping_or_a_path_and_limits_count_per_student(
        form: str, tmp_path: Path, offline: OfflineProvider) -> None:
    """Two students from one address: anna is limited while ben is served."""
    tokens = {"teacher": TEACHER, "anna": ANNA, "ben": BEN}
    given = tokens if form == "mapping" else roster_file(tmp_path / "class.txt", **tokens)
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with start_relay(config, jupyter=False, name=f"relay-tokens-{form}", token=given,
                     limits=Limits(requests_per_minute=2)) as relay:
        assert relay.token is None and relay.headers == {} and "#token" not in relay.page_url
        assert "per-student tokens" in repr(relay) and ANNA not in repr(relay)
        assert [ask(relay.url, ANNA).status_code for _ in range(2)] == [200, 200]
        third = ask(relay.url, ANNA)
        assert third.status_code == 429 and third.json()["error"]["type"] == "relay_rate_limit"
        assert [ask(relay.url, BEN).status_code for _ in range(2)] == [200, 200]
        assert ask(relay.url, "not-" + ANNA).status_code == 401
        assert httpx.post(relay.url + "api/chat/stream", json={"question": "Hi"},
                          timeout=30).status_code == 401
    assert offline.stats()["streams"] == 4  # anna's two and ben's two; no refused one


def test_start_relay_refuses_empty_per_student_tokens(offline: OfflineProvider) -> None:
    config = Config("offline", offline.base_url, "moonshot-v1-8k", FAKE_KEY)
    with pytest.raises(ValueError, match="at least one student"):
        start_relay(config, jupyter=False, name="relay-tokens-empty", token={})


# -- the CLI: revoking a token by editing the file --------------------------------------------
@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_cli_tokens_file_limits_per_student_and_a_revoked_token_is_refused_without_restart(
        workers: int, tmp_path: Path, offline: OfflineProvider) -> None:
    path = roster_file(tmp_path / "class.txt", teacher=TEACHER, anna=ANNA, ben=BEN)
    relay = RelayProcess("--tokens", str(path), "--requests-per-minute", "2",
                         "--workers", str(workers), "--base-url", offline.base_url,
                         "--api-key", FAKE_KEY)
    try:
        said = relay.banner + relay.proc.stdout.readline()
        assert f"per-student tokens from {path}: 3 names" in said, said
        assert "usage" in said and not any(t in said for t in (ANNA, BEN, TEACHER))
        assert [ask(relay.url, ANNA).status_code for _ in range(3)] == [200, 200, 429]
        assert ask(relay.url, BEN).status_code == 200  # same address, his own count
        assert offline.stats()["streams"] == 3
        roster_file(path, teacher=TEACHER, anna=ANNA)  # ben's line deleted; no restart

        def refused() -> bool:  # his list of files: no request to the provider, none counted
            answer = httpx.get(relay.url + "api/files", timeout=10,
                               headers={"Authorization": f"Bearer {BEN}"})
            assert answer.status_code in (200, 401), answer.text
            return answer.status_code == 401
        wait_until(refused, timeout=REVOKE_DEADLINE, every=0.2)
        time.sleep(roster_module.CHECK_EVERY + 0.5)  # every worker has looked by its next one
        statuses = {ask(relay.url, BEN).status_code for _ in range(8)}  # new connections
        assert statuses == {401}, statuses
        assert offline.stats()["streams"] == 3  # nothing of his reached the provider
        assert ask(relay.url, TEACHER).status_code == 200  # the others are unaffected
    finally:
        stop_process(relay.proc, grace=30)
        out, logged = relay.proc.stdout.read(), relay.proc.stderr.read()
        relay.stop()
    assert "re-read: 2 names (0 new, 1 removed)" in logged, logged
    assert not any(t in out + logged for t in (ANNA, BEN, TEACHER))


# -- the tokens command and its handout ------------------------------------------------------
def test_make_writes_a_private_file_and_prints_no_token(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out, handout = tmp_path / "class-tokens.txt", tmp_path / "handout.html"
    assert tokens_main(["make", "--students", "30", "--out", str(out), "--handout",
                        str(handout), "--url", "http://10.0.0.5:4020"]) == 0
    said = capsys.readouterr().out
    tokens = parse_roster(out.read_text())
    assert list(tokens)[:2] == ["teacher", "student01"] and len(tokens) == 31
    assert "30 students and the teacher" in said and "0600" in said
    assert not any(token in said for token in tokens.values())
    for path in (out, handout):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    page = handout.read_text()
    for name, token in tokens.items():
        link = f"http://10.0.0.5:4020/#token={token}"
        assert link in page, name
    assert f"http://10.0.0.5:4020/usage#token={tokens['teacher']}" in page
    assert page.count("<svg") == 31 and "<script" not in page
    # make does not replace a file whose links were handed out, unless told to
    assert tokens_main(["make", "--students", "2", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and parse_roster(out.read_text()) == tokens
    assert tokens_main(["make", "--students", "2", "--out", str(out), "--force", "--show"]) == 0
    shown, again = capsys.readouterr().out, parse_roster(out.read_text())
    assert len(again) == 3 and all(token in shown for token in again.values())  # asked


def test_the_handout_qr_codes_are_the_links(tmp_path: Path) -> None:
    """Each card's QR code is segno's code of that card's link (decoding needs a reader this
    project does not ship; a code of any other text differs)."""
    import segno

    tokens = {"teacher": TEACHER, "anna": ANNA}
    page = handout_html(tokens, "http://10.0.0.5:4020/")
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    links = [f"http://10.0.0.5:4020/usage#token={TEACHER}", f"http://10.0.0.5:4020/#token={ANNA}"]
    options = {"scale": QR_SCALE, "title": "QR code of the link"}
    assert svgs == [segno.make(link, error="m").svg_inline(**options) for link in links]
    assert segno.make(links[1] + "x", error="m").svg_inline(**options) not in svgs


@pytest.mark.browser
def test_the_printed_handout_scans_as_each_students_link(page: Any, tmp_path: Path) -> None:
    """The handout as Chromium draws it, each QR code read back by zbar's zbarimg (a real
    reader; Debian's zbar-tools)."""
    zbarimg = shutil.which("zbarimg")
    need_system_part(zbarimg is not None, "zbarimg (apt-get install zbar-tools)")
    tokens = {"teacher": TEACHER, "anna": ANNA, "张伟": BEN}
    page.set_content(handout_html(tokens, "http://10.0.0.5:4020/"))
    codes = page.locator(".card svg")
    assert codes.count() == 3
    read = []
    for i in range(3):
        shot = tmp_path / f"card{i}.png"
        codes.nth(i).screenshot(path=str(shot))
        done = subprocess.run([str(zbarimg), "--raw", "-q", str(shot)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        read.append(done.stdout.strip())
    assert read == [f"http://10.0.0.5:4020/usage#token={TEACHER}",
                    f"http://10.0.0.5:4020/#token={ANNA}", f"http://10.0.0.5:4020/#token={BEN}"]


def test_revoke_and_add_edit_the_file_in_one_step(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    path = roster_file(tmp_path / "class.txt", teacher=TEACHER, anna=ANNA, ben=BEN)
    assert tokens_main(["revoke", str(path), "ben"]) == 0
    assert "# class 7b" in path.read_text() and set(parse_roster(path.read_text())) == {
        "teacher", "anna"}
    assert tokens_main(["add", str(path), "ben"]) == 0
    renewed = parse_roster(path.read_text())["ben"]
    assert renewed != BEN and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens_main(["revoke", str(path), "nobody"]) == 2
    assert tokens_main(["handout", str(path), "--url", "http://0.0.0.0:4020/", "--out",
                        str(tmp_path / "h.html")]) == 2
    said = capsys.readouterr()
    assert "not in" in said.err and "not an address to open" in said.err
    assert renewed not in said.out + said.err and "added ben" in said.out
