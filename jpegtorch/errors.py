"""The one exception type of jpegtorch's codec paths."""

from __future__ import annotations


class JPEGError(ValueError):
    """A JPEG (or .jtc container) could not be read, written or is unsupported.

    Subclasses ``ValueError`` so that callers catching bad-input errors
    generically still catch it. The message is one line and names what is
    wrong (and, where known, the file).
    """
