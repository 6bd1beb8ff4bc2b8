"""The ``dxassist`` command.

Exit codes: 0 every file read; 2 bad command line or setting; 3 at least one input could
not be read (the others are still read and reported), or an account could not be created;
4 the model could not be loaded; 5 an optional dependency is missing; 6 the database cannot
be reached; 1 an internal error (a bug: please report it with the file that caused it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dxassist import __version__
from dxassist.assistant import cli as assistant_cli
from dxassist.audit import cli as audit_cli
from dxassist.cxr.taxonomy import DISPLAY_NAMES, FINDINGS
from dxassist.errors import DxAssistError, InputError, ModelError, StoreUnavailableError
from dxassist.interop.commands import add_dicom_options, apply_dicom_options
from dxassist.interop.commands import describe as describe_dicom
from dxassist.interop.commands import register as register_dicom
from dxassist.prognosis import cli as prognosis_cli
from dxassist.research_export import register as register_export

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from dxassist.config import Settings
    from dxassist.store.models import User

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INPUT, EXIT_MODEL = 0, 1, 2, 3, 4
#: an optional dependency (the train extra) is not installed
EXIT_DEPENDENCY = 5
#: what a shell reports when the reader of our output goes away (128 + SIGPIPE)
EXIT_BROKEN_PIPE = 141
DEFAULT_HEATMAP_DIR = Path("dxassist-heatmaps")
DISCLAIMER = (
    "Research use only: not a medical device. Every read must be confirmed by a radiologist."
)


def _err(message: str) -> None:
    print(f"dxassist: {message}", file=sys.stderr, flush=True)


def _shown(name: str) -> str:
    """A file name on one printable line: newlines and other control characters as
    escapes, bytes that are not valid UTF-8 (surrogate escapes) as ``\\xNN``."""
    out = []
    for c in name:
        if 0xDC80 <= ord(c) <= 0xDCFF:
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif c.isprintable():
            out.append(c)
        else:
            out.append(repr(c)[1:-1])
    return "".join(out)


def _print_json(obj: dict[str, object]) -> None:
    """One JSON object on one line, ASCII-escaped if the output encoding needs it."""
    line = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    try:
        line.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeError, LookupError):  # e.g. a file name that is not UTF-8
        line = json.dumps(obj, ensure_ascii=True, allow_nan=False)
    print(line, flush=True)


class _UsageError(Exception):
    """A bad option value noticed after parsing (exit code 2)."""


def _prepare_heatmap_dir(value: str) -> Path:
    """Create the heatmap folder up front so a bad one fails once, before any read."""
    if not value.strip():
        raise _UsageError("--heatmap-dir is empty; give a folder path or use --no-heatmap")
    folder = Path(value)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise _UsageError(
            f"--heatmap-dir {_shown(value)}: is a file, not a folder; give a folder path "
            "or use --no-heatmap"
        ) from exc
    except OSError as exc:
        raise _UsageError(
            f"--heatmap-dir {_shown(value)}: cannot be created ({exc.strerror or exc}); "
            "give a writable folder or use --no-heatmap"
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _UsageError(
            f"--heatmap-dir {_shown(value)}: is not writable; give a writable folder or "
            "use --no-heatmap"
        )
    return folder


def _format_human(result: object) -> str:
    from dxassist.pipeline import ReadResult

    assert isinstance(result, ReadResult)
    r, meta = result.reading, result.radiograph.meta
    rows, cols = result.radiograph.pixels.shape
    desc = ", ".join(
        x
        for x in (
            meta.modality,
            meta.view_position,
            f"{cols}x{rows}",
            meta.photometric,
        )
        if x
    )
    bars = []
    for name in FINDINGS:
        p = r.probabilities[name]
        bars.append(f"    {DISPLAY_NAMES[name]:<32} {p:6.1%}  {'#' * round(p * 30)}")
    lines = [
        f"{_shown(result.file)}  ({desc})",
        f"  top finding     {DISPLAY_NAMES[r.top_finding]} ({r.probabilities[r.top_finding]:.1%})",
        "  probabilities",
        *bars,
        f"  abnormal score  {r.abnormal:.3f}  (1 - p(normal))",
        f"  priority        {str(r.priority).upper()}  (thresholds: priority >= "
        f"{result.model.thresholds.priority:.3f}, urgent >= {result.model.thresholds.urgent:.3f})",
    ]
    if result.heatmap is not None:
        lines.append(
            f"  heatmap         {result.heatmap}  (evidence for: "
            f"{DISPLAY_NAMES[r.heatmap_finding]})"
        )
    if result.warnings:
        lines.append("  warnings")
        lines.extend(f"    ! {w}" for w in result.warnings)
    else:
        lines.append("  warnings        none")
    lines.append(f"  model           {result.model.name} {result.model.version}")
    return "\n".join(lines)


def cmd_read(args: argparse.Namespace) -> int:
    from dxassist.cxr.runtime import CxrModel
    from dxassist.pipeline import heatmap_path, read_file

    heatmap_dir: Path | None = None
    try:
        if not args.no_heatmap:
            heatmap_dir = _prepare_heatmap_dir(args.heatmap_dir)
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    try:
        model = CxrModel.load(args.model)
    except ModelError as exc:
        _err(str(exc))
        return EXIT_MODEL
    # never write a heatmap over one of the inputs (e.g. x_heatmap.png given back to us);
    # realpath, unlike Path.resolve, does not raise on a symlink loop
    taken: set[Path] = set()
    if heatmap_dir is not None:
        here = os.path.realpath(heatmap_dir)
        for name in args.files:
            if os.path.realpath(Path(name).parent) == here:
                taken.add(heatmap_dir / Path(name).name)
    status = EXIT_OK
    n_read = 0
    for i, name in enumerate(args.files):
        path = Path(name)
        try:
            target = heatmap_path(heatmap_dir, path, taken) if heatmap_dir else None
            result = read_file(path, model, target)
        except InputError as exc:
            status = EXIT_INPUT
            message = str(exc)
            # one line that starts with the file name, whether or not the reason names it
            for prefix in (f"{name}: ", f"{path}: "):
                message = message.removeprefix(prefix)
            _err(f"{_shown(name)}: {_shown(message)}")
            if args.json:
                _print_json({"file": name, "error": message})
            continue
        except DxAssistError as exc:
            _err(f"{_shown(name)}: {_shown(str(exc))}")
            return exc.exit_code
        except OSError as exc:  # the heatmap could not be written (disk full, removed...)
            status = EXIT_INPUT
            message = (
                f"heatmap could not be written to {exc.filename or target} "
                f"({exc.strerror or exc}); check that --heatmap-dir is a writable folder "
                "with free space, or use --no-heatmap"
            )
            _err(f"{_shown(name)}: {_shown(message)}")
            if args.json:
                _print_json({"file": name, "error": message})
            continue
        n_read += 1
        if args.json:
            _print_json(result.to_json())
        else:
            if i:
                print()
            print(_format_human(result), flush=True)
    if n_read and not args.json:
        print(f"\n{DISCLAIMER}")
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    """Read the real PA chest CR that ships in the PyPI package pydicom-data."""
    try:
        from pydicom.data import get_testdata_file

        sample = get_testdata_file("RG1_UNCR.dcm")
    except Exception:  # pydicom-data not installed or its file missing
        sample = None
    if not sample:
        _err(
            "the demo radiograph RG1_UNCR.dcm comes from the PyPI package pydicom-data; "
            "install it with: pip install pydicom-data"
        )
        return EXIT_INPUT
    print(f"Reading the real PA chest CR shipped in pydicom-data: {sample}\n")
    args.files = [str(sample)]
    return cmd_read(args)


def cmd_train(args: argparse.Namespace) -> int:
    try:
        from dxassist.cxr.train import TrainConfig, train
    except ImportError as exc:
        _err(
            f"training needs the train extra ({exc.name} is missing): pip install "
            "torch==2.13.0 && pip install -e '.[train]'"
        )
        return EXIT_DEPENDENCY
    manifest = Path(args.manifest)
    if not manifest.is_file():
        _err(f"manifest {manifest} not found")
        return EXIT_INPUT
    cfg = TrainConfig(
        manifest=manifest,
        image_root=Path(args.image_root) if args.image_root else manifest.parent,
        out_dir=Path(args.out),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_minutes=args.max_minutes,
        patience=args.patience,
        limit_per_split=args.limit,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        resume=args.resume,
        seed=args.seed,
        model_version=args.model_version,
        balance_sources=args.balance_sources,
    )
    meta = train(cfg)
    print(json.dumps({k: v for k, v in meta.items() if k != "training"}, indent=2))
    print(f"model written to {cfg.out_dir}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from dxassist.cxr.evaluate import evaluate, format_table, write_report
    from dxassist.cxr.runtime import CxrModel

    manifest = Path(args.manifest)
    if not manifest.is_file():
        _err(f"manifest {manifest} not found")
        return EXIT_INPUT
    model = CxrModel.load(args.model)
    report = evaluate(
        model,
        manifest,
        Path(args.image_root) if args.image_root else None,
        split=args.split,
        n_boot=args.n_boot,
    )
    note = write_report(report, Path(args.out))
    print(format_table(report))
    if note:
        print(note)
    print(f"\nreport written to {args.out}")
    return EXIT_OK


def _service_settings() -> Settings:
    from dxassist.config import Settings

    return Settings.from_env()


def _migrated_sessions(settings: Settings) -> sessionmaker[Session]:
    from dxassist.store import upgrade_to_head
    from dxassist.store.db import session_factory_for

    try:
        upgrade_to_head(settings.database_url)
    except Exception as exc:
        raise StoreUnavailableError(
            f"cannot open the database at {_redacted(settings.database_url)} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); check "
            "DXASSIST_DATABASE_URL (and that the server is running) or DXASSIST_DATA_DIR"
        ) from exc
    return session_factory_for(settings.database_url)


def _redacted(url: str) -> str:
    from sqlalchemy import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid URL>"


def _read_password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise _UsageError("--password-stdin: no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise _UsageError("no terminal to ask for the password; pipe it in with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise _UsageError("the two passwords differ; nothing was changed")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    from dxassist.accounts import create_user

    try:
        password = _read_password(args)
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    settings = _service_settings()
    sessions = _migrated_sessions(settings)
    with sessions() as session:
        user = create_user(session, args.username, password, args.role)
        audit_cli.record_command(
            session, "user_add", {"user": user.username, "role": user.role.value}
        )
    print(f"user {user.username} ({user.role.value}) created in {_redacted(settings.database_url)}")
    return EXIT_OK


def _user_or_exit(session: Session, username: str) -> User | None:
    from dxassist.accounts.service import find_user

    user = find_user(session, username)
    if user is None:
        _err(f"no user {username!r}; `dxassist user list` shows who there is")
    return user


def cmd_user_passwd(args: argparse.Namespace) -> int:
    from dxassist.accounts.service import set_password

    try:
        password = _read_password(args)
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    sessions = _migrated_sessions(_service_settings())
    with sessions() as session:
        user = _user_or_exit(session, args.username)
        if user is None:
            return EXIT_USAGE
        set_password(session, user, password)
        audit_cli.record_command(session, "user_passwd", {"user": user.username})
    print(f"password of {user.username} changed; their browser sessions were ended")
    return EXIT_OK


def cmd_user_active(args: argparse.Namespace) -> int:
    from dxassist.accounts.service import set_active

    active = args.user_command == "enable"
    sessions = _migrated_sessions(_service_settings())
    with sessions() as session:
        user = _user_or_exit(session, args.username)
        if user is None:
            return EXIT_USAGE
        set_active(session, user, active)
        action = "user_enable" if active else "user_disable"
        audit_cli.record_command(session, action, {"user": user.username})
    if active:
        print(f"user {user.username} enabled")
    else:
        print(f"user {user.username} disabled: logged out, and their API tokens are refused")
    return EXIT_OK


def cmd_user_role(args: argparse.Namespace) -> int:
    from dxassist.accounts.service import set_role
    from dxassist.store.models import Role

    sessions = _migrated_sessions(_service_settings())
    with sessions() as session:
        user = _user_or_exit(session, args.username)
        if user is None:
            return EXIT_USAGE
        before = user.role.value
        set_role(session, user, Role(args.role))
        audit_cli.record_command(
            session, "user_role_change", {"user": user.username, "from": before, "to": args.role}
        )
    print(f"user {user.username} is now {args.role} (was {before}); their sessions ended")
    return EXIT_OK


def cmd_user_unlock(args: argparse.Namespace) -> int:
    from dxassist.accounts import ratelimit

    sessions = _migrated_sessions(_service_settings())
    with sessions() as session:
        user = _user_or_exit(session, args.username)
        if user is None:
            return EXIT_USAGE
        n = ratelimit.clear(session, user.username)
        audit_cli.record_command(session, "user_unlock", {"user": user.username, "cleared": n})
    print(
        f"user {user.username} unlocked ({n} recent failed login{'s' if n != 1 else ''} "
        "forgotten); a lock on the client address, if any, ends by itself "
        f"{ratelimit.WINDOW.seconds // 60} minutes after its last failure"
    )
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from dxassist.store.models import User

    settings = _service_settings()
    sessions = _migrated_sessions(settings)
    with sessions() as session:
        users = list(session.scalars(select(User).order_by(User.username)))
    print(f"users in {_redacted(settings.database_url)}:")
    if not users:
        print("no users yet: create one with `dxassist user add NAME --role admin`")
    for u in users:
        state = "" if u.active else "  (disabled)"
        print(f"{u.username:<24} {u.role.value:<12} created {u.created_at:%Y-%m-%d}{state}")
    return EXIT_OK


def cmd_token_create(args: argparse.Namespace) -> int:
    from dxassist.accounts import create_token
    from dxassist.accounts.service import find_user

    sessions = _migrated_sessions(_service_settings())
    with sessions() as session:
        user = find_user(session, args.username)
        if user is None:
            _err(f"no user {args.username!r}; create it first with `dxassist user add`")
            return EXIT_USAGE
        token = create_token(session, user, args.name, args.scope)
        audit_cli.record_command(
            session,
            "token_create",
            {"user": user.username, "name": args.name, "token_id": _token_id(session, token)},
        )
    print(token)
    scope = f"limited to {', '.join(sorted(set(args.scope)))}" if args.scope else "all of its role"
    print(
        f"API token {args.name!r} acting as {user.username} ({user.role.value}; {scope}); it is "
        "shown only now: send it as 'Authorization: Bearer <token>'",
        file=sys.stderr,
    )
    return EXIT_OK


def _token_id(session: Session, token: str) -> str:
    """The first 8 characters of the id of a token just created (what `token list` shows)."""
    import hashlib

    from sqlalchemy import select

    from dxassist.store.models import ApiToken

    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    found = session.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest))
    return (found or "")[:8]


def _own_command() -> str:
    """How to call this dxassist again: ``dxassist`` if that is on PATH, else its path."""
    import shutil

    me = Path(sys.argv[0])
    if me.name == "dxassist":
        found = shutil.which("dxassist")
        if found and Path(found).resolve() == me.resolve():
            return "dxassist"
        return str(me)
    return "dxassist"


def cmd_token_list(args: argparse.Namespace) -> int:
    from dxassist.accounts.service import list_tokens

    sessions = _migrated_sessions(_service_settings())
    with sessions() as session:
        tokens = list_tokens(session)
    if not tokens:
        print("no API tokens; create one with `dxassist token create USER --name NAME`")
    for token, user in tokens:
        used = (
            f"last used {token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
        )
        state = "REVOKED" if token.revoked else "active"
        scopes = ",".join(token.scopes) if token.scopes is not None else "role"
        print(f"{token.id[:8]}  {token.name:<20} {user.username:<16} {state:<8} "
              f"created {token.created_at:%Y-%m-%d}, {used}, scopes: {scopes}")  # fmt: skip
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from dxassist.accounts.service import revoke_token

    sessions = _migrated_sessions(_service_settings())
    with sessions() as session:
        token = revoke_token(session, args.token_id)
        if token is not None:
            audit_cli.record_command(
                session, "token_revoke", {"token_id": token.id[:8], "name": token.name}
            )
    if token is None:
        _err(f"no API token has an id starting {args.token_id!r}; see `dxassist token list`")
        return EXIT_USAGE
    print(f"API token {token.id[:8]} ({token.name}) revoked")
    return EXIT_OK


def _port_free(host: str, port: int, option: str = "--host") -> str | None:
    """None if we can listen on host:port, else the reason (`option` names the host's)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve {option} {host!r} ({exc.strerror})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from dxassist.accounts import has_users
    from dxassist.cxr.runtime import CxrModel
    from dxassist.web import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    logging.getLogger("highdicom").setLevel(logging.WARNING)
    if not 0 < args.port < 65536:
        _err(f"--port {args.port} is not a TCP port (1-65535)")
        return EXIT_USAGE
    settings = apply_dicom_options(_service_settings(), args)  # bad settings first
    busy = _port_free(args.host, args.port)
    if busy:
        _err(
            f"{busy}: is another dxassist (or another program) already running there? "
            "Stop it or choose another --port"
        )
        return EXIT_USAGE
    if settings.dicom_port:
        busy = _port_free(args.dicom_host, settings.dicom_port, "--dicom-host")
        if busy:
            _err(f"{busy}: check --dicom-host and --dicom-port (is the port in use?)")
            return EXIT_USAGE
    sessions = _migrated_sessions(settings)
    try:
        model = CxrModel.load(args.model)
    except ModelError as exc:
        _err(str(exc))
        return EXIT_MODEL
    app = create_app(settings, model, migrate=False)
    with sessions() as session:
        users_exist = has_users(session)
    print(
        f"dxassist {__version__}: data in {settings.data_dir.absolute()}, database "
        f"{_redacted(settings.database_url)}, model {model.info.name} {model.info.version}"
    )
    print(describe_dicom(settings))
    if not users_exist:
        prog = _own_command()
        print(
            "No users yet. Create the first one in another terminal (same folder and "
            f"DXASSIST_* settings):\n    {prog} user add admin --role admin\n"
            f"    {prog} user add NAME --role radiologist"
        )
    print(f"Worklist: http://{args.host}:{args.port}/   (Ctrl+C stops)", flush=True)
    # X-Forwarded-For is not trusted (a local client could pick its own address for the
    # login limit and the audit trail); behind a proxy the client is the proxy's address
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
        proxy_headers=False,
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dxassist",
        description="AI second opinions for hospitals: chest radiograph reading with a "
        "worklist and DICOM/FHIR integration, COVID-19 outcome risk from admission labs, and "
        "a symptom-based diagnostic assistant. " + DISCLAIMER,
    )
    parser.add_argument("--version", action="version", version=f"dxassist {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_read_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="one JSON object per line per file")
        p.add_argument(
            "--heatmap-dir",
            default=str(DEFAULT_HEATMAP_DIR),
            help="folder for heatmap PNGs (default: ./dxassist-heatmaps)",
        )
        p.add_argument("--no-heatmap", action="store_true", help="do not write heatmaps")
        p.add_argument(
            "--model",
            default=None,
            help="model name in models/ or path to an .onnx file (its .json beside it)",
        )

    read = sub.add_parser(
        "read", help="read chest radiographs (DICOM, PNG, JPEG) and print the AI's findings"
    )
    read.add_argument("files", nargs="+", metavar="FILE")
    add_read_options(read)
    read.set_defaults(func=cmd_read)

    demo = sub.add_parser("demo", help="read the real chest CR shipped in pydicom-data")
    add_read_options(demo)
    demo.set_defaults(func=cmd_demo)

    tr = sub.add_parser("train", help="train the chest X-ray model (needs the train extra)")
    tr.add_argument("--manifest", required=True, help="CSV like shared/data/cxr/manifest.csv")
    tr.add_argument("--image-root", help="folder the manifest paths are relative to")
    tr.add_argument("--out", required=True, help="output folder (ONNX, JSON, checkpoints)")
    tr.add_argument("--epochs", type=int, default=6)
    tr.add_argument("--batch-size", type=int, default=32)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--max-minutes", type=float, default=100.0)
    tr.add_argument("--patience", type=int, default=3)
    tr.add_argument("--limit", type=int, help="use at most N images per split (smoke tests)")
    tr.add_argument("--cache-dir", help="cache preprocessed images here")
    tr.add_argument("--resume", action="store_true", help="continue from out/checkpoint.pt")
    tr.add_argument("--seed", type=int, default=20261203)
    tr.add_argument(
        "--model-version",
        default="0.0.0-dev",
        help="version written into the model metadata (default 0.0.0-dev, so a retrained "
        "model is never mistaken for a shipped one)",
    )
    tr.add_argument(
        "--balance-sources",
        action="store_true",
        help="weight films so that within each label every dataset counts equally "
        "(against learning which hospital a film came from)",
    )
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser(
        "evaluate", help="evaluate a model on a manifest split, with 95%% CIs by patient"
    )
    ev.add_argument("--manifest", required=True, help="CSV like shared/data/cxr/manifest.csv")
    ev.add_argument("--image-root", help="folder the manifest paths are relative to")
    ev.add_argument("--split", default="test", help="split to evaluate (default: test)")
    ev.add_argument(
        "--model", default=None, help="model name in models/ or .onnx path (default: shipped)"
    )
    ev.add_argument("--out", default="dxassist-eval", help="report folder (default: dxassist-eval)")
    ev.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    ev.set_defaults(func=cmd_evaluate)

    sv = sub.add_parser(
        "serve",
        help="run the worklist service (web UI + API + analysis worker)",
        description="Run the worklist service. Settings come from DXASSIST_* variables "
        "(DXASSIST_DATA_DIR, default ./dxassist-data; DXASSIST_DATABASE_URL, default SQLite "
        "in the data folder).",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument("--model", default=None, help="model name in models/ or .onnx path")
    add_dicom_options(sv, listen_default=None)
    sv.set_defaults(func=cmd_serve)

    register_dicom(sub)

    us = sub.add_parser("user", help="manage user accounts").add_subparsers(
        dest="user_command", required=True
    )
    ua = us.add_parser("add", help="create a user (asks for the password)")
    ua.add_argument("username")
    ua.add_argument(
        "--role",
        required=True,
        choices=["radiologist", "clinician", "researcher", "admin"],
        help="what the user may do: see docs/permissions.md",
    )
    ua.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    ua.set_defaults(func=cmd_user_add)
    ul = us.add_parser("list", help="list users")
    ul.set_defaults(func=cmd_user_list)
    up = us.add_parser("passwd", help="set a new password (ends the user's sessions)")
    up.add_argument("username")
    up.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    up.set_defaults(func=cmd_user_passwd)
    uu = us.add_parser("unlock", help="forget a user's failed logins (lift the rate limit)")
    uu.add_argument("username")
    uu.set_defaults(func=cmd_user_unlock)
    ur = us.add_parser("role", help="give a user another role (ends their sessions)")
    ur.add_argument("username")
    ur.add_argument(
        "--role", required=True, choices=["radiologist", "clinician", "researcher", "admin"]
    )
    ur.set_defaults(func=cmd_user_role)
    for verb, text in (("disable", "stop a user logging in or using tokens"), ("enable", "undo")):
        p = us.add_parser(verb, help=text)
        p.add_argument("username")
        p.set_defaults(func=cmd_user_active)

    tk = sub.add_parser("token", help="manage API tokens").add_subparsers(
        dest="token_command", required=True
    )
    tc = tk.add_parser("create", help="create an API token for a user (printed once)")
    tc.add_argument("username")
    tc.add_argument("--name", required=True, help="what uses the token, e.g. 'gateway'")
    tc.add_argument(
        "--scope",
        action="append",
        metavar="PERM",
        help="limit the token to this permission (repeat for several; e.g. studies:upload); "
        "default: all of the user's role (docs/permissions.md)",
    )
    tc.set_defaults(func=cmd_token_create)
    tl = tk.add_parser("list", help="list API tokens (ids, names, users, last use, scopes)")
    tl.set_defaults(func=cmd_token_list)
    tr_ = tk.add_parser("revoke", help="revoke an API token by its id (first 8+ characters)")
    tr_.add_argument("token_id")
    tr_.set_defaults(func=cmd_token_revoke)
    prognosis_cli.register(sub)
    assistant_cli.register(sub)
    register_export(sub)
    audit_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # never die on a character the console lacks
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        # the reader of our output went away (e.g. `dxassist read ... | head`): stop
        # quietly like other command-line tools; send the rest of stdout nowhere
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return EXIT_BROKEN_PIPE
    except DxAssistError as exc:
        _err(str(exc))
        return exc.exit_code
    except Exception as exc:
        _err(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in dxassist; "
            "please report it together with the command and input that caused it."
        )
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
