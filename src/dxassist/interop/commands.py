"""``dxassist dicom ...`` commands and the DICOM options of ``dxassist serve``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import threading
from typing import Any

from dxassist.config import (
    NON_CHEST_POLICIES,
    DicomDestination,
    Settings,
    SettingsError,
    check_ae_title,
    parse_destination,
)

DEFAULT_DICOM_PORT = 11112


def add_dicom_options(p: argparse.ArgumentParser, *, listen_default: int | None) -> None:
    """The receiver and destination options shared by ``serve`` and ``dicom listen``."""
    p.add_argument(
        "--dicom-port",
        type=int,
        default=listen_default,
        help="port of the DICOM receiver (C-STORE, C-ECHO)"
        + (f"; default {listen_default}" if listen_default else "; default: no receiver")
        + " (env DXASSIST_DICOM_PORT)",
    )
    p.add_argument("--dicom-host", default="0.0.0.0", help="address the DICOM receiver listens on")
    p.add_argument("--ae-title", help="dxassist's AE title (default DXASSIST; DXASSIST_AE_TITLE)")
    p.add_argument(
        "--allow-aet",
        action="append",
        metavar="AET",
        help="accept associations only from this calling AE title (repeat for several; "
        "default: any; DXASSIST_DICOM_ALLOWED_AETS)",
    )
    p.add_argument(
        "--non-chest",
        choices=NON_CHEST_POLICIES,
        help="instances that are not chest radiographs: store (keep, show as skipped, "
        "default) or refuse (DICOM failure status); DXASSIST_DICOM_NON_CHEST",
    )
    p.add_argument(
        "--send-to",
        action="append",
        metavar="DEST",
        help="send results (SR + heatmap SC) of DICOM studies to AET@host:port (C-STORE) or "
        "an http(s)://.../dicom-web URL (STOW-RS); repeat for several; DXASSIST_SEND_TO",
    )


def apply_dicom_options(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with the command-line DICOM options on top of the DXASSIST_* ones."""
    changes: dict[str, Any] = {"dicom_host": args.dicom_host}
    if args.dicom_port is not None:
        if not 0 < args.dicom_port < 65536:
            raise SettingsError(f"--dicom-port {args.dicom_port} is not a TCP port (1-65535)")
        changes["dicom_port"] = args.dicom_port
    if args.ae_title:
        changes["ae_title"] = check_ae_title(args.ae_title, "--ae-title")
    if args.allow_aet:
        changes["dicom_allowed_aets"] = tuple(
            check_ae_title(a, "--allow-aet") for a in args.allow_aet
        )
    if args.non_chest:
        changes["non_chest"] = args.non_chest
    if args.send_to:
        changes["destinations"] = tuple(parse_destination(d) for d in args.send_to)
    return dataclasses.replace(settings, **changes)


def describe(settings: Settings) -> str:
    """One line on the DICOM set-up, for the start-up banner."""
    if not settings.dicom_port:
        receive = "no DICOM receiver"
    else:
        allowed = ", ".join(settings.dicom_allowed_aets) or "any calling AE"
        receive = (
            f"DICOM receiver {settings.ae_title} on port {settings.dicom_port} ({allowed}; "
            f"non-chest instances: {settings.non_chest})"
        )
    send = ", ".join(str(d) for d in settings.destinations) or "nowhere"
    return f"{receive}; results of DICOM studies sent to {send}"


def cmd_listen(args: argparse.Namespace) -> int:
    """Receiver + analysis worker + result sender, without the web service."""
    from dxassist.cli import EXIT_MODEL, EXIT_OK, _err, _migrated_sessions
    from dxassist.cxr.runtime import CxrModel
    from dxassist.errors import ModelError
    from dxassist.interop.delivery import Sender
    from dxassist.interop.receiver import DicomReceiver
    from dxassist.jobs import Worker

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    logging.getLogger("highdicom").setLevel(logging.WARNING)
    settings = apply_dicom_options(Settings.from_env(), args)
    sessions = _migrated_sessions(settings)
    try:
        model = CxrModel.load(args.model)
    except ModelError as exc:
        _err(str(exc))
        return EXIT_MODEL
    sender = Sender(settings, sessions)
    worker = Worker(settings, model, sessions, on_analysed=sender.wake)
    receiver = DicomReceiver(
        settings,
        sessions,
        port=settings.dicom_port or DEFAULT_DICOM_PORT,
        host=settings.dicom_host,
        on_stored=worker.wake,
    )
    receiver.start()
    worker.start()
    sender.start()
    print(f"dxassist: {describe(settings)}. Ctrl+C stops.", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    receiver.stop()
    sender.stop()
    worker.stop()
    return EXIT_OK


def cmd_echo(args: argparse.Namespace) -> int:
    """C-ECHO a destination: is the PACS reachable, and does it accept our AE title?"""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    from dxassist.cli import EXIT_INPUT, EXIT_OK, _err

    destination = parse_destination(args.destination)
    if not isinstance(destination, DicomDestination):
        raise SettingsError("dicom echo needs AET@host:port (a DICOMweb URL has no C-ECHO)")
    ae = AE(ae_title=check_ae_title(args.ae_title or Settings.from_env().ae_title, "--ae-title"))
    ae.acse_timeout = ae.network_timeout = args.timeout
    ae.add_requested_context(Verification)
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        _err(
            f"{destination}: no association ("
            + ("rejected: is our AE title allowed there?" if assoc.is_rejected else "unreachable")
            + ")"
        )
        return EXIT_INPUT
    status = assoc.send_c_echo()
    assoc.release()
    code = int(getattr(status, "Status", -1)) if status else -1
    if code != 0:
        _err(f"{destination}: C-ECHO status 0x{code:04X}" if code >= 0 else "no response")
        return EXIT_INPUT
    print(f"{destination}: C-ECHO succeeded")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``dicom listen`` and ``dicom echo`` to the CLI's subcommands."""
    dicom = sub.add_parser(
        "dicom", help="DICOM network: receive studies, check a PACS destination"
    ).add_subparsers(dest="dicom_command", required=True)
    listen = dicom.add_parser(
        "listen",
        help="run the DICOM receiver, analysis and result sending without the web service",
    )
    add_dicom_options(listen, listen_default=DEFAULT_DICOM_PORT)
    listen.add_argument("--model", default=None, help="model name in models/ or .onnx path")
    listen.set_defaults(func=cmd_listen)
    echo = dicom.add_parser("echo", help="C-ECHO a DICOM node (AET@host:port)")
    echo.add_argument("destination", metavar="AET@HOST:PORT")
    echo.add_argument("--ae-title", help="our calling AE title (default DXASSIST)")
    echo.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    echo.set_defaults(func=cmd_echo)
