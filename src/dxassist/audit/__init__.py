"""The audit trail (see :mod:`dxassist.audit.trail`; the command line in
:mod:`dxassist.audit.cli`). Importing this package is cheap: the CLI loads the database
code only when an audit command runs."""
