"""Scan scripts: which coefficient bits each scan of a multi-scan JPEG carries.

A JPEG frame (SOF) lists its components; its entropy-coded data comes in one
or more scans, each introduced by an SOS marker segment (ITU-T T.81, B.2.3)::

    SOS  Ns  (Cs_j, Td_j << 4 | Ta_j) x Ns  Ss  Se  Ah << 4 | Al

- ``Ns`` components (1..4), listed in frame order; several = interleaved;
- ``Ss..Se``: the spectral band (zigzag indexes 0..63) the scan carries;
- ``Ah``/``Al``: successive approximation: the scan sends the coefficients
  shifted right by ``Al``; ``Ah`` is the ``Al`` of the previous scan of the
  same band (0 in a first scan), and a refinement scan sends one more bit
  (``Al = Ah - 1``).

A sequential file has scans with ``Ss=0, Se=63, Ah=Al=0`` that together send
each component once (the baseline writer: one interleaved scan). A
progressive file (SOF2, T.81 Annex G) splits the coefficients into bands and
bits; DC (``Ss=Se=0``) and AC bands never share a scan, AC scans carry one
component, and a component's AC bands come after its first DC scan.

This module holds the scan list (:class:`Scan`), and, with libjpeg-turbo's
rules (facts taken from its sources, the code is ours):

- :func:`simple_progression`: ``jpeg_simple_progression`` (jcparam.c), the
  script of ``cjpeg -progressive`` and Pillow's ``progressive=True``: for
  YCbCr, 10 scans (DC 0-0 Al=1 interleaved; Y 1-5 Al=2; Cr, Cb 1-63 Al=1; Y
  6-63 Al=2; Y 1-63 2->1; DC refine; Cr, Cb, Y 1-63 1->0); for any other
  colour space the all-purpose script (DC, then per component 1-5 and 6-63
  Al=2, 1-63 2->1, DC refine, 1-63 1->0);
- :func:`validate_scans`: jcmaster.c's ``validate_script`` (same rules, one
  clear message each) -- the first scan decides progressive (its band is not
  0-63) or sequential;
- :func:`parse_scan_script`: cjpeg's ``-scans`` text format (rdswitch.c's
  ``read_scan_script``): entries separated by ``;``, each one to four
  component indexes, optionally ``:`` and ``Ss Se Ah Al`` (omitted:
  sequential ``0 63 0 0``); ``#`` starts a comment to the end of the line;
  any other punctuation (commas, dashes) between numbers is a separator, so
  ``0,1,2: 0-0, 0, 1;`` and ``0 1 2: 0 0 0 1;`` are the same scan. At most
  100 scans (cjpeg's limit).

All functions are pure; scans are immutable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jpegtorch.errors import JPEGError

MAX_COMPS_IN_SCAN = 4  # T.81 B.2.3, libjpeg's MAX_COMPS_IN_SCAN
MAX_AH_AL = 10  # libjpeg's limit for 8-bit data (jcmaster.c)
MAX_SCANS = 100  # cjpeg's limit on a scan script file (rdswitch.c)
MAX_SCRIPT_BYTES = 64 * 1024  # 100 scans take ~3 KB; a bigger file is not a script


@dataclass(frozen=True)
class Scan:
    """One scan of a JPEG file.

    Attributes:
        components: indexes (0-based, in frame order) of the components the
            scan carries, increasing, 1..4 of them.
        ss, se: first and last zigzag index of the spectral band, 0..63.
        ah, al: successive approximation: the scan carries the coefficients
            shifted right by ``al``; ``ah`` is 0 in a band's first scan, else
            the ``al`` of the band's previous scan (then ``al == ah - 1``).
    """

    components: tuple[int, ...]
    ss: int = 0
    se: int = 63
    ah: int = 0
    al: int = 0

    def __post_init__(self) -> None:
        comps = self.components
        if isinstance(comps, int):
            comps = (comps,)
        comps = tuple(comps)
        values = (*comps, self.ss, self.se, self.ah, self.al)
        if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise JPEGError(f"scan values must be integers, got {self}")
        object.__setattr__(self, "components", comps)

    @property
    def is_sequential(self) -> bool:
        """The whole block at full precision (a scan of a sequential file)."""
        return (self.ss, self.se, self.ah, self.al) == (0, 63, 0, 0)

    @property
    def is_dc(self) -> bool:
        """A progressive DC scan (``Ss = Se = 0``)."""
        return self.ss == 0 and self.se == 0

    @property
    def is_refinement(self) -> bool:
        """A successive-approximation refinement scan (``Ah > 0``)."""
        return self.ah != 0

    def __str__(self) -> str:
        return format_scan(self)


ScansLike = Sequence["Scan | tuple"] | str | os.PathLike
"""What the writers accept as ``scans``: :class:`Scan` objects (or tuples
``(components, ss, se, ah, al)``), or the path of a cjpeg ``-scans`` file."""


def format_scan(scan: Scan) -> str:
    """One script entry, e.g. ``"0,1,2: 0-0, 0, 1;"`` (sequential: ``"0;"``)."""
    comps = ",".join(str(c) for c in scan.components)
    if scan.is_sequential:
        return f"{comps};"
    return f"{comps}: {scan.ss}-{scan.se}, {scan.ah}, {scan.al};"


def format_scan_script(scans: Iterable[Scan], comment: str | None = None) -> str:
    """The text of a cjpeg ``-scans`` file, one entry a line (with an optional
    ``#`` comment first); :func:`parse_scan_script` reads it back."""
    lines = [f"# {line}" for line in (comment.splitlines() if comment else [])]
    lines += [format_scan(s) for s in scans]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# cjpeg's -scans text format (rdswitch.c, read_scan_script)
# --------------------------------------------------------------------------------------

_EOF = ""
_HUGE = 10**9  # larger numbers are invalid anyway (validate_scans says so)
_SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale


class _Reader:
    """A character stream with cjpeg's ``text_getc`` (``#`` comments read as a
    newline) and ``ungetc``, counting lines for messages."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def getc(self) -> str:
        ch = self._raw()
        if ch == "#":
            while ch not in ("\n", _EOF):
                ch = self._raw()
        return ch

    def _raw(self) -> str:
        if self.pos >= len(self.text):
            return _EOF
        ch = self.text[self.pos]
        self.pos += 1
        if ch == "\n":
            self.line += 1
        return ch

    def ungetc(self) -> None:
        self.pos -= 1
        if self.text[self.pos] == "\n":  # pragma: no cover - only digits are put back
            self.line -= 1

    def text_integer(self) -> tuple[int | None, str]:
        """rdswitch.c's ``read_text_integer``: (value or None, the character after it)."""
        ch = self.getc()
        while ch != _EOF and ch in _SPACE:
            ch = self.getc()
        if ch == _EOF or not ch.isdigit() or not ch.isascii():
            return None, ch
        value = 0
        while ch != _EOF and ch.isascii() and ch.isdigit():
            if value < _HUGE:  # saturate: a long run of digits stays linear time
                value = value * 10 + int(ch)
            ch = self.getc()
        return value, ch

    def scan_integer(self) -> tuple[int | None, str]:
        """rdswitch.c's ``read_scan_integer``: the terminator is ``;``, ``:``,
        end of text, or ``" "`` for anything else (another number follows)."""
        value, ch = self.text_integer()
        if value is None:
            return None, ch
        while ch != _EOF and ch in _SPACE:
            ch = self.getc()
        if ch != _EOF and ch.isascii() and ch.isdigit():
            self.ungetc()
            ch = " "
        elif ch not in (_EOF, ";", ":"):
            ch = " "
        return value, ch


def parse_scan_script(text: str, *, source: str = "scan script") -> tuple[Scan, ...]:
    """Parse the text of a cjpeg ``-scans`` file into scans (see the module doc).

    Accepts exactly what cjpeg accepts (same separators and comments); the
    scans are not validated against an image here (see :func:`validate_scans`).

    Raises:
        JPEGError: a malformed entry (with its line), more than 100 scans or
            more than 4 components in one scan, or no scan at all.
    """
    reader = _Reader(text)
    scans: list[Scan] = []

    def bad(what: str) -> JPEGError:
        return JPEGError(f"{source}: line {reader.line}: {what}")

    while True:
        value, term = reader.scan_integer()
        if value is None:
            break
        if len(scans) >= MAX_SCANS:
            raise bad(f"more than {MAX_SCANS} scans (cjpeg's limit)")
        comps = [value]
        while term == " ":
            if len(comps) >= MAX_COMPS_IN_SCAN:
                raise bad(f"more than {MAX_COMPS_IN_SCAN} components in one scan")
            value, term = reader.scan_integer()
            if value is None:
                raise bad("invalid scan entry: expected 'c1 c2 ...: Ss Se Ah Al;'")
            comps.append(value)
        params = [0, 63, 0, 0]
        if term == ":":
            for i in range(4):
                value, term = reader.scan_integer()
                if value is None or (i < 3 and term != " "):
                    raise bad("invalid scan entry: expected four numbers 'Ss Se Ah Al' "
                              "after ':'")
                params[i] = value
        if term not in (";", _EOF):
            raise bad("invalid scan entry: expected ';' after 'Ss Se Ah Al'")
        scans.append(Scan(tuple(comps), *params))
    if term != _EOF:
        raise bad(f"non-numeric data {term!r}")
    if not scans:
        raise JPEGError(f"{source}: no scans")
    return tuple(scans)


def read_scan_script(path: str | os.PathLike[str]) -> tuple[Scan, ...]:
    """Read a cjpeg ``-scans`` file (see :func:`parse_scan_script`).

    Raises:
        JPEGError: the file cannot be read or is malformed.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_SCRIPT_BYTES + 1)
    except OSError as exc:
        raise JPEGError(f"cannot read scan script {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_SCRIPT_BYTES:
        raise JPEGError(f"{name}: not a scan script (over {MAX_SCRIPT_BYTES // 1024} KiB)")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if "\0" in text:
        raise JPEGError(f"{name}: not a scan script (binary data)")
    return parse_scan_script(text, source=name)


def resolve_scans(scans: ScansLike) -> tuple[Scan, ...]:
    """Scans from :class:`Scan` objects, ``(components, ss, se, ah, al)``
    tuples (``components`` an int or a tuple), or a scan-script path."""
    if isinstance(scans, (str, os.PathLike)):
        return read_scan_script(scans)
    if isinstance(scans, Scan):
        return (scans,)
    try:
        items = list(scans)
    except TypeError:
        raise JPEGError(f"scans must be a list of Scan or a scan-script path, got "
                        f"{type(scans).__name__}") from None
    out = []
    for item in items:
        if isinstance(item, Scan):
            out.append(item)
        elif isinstance(item, (tuple, list)) and 1 <= len(item) <= 5:
            comps = item[0]
            out.append(Scan(tuple(comps) if isinstance(comps, (tuple, list)) else comps,
                            *item[1:]))
        else:
            raise JPEGError(f"bad scan {item!r}: give Scan(components, ss, se, ah, al)")
    if not out:
        raise JPEGError("no scans")
    return tuple(out)


# --------------------------------------------------------------------------------------
# libjpeg's default progression and validation
# --------------------------------------------------------------------------------------


def _dc_scans(ncomps: int, ah: int, al: int) -> list[Scan]:
    # fill_dc_scans: one interleaved DC scan when the components fit in one scan
    if ncomps <= MAX_COMPS_IN_SCAN:
        return [Scan(tuple(range(ncomps)), 0, 0, ah, al)]
    return [Scan((c,), 0, 0, ah, al) for c in range(ncomps)]


def _each(ncomps: int, ss: int, se: int, ah: int, al: int) -> list[Scan]:
    return [Scan((c,), ss, se, ah, al) for c in range(ncomps)]


def simple_progression(num_components: int, color: str = "ycbcr") -> tuple[Scan, ...]:
    """libjpeg's ``jpeg_simple_progression`` script for an image with
    ``num_components`` components in colour space ``color`` ("ycbcr" with 3
    components gets the YCbCr script, anything else the all-purpose one)."""
    n = int(num_components)
    if n < 1:
        raise JPEGError("an image has at least one component")
    if n == 3 and color == "ycbcr":
        return (
            *_dc_scans(3, 0, 1),
            Scan((0,), 1, 5, 0, 2),
            Scan((2,), 1, 63, 0, 1),
            Scan((1,), 1, 63, 0, 1),
            Scan((0,), 6, 63, 0, 2),
            Scan((0,), 1, 63, 2, 1),
            *_dc_scans(3, 1, 0),
            Scan((2,), 1, 63, 1, 0),
            Scan((1,), 1, 63, 1, 0),
            Scan((0,), 1, 63, 1, 0),
        )
    return (
        *_dc_scans(n, 0, 1),
        *_each(n, 1, 5, 0, 2),
        *_each(n, 6, 63, 0, 2),
        *_each(n, 1, 63, 2, 1),
        *_dc_scans(n, 1, 0),
        *_each(n, 1, 63, 1, 0),
    )


def validate_scans(scans: Sequence[Scan], num_components: int) -> bool:
    """Check a scan list for an image of ``num_components`` components, with
    the rules of libjpeg's ``validate_script``; return True when it is
    progressive (the first scan's band is not 0-63), False when sequential.

    Raises:
        JPEGError: the first rule broken, naming the scan (1-based).
    """
    if not scans:
        raise JPEGError("no scans")
    n = int(num_components)
    first = scans[0]
    progressive = not (first.ss == 0 and first.se == 63)
    last_al = [[-1] * 64 for _ in range(n)]  # per component and coefficient
    sent = [False] * n
    for number, scan in enumerate(scans, start=1):
        where = f"scan {number} ({format_scan(scan)})"
        comps = scan.components
        if not 1 <= len(comps) <= MAX_COMPS_IN_SCAN:
            raise JPEGError(f"{where}: a scan has 1..{MAX_COMPS_IN_SCAN} components")
        for i, c in enumerate(comps):
            if not 0 <= c < n:
                raise JPEGError(f"{where}: there is no component {c} (the image has {n}: "
                                f"0..{n - 1})")
            if i and c <= comps[i - 1]:
                raise JPEGError(f"{where}: list the components in increasing (frame) order, "
                                "each once")
        ss, se, ah, al = scan.ss, scan.se, scan.ah, scan.al
        if not progressive:
            if not scan.is_sequential:
                raise JPEGError(
                    f"{where}: the first scan is 0-63 (a sequential script), so every scan "
                    "must be 0-63 with Ah=Al=0")
            for c in comps:
                if sent[c]:
                    raise JPEGError(f"{where}: component {c} was already sent (a sequential "
                                    "script sends each component once)")
                sent[c] = True
            continue
        if not (0 <= ss <= se <= 63 and 0 <= ah <= MAX_AH_AL and 0 <= al <= MAX_AH_AL):
            raise JPEGError(f"{where}: need 0 <= Ss <= Se <= 63 and Ah, Al in 0..{MAX_AH_AL}")
        if ss == 0 and se != 0:
            raise JPEGError(f"{where}: a progressive scan cannot carry DC and AC together "
                            "(Ss=0 needs Se=0)")
        if ss != 0 and len(comps) != 1:
            raise JPEGError(f"{where}: an AC scan carries one component")
        for c in comps:
            bits = last_al[c]
            if ss != 0 and bits[0] < 0:
                raise JPEGError(f"{where}: AC of component {c} before its first DC scan")
            for k in range(ss, se + 1):
                if bits[k] < 0:
                    if ah != 0:
                        raise JPEGError(
                            f"{where}: coefficient {k} of component {c} is sent for the first "
                            f"time, so Ah must be 0 (got {ah})")
                elif ah != bits[k] or al != ah - 1:
                    raise JPEGError(
                        f"{where}: coefficient {k} of component {c} was last sent with "
                        f"Al={bits[k]}, so this refinement must have Ah={bits[k]}, "
                        f"Al={bits[k] - 1} (got Ah={ah}, Al={al})")
                bits[k] = al
    for c in range(n):
        if progressive and last_al[c][0] < 0:
            raise JPEGError(f"component {c} has no DC scan")
        if not progressive and not sent[c]:
            raise JPEGError(f"component {c} is never sent")
    return progressive


__all__: Sequence[str] = (
    "MAX_SCANS", "Scan", "format_scan", "format_scan_script", "parse_scan_script",
    "read_scan_script", "resolve_scans", "simple_progression", "validate_scans",
)
