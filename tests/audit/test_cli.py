"""`dxassist audit verify/list` and the account commands' entries, through main()."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from dxassist.cli import main
from dxassist.config import Settings
from dxassist.store import make_engine
from dxassist.store.db import dispose_factory_for


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("DXASSIST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DXASSIST_DATABASE_URL", settings.database_url)
    yield settings
    dispose_factory_for(settings.database_url)


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_account_commands_are_recorded_and_the_trail_verifies(
    env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pw = "a long enough password\n"
    steps = [
        ("user", "add", "ana", "--role", "radiologist", "--password-stdin"),
        ("user", "passwd", "ana", "--password-stdin"),
        ("user", "disable", "ana"),
        ("user", "enable", "ana"),
        ("token", "create", "ana", "--name", "gateway"),
    ]
    for argv in steps:
        code, _out, err = run(capsys, monkeypatch, *argv, stdin=pw)
        assert code == 0, (argv, err)
    code, out, _ = run(capsys, monkeypatch, "token", "list")
    token_id = out.split()[0]
    assert run(capsys, monkeypatch, "token", "revoke", token_id)[0] == 0

    code, out, _ = run(capsys, monkeypatch, "audit", "list", "--json", "--user", "system")
    assert code == 0
    items = json.loads(out)["items"]
    assert [e["action"] for e in reversed(items)] == [
        "user_add",
        "user_passwd",
        "user_disable",
        "user_enable",
        "token_create",
        "token_revoke",
    ]
    assert all(e["actor_role"] == "cli" and "@" in e["client"] for e in items)
    assert items[-1]["detail"] == {"role": "radiologist", "user": "ana"}
    assert items[1]["detail"]["token_id"] == token_id == items[0]["detail"]["token_id"]
    assert "a long enough password" not in out

    code, out, _ = run(capsys, monkeypatch, "audit", "list", "--action", "user_add")
    assert code == 0 and "user_add" in out and "token_create" not in out
    # `audit list` itself was recorded (twice now)
    code, out, _ = run(capsys, monkeypatch, "audit", "list", "--action", "audit_view")
    assert out.count("audit_view") == 2

    code, out, _ = run(capsys, monkeypatch, "audit", "verify", "--print-head")
    assert code == 0 and out.startswith("9 entries, chain intact")
    head = out.split("head ")[1].strip()
    assert head.startswith("9:") and len(head) == 2 + 64
    assert run(capsys, monkeypatch, "audit", "verify", "--expect", head)[0] == 0

    # an attacker with database access edits entry 1 (dropping the trigger first)
    engine = make_engine(env.database_url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_event_no_change ON audit_event"))
        else:
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
        conn.execute(text("UPDATE audit_event SET detail = '{}' WHERE id = 1"))
    engine.dispose()
    code, out, err = run(capsys, monkeypatch, "audit", "verify")
    assert code == 7 and out == ""
    assert "NOT intact" in err and "entry 1: its content does not match its hash" in err


def test_bad_options_are_clear(
    env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for argv, words in (
        (("audit", "list", "--action", "peek"), "action='peek' is unknown"),
        (("audit", "list", "--since", "last week"), "YYYY-MM-DD"),
        (("audit", "list", "--limit", "0"), "limit=0 is out of range"),
        (("audit", "verify", "--expect", "5:abc"), "give ID:HASH"),
    ):
        code, out, err = run(capsys, monkeypatch, *argv)
        assert code == 3 and words in err and "Traceback" not in err, (argv, err)
    code, out, _ = run(capsys, monkeypatch, "audit", "verify")
    assert code == 0 and out.strip() == "0 entries, chain intact"


def test_a_role_change_is_recorded_and_ends_sessions(
    env: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dxassist.accounts import start_session
    from dxassist.accounts.service import find_user, resolve_session
    from dxassist.store.db import session_factory_for

    pw = "a long enough password\n"
    assert (
        run(
            capsys,
            monkeypatch,
            "user",
            "add",
            "li",
            "--role",
            "radiologist",
            "--password-stdin",
            stdin=pw,
        )[0]
        == 0
    )
    sessions = session_factory_for(env.database_url)
    with sessions() as s:
        user = find_user(s, "li")
        assert user is not None
        cookie = start_session(s, user)
    code, out, err = run(capsys, monkeypatch, "user", "role", "li", "--role", "clinician")
    assert code == 0 and "now clinician (was radiologist)" in out, err
    with sessions() as s:
        assert resolve_session(s, cookie) is None  # logged out: the rights changed
        user = find_user(s, "li")
        assert user is not None and user.role.value == "clinician"
    code, out, _ = run(
        capsys, monkeypatch, "audit", "list", "--json", "--action", "user_role_change"
    )
    (entry,) = json.loads(out)["items"]
    assert entry["detail"] == {"user": "li", "from": "radiologist", "to": "clinician"}
    assert run(capsys, monkeypatch, "user", "role", "nobody", "--role", "admin")[0] == 2
