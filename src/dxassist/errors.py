"""One exception hierarchy for dxassist.

Every error carries a message a user can act on: what is wrong and what to do.
The CLI maps these to exit codes, the web API to 4xx responses.
"""

from __future__ import annotations


class DxAssistError(Exception):
    """Base class of every error dxassist raises on purpose."""

    #: process exit code the CLI uses for this error
    exit_code: int = 1


class InputError(DxAssistError):
    """The input (file, bytes, request) cannot be used; the user must fix it."""

    exit_code = 3


class UnreadableFileError(InputError):
    """The file is missing, empty, a directory, truncated or not an image we know."""


class NotARadiographError(InputError):
    """The file is a valid image but not a projection radiograph (e.g. CT, MR, report)."""


class MissingDecoderError(InputError):
    """The pixel data uses a compression for which no decoder is installed."""


class ModelError(DxAssistError):
    """The model file is missing, corrupt or does not match what the runtime expects."""

    exit_code = 4


class StoreUnavailableError(DxAssistError):
    """The database cannot be reached or opened (wrong URL, server down, no permission)."""

    exit_code = 6
