"""Static scan of model files for code that would run when they are loaded.

Pickle-based formats (pickle, joblib, PyTorch checkpoints, numpy object arrays) can call any
Python callable while loading, so a model file from elsewhere is code. `scan_path` reads such
files without loading them: it walks the pickle opcodes with `pickletools.genops` on a small
symbolic stack (strings, numbers, tuples, dicts, a memo), never importing or calling anything,
and records

- every global the stream would import: GLOBAL and INST name it inline; STACK_GLOBAL takes
  its module and name from the stack, so the strings pushed before it are tracked, through
  the memo (PUT/MEMOIZE/GET) as well;
- every opcode that calls or builds an object: REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX.

Each global is judged by `classify_global` against the lists at the top of this module (the
one place they live; change them there):

- `DENIED`: reaches the OS, the network or the interpreter (os.system, subprocess, eval,
  getattr, importlib, pickle.loads, …) → **dangerous**;
- `ALLOWED` (exact names) and `ALLOWED_PREFIXES` (packages whose model classes are trusted) →
  **safe**;
- anything else, e.g. a class from the user's own module → **suspicious**: it may be fine,
  but loading it runs that module's code, so only load it if you trust where it came from.

A file whose stream cannot be parsed (truncated, corrupt, a compressed stream that cannot be
read) is **error**: not safe, since a loader would run everything before the damaged spot.
When a damaged stream already named a dangerous global, the file is dangerous.

Formats, recognised by content rather than by extension:

- pickle: any protocol; several pickles in a row (legacy PyTorch files) are all read.
- joblib: a pickle whose numpy arrays follow their `NumpyArrayWrapper` as raw bytes; the scan
  steps over them by their shape and dtype. Object arrays are nested pickles, and scanned.
- compressed (zlib, gzip, bz2, xz, lzma; lz4 when the `lz4` package is there): decompressed
  as a stream, never whole into memory; the finding keeps the content's format.
- pytorch, zip, npz: a zip archive. Every member that is a pickle (`data.pkl`), a `.npy` or a
  nested archive is scanned; PyTorch's raw tensor storages (`data/<key>`) are skipped.
- skops: a zip with `schema.json`. Every type the schema names is judged by the same lists;
  with `skops` installed, `skops.io.get_untrusted_types` is reported, and types that skops
  trusts and neither list knows count as safe.
- npy: an object array (saved with `allow_pickle`) holds a pickle, which is scanned.
- onnx, safetensors: no code; their structure is checked lightly, and they are safe.
- other: not a pickle nor any format above (a README, a CSV): nothing runs on load; safe.

Opcode offsets are byte positions within the pickle stream they belong to: the file, the
archive member (`member`), or the decompressed stream.

This is a screen, not a proof: "safe" means every import is on the allow-list, not that the
model is benign (an allow-listed class can still be fed odd state).
"""

from __future__ import annotations

import ast
import bz2
import contextlib
import gzip
import io
import json
import lzma
import math
import pickletools
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol, cast

from seaway.errors import InputError

# --- The lists --------------------------------------------------------------------------------
#
# A rule names a dotted prefix: "os" matches "os.system" and "os.path.join"; "builtins.eval"
# matches only that name (and anything below it). Names are module + "." + qualified name.


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_NUMPY_SCALAR_TYPES = _words(
    "bool bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 intc uintc intp uintp "
    "longlong ulonglong float16 float32 float64 longdouble complex64 complex128 "
    "clongdouble str_ bytes_ object_ void datetime64 timedelta64"
)
_TORCH_STORAGES = _words(
    "Float Double Half BFloat16 Long Int Short Char Byte Bool ComplexFloat ComplexDouble"
)
_TORCH_DTYPES = _words(
    "float32 float64 float16 bfloat16 int64 int32 int16 int8 uint8 bool complex64 complex128"
)

_PLAIN_BUILTINS = _words(
    "set frozenset complex slice range bytearray bytes list dict tuple int float str bool "
    "object Ellipsis NotImplemented"
)

ALLOWED: frozenset[str] = frozenset(
    {
        # Plain values and containers.
        *(f"builtins.{name}" for name in _PLAIN_BUILTINS),
        # How protocol 2 spells bytes, and the generic object rebuilders of protocols 0-2; the
        # class they are handed is a global of its own and judged on its own.
        "_codecs.encode",
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.deque",
        "collections.Counter",
        "collections.ChainMap",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        # numpy arrays, scalars, dtypes and random generators (numpy 1 and 2 module names).
        *(f"{core}.multiarray._reconstruct" for core in ("numpy.core", "numpy._core")),
        *(f"{core}.multiarray.scalar" for core in ("numpy.core", "numpy._core")),
        *(f"{core}.numeric._frombuffer" for core in ("numpy.core", "numpy._core")),
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        *(f"numpy.{name}" for name in _NUMPY_SCALAR_TYPES),
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.bit_generator.SeedSequence",
        # joblib's container for an array written next to the pickle.
        "joblib.numpy_pickle.NumpyArrayWrapper",
        # PyTorch tensors and their storages.
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.Size",
        "torch.device",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch.nn.parameter.Parameter",
        *(f"torch.{kind}Storage" for kind in _TORCH_STORAGES),
        *(f"torch.{dtype}" for dtype in _TORCH_DTYPES),
    }
)
"""Exact names that only rebuild data."""

ALLOWED_PREFIXES: tuple[str, ...] = ("sklearn", "scipy", "numpy.dtypes")
"""Packages whose classes are trusted by module prefix (estimators, sparse matrices, dtype
classes). Only plain names qualify: a dotted name (`Outer.attr.more`) under these packages is
an attribute walk and must be listed exactly. `DENIED` and `DENIED_ATTRIBUTES` win over this."""

DENIED: tuple[str, ...] = (
    # Processes and the operating system.
    "os",
    "posix",
    "nt",
    "subprocess",
    "_posixsubprocess",
    "pty",
    "asyncio",
    "multiprocessing",
    "signal",
    "platform",
    "sys",
    "ctypes",
    "_ctypes",
    "shutil",
    "io.open",
    "io.open_code",
    "io.FileIO",
    "_io",
    "tempfile",
    # Running code and importing modules.
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.open",
    "builtins.__import__",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.input",
    "builtins.breakpoint",
    "builtins.help",
    "builtins.exit",
    "builtins.quit",
    "code",
    "codeop",
    "runpy",
    "importlib",
    "pkgutil",
    "zipimport",
    "imp",
    "marshal",
    "types.FunctionType",
    "types.CodeType",
    "types.LambdaType",
    "types.MethodType",
    "types.ModuleType",
    "types.new_class",
    "operator.attrgetter",
    "operator.methodcaller",
    "pdb",
    "bdb",
    "trace",
    "timeit",
    "cProfile",
    "profile",
    "doctest",
    "test.support",
    # Loaders that run a pickle of their own.
    "pickle",
    "_pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "shelve",
    "joblib.load",
    "joblib.numpy_pickle.load",
    "joblib.numpy_pickle.NumpyUnpickler",
    "pandas.read_pickle",
    "pandas.io.pickle",
    "torch.load",
    "torch.hub",
    "torch.serialization",
    "torch.storage._load_from_bytes",
    # numpy functions that read or write files, or run code.
    "numpy.load",
    "numpy.loadtxt",
    "numpy.genfromtxt",
    "numpy.fromfile",
    "numpy.save",
    "numpy.savez",
    "numpy.savez_compressed",
    "numpy.savetxt",
    "numpy.memmap",
    "numpy.lib.npyio",
    "numpy.lib.format",
    "numpy.testing",
    "numpy.f2py",
    "numpy.distutils",
    "numpy.ctypeslib",
    # The network and the desktop.
    "socket",
    "_socket",
    "ssl",
    "socketserver",
    "http.client",
    "http.server",
    "urllib",
    "urllib2",
    "urllib3",
    "requests",
    "httpx",
    "ftplib",
    "smtplib",
    "telnetlib",
    "poplib",
    "imaplib",
    "xmlrpc",
    "webbrowser",
    "antigravity",
    # File and download helpers inside allow-listed packages.
    "sklearn.datasets",
    "sklearn.utils._testing",
    "scipy.io",
    "scipy.datasets",
    "scipy.sparse.save_npz",
    "scipy.sparse.load_npz",
    "scipy.sparse._matrix_io",
    "scipy._lib._testutils",
    "scipy._lib._ccallback",
    "scipy.LowLevelCallable",
    "scipy.weave",
)
"""Names that execute code, import modules, or reach files, processes or the network."""

DENIED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        # Modules are often re-exported (`from x import os`): `anything.os` is the os module,
        # and BUILD on a module object overwrites its functions.
        "os",
        "sys",
        "subprocess",
        "shutil",
        "socket",
        "pickle",
        "importlib",
        "builtins",
        "ctypes",
        "marshal",
        # Callables that run commands, code or another unpickler, whatever module re-exports
        # them (`sklearn.utils._joblib.load` is joblib.load).
        "system",
        "popen",
        "Popen",
        "check_output",
        "check_call",
        "exec",
        "eval",
        "__import__",
        "import_module",
        "getattr",
        "setattr",
        "delattr",
        "load",
        "loads",
    }
)
"""A global whose first name component is one of these is dangerous from any module."""

_MODULE_ALIASES = {"__builtin__": "builtins", "__builtins__": "builtins", "copy_reg": "copyreg"}
_NAME_ALIASES = {"xrange": "range", "unicode": "str", "long": "int", "basestring": "str"}
"""Python 2 names, which protocols 0-2 write and pickle maps to Python 3 ones on load."""

_PICKLE_EXTENSIONS = (".pkl", ".pickle", ".joblib", ".jbl", ".pt", ".pth", ".ckpt", ".dill")
"""Files named so are pickles: failing to parse one is an error, not "some other format"."""

_COMPRESSED_EXTENSIONS = (".gz", ".z", ".bz2", ".xz", ".lzma", ".lz4")


class Verdict(StrEnum):
    """What a scan concluded, from harmless to harmful; `rank` orders them."""

    SAFE = "safe"
    SUSPICIOUS = "suspicious"
    ERROR = "error"
    DANGEROUS = "dangerous"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.SAFE: 0, Verdict.SUSPICIOUS: 1, Verdict.ERROR: 2, Verdict.DANGEROUS: 3}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: v.rank, default=Verdict.SAFE)


def _match(name: str, rules: Iterable[str]) -> str | None:
    for rule in rules:
        if name == rule or name.startswith(rule + "."):
            return rule
    return None


def classify_global(module: str, name: str) -> tuple[Verdict, str]:
    """Judge one imported name; returns the verdict and why."""
    module = _MODULE_ALIASES.get(module, module)
    if module == "builtins":
        name = _NAME_ALIASES.get(name, name)
    full = f"{module}.{name}"
    parts = name.split(".")
    # Protocol 4 resolves dotted names attribute by attribute, so `Foo.__init__.__globals__`
    # or `helpers.os.system` can reach anything; no real class needs such a walk.
    if any(part.startswith("__") for part in parts[1:]):
        return Verdict.DANGEROUS, "walks through a dunder attribute"
    candidates = [full] + [".".join(parts[i:]) for i in range(len(parts) - 1)]
    for candidate in candidates:
        rule = _match(candidate, DENIED)
        if rule is not None:
            return Verdict.DANGEROUS, f"on the deny-list ({rule})"
    if full in ALLOWED:
        return Verdict.SAFE, "on the allow-list"
    if parts[0] in DENIED_ATTRIBUTES:
        return Verdict.DANGEROUS, f"'{parts[0]}' reaches the OS or a loader from any module"
    prefix = _match(module, ALLOWED_PREFIXES)
    if prefix is not None and len(parts) == 1:
        return Verdict.SAFE, f"allow-listed package ({prefix})"
    return Verdict.SUSPICIOUS, "not on the allow-list"


# --- Results ----------------------------------------------------------------------------------


@dataclass
class GlobalRef:
    """One imported name, where the stream names it, and how it was judged."""

    module: str
    name: str
    verdict: Verdict
    why: str
    opcode: str
    offsets: list[int] = field(default_factory=list)
    member: str | None = None

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.qualname,
            "module": self.module,
            "attribute": self.name,
            "verdict": self.verdict.value,
            "why": self.why,
            "opcode": self.opcode,
            "offsets": list(self.offsets),
            "member": self.member,
        }


@dataclass
class FileFinding:
    """The scan of one file."""

    file: str
    format: str
    verdict: Verdict
    reason: str
    size: int | None = None
    compression: str | None = None
    globals: list[GlobalRef] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    untrusted_types: list[str] | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return self.verdict is Verdict.SAFE

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "compression": self.compression,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "size": self.size,
            "globals": [g.to_dict() for g in self.globals],
            "calls": dict(self.calls),
            "members": list(self.members),
            "untrusted_types": self.untrusted_types,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


@dataclass
class ScanReport:
    """The scan of a file or a folder: one finding per file, and the worst verdict."""

    path: str
    findings: list[FileFinding]

    @property
    def verdict(self) -> Verdict:
        return worst(f.verdict for f in self.findings)

    @property
    def safe(self) -> bool:
        return self.verdict is Verdict.SAFE

    def counts(self) -> dict[str, int]:
        counts = {v.value: 0 for v in Verdict}
        for finding in self.findings:
            counts[finding.verdict.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": self.verdict.value,
            "files": len(self.findings),
            "counts": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
        }


# --- Entry points -----------------------------------------------------------------------------


def scan_path(path: str | Path) -> ScanReport:
    """Scan a file, or every file under a folder (symlinked folders are not followed)."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"{path}: no such file or folder", hint="check the path to scan")
    if root.is_dir():
        files = sorted(p for p in _walk(root))
        findings = [scan_file(p, display=p.relative_to(root).as_posix()) for p in files]
    else:
        findings = [scan_file(root, display=str(path))]
    return ScanReport(str(path), findings)


def _walk(root: Path) -> Iterable[Path]:
    for entry in root.iterdir():
        if entry.is_symlink() and entry.is_dir():
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


def scan_file(path: str | Path, *, display: str | None = None) -> FileFinding:
    """Scan one file."""
    path = Path(path)
    name = display if display is not None else str(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            return _scan(fh, name, size, path.name, skops_file=path)
    except OSError as exc:
        problem = f"cannot read: {exc.strerror or exc}"
        return FileFinding(name, "unknown", Verdict.ERROR, problem, problems=[problem])


def scan_bytes(data: bytes, name: str = "<bytes>") -> FileFinding:
    """Scan content held in memory, as if it were a file called `name`."""
    return _scan(io.BytesIO(data), name, len(data), Path(name).name, skops_file=None)


# --- Reading ----------------------------------------------------------------------------------


class _Source(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


_CHUNK = 1 << 20
_BLOCK = 64 << 10
_MAX_LINE = 16 << 20
_PROBE = 64 << 10
_MAX_DEPTH = 4


class _Broken(Exception):
    """The stream cannot be parsed further."""


class _Reader:
    """A forward reader over a binary stream with what genops needs (read, readline, tell),
    plus peek and skip. Reads are bounded by the data actually there, so a corrupt length
    field cannot make it allocate more than the stream holds."""

    def __init__(self, source: _Source, size: int | None = None) -> None:
        self._source = source
        self._buf = b""
        self._off = 0
        self._pos = 0
        self._eof = False
        self.size = size

    def tell(self) -> int:
        return self._pos

    def _available(self) -> int:
        return len(self._buf) - self._off

    def _fill(self, want: int) -> bool:
        """Buffer at least `want` bytes if the stream has them; False when it has not."""
        have = self._available()
        if have >= want:
            return True
        parts = [self._buf[self._off :]]
        while have < want and not self._eof:
            chunk = self._source.read(max(want - have, _BLOCK))
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self._buf = b"".join(parts)
        self._off = 0
        return have >= want

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return self._buf[self._off : self._off + n]

    def read(self, n: int = -1) -> bytes:
        if n is not None and 0 <= n <= _BLOCK:
            self._fill(n)
            data = self._buf[self._off : self._off + n]
            self._off += len(data)
        else:
            # Large reads go around the buffer, so it never holds more than a block or two.
            parts = [self._buf[self._off :]]
            need = -1 if n is None or n < 0 else n - len(parts[0])
            self._buf, self._off = b"", 0
            while need != 0 and not self._eof:
                chunk = self._source.read(_CHUNK if need < 0 else min(need, _CHUNK))
                if not chunk:
                    self._eof = True
                    break
                parts.append(chunk)
                if need > 0:
                    need -= len(chunk)
            data = b"".join(parts)
        self._pos += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        cap = _MAX_LINE if limit is None or limit < 0 else min(limit, _MAX_LINE)
        searched = 0
        while True:
            end = self._off + min(self._available(), cap)
            at = self._buf.find(b"\n", self._off + searched, end)
            if at >= 0:
                return self.read(at + 1 - self._off)
            searched = end - self._off
            if searched >= cap:
                return self.read(cap)
            self._fill(searched + _BLOCK)
            if self._available() <= searched:  # the stream ended without a newline
                return self.read(self._available())

    def skip(self, n: int) -> int:
        """Discard `n` bytes; returns how many there were."""
        done = min(n, self._available())
        self._off += done
        self._pos += done
        while done < n and not self._eof:
            chunk = self._source.read(min(n - done, _CHUNK))
            if not chunk:
                self._eof = True
                break
            done += len(chunk)
            self._pos += len(chunk)
        return done


class _ZlibSource:
    """A zlib stream, decompressed as it is read (joblib's `compress=` default)."""

    def __init__(self, raw: _Source) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj()
        self._done = False

    def read(self, n: int = -1, /) -> bytes:
        limit = n if n and n > 0 else _CHUNK
        while not self._done:
            data = self._inflate.unconsumed_tail or self._raw.read(_CHUNK)
            if not data:
                raise _Broken("zlib data ends before the end of its stream")
            out = self._inflate.decompress(data, limit)
            if self._inflate.eof:
                self._done = True
            if out:
                return out
        return b""


class _TopSource:
    """The top-level file, remembered so archives can be reopened by seeking."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh

    def read(self, n: int = -1, /) -> bytes:
        return self.fh.read(n)


# --- The pickle walk --------------------------------------------------------------------------


class _Marker:
    def __repr__(self) -> str:
        return "MARK"


class _Any:
    """A value the scan does not track (bytes, a persistent id, a set)."""

    def __repr__(self) -> str:
        return "?"


_MARK = _Marker()
_ANY = _Any()


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


class _Obj:
    """The result of calling something (REDUCE, NEWOBJ, OBJ, INST); BUILD sets `state`."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: Any, args: Any) -> None:
        self.func = func
        self.args = args
        self.state: Any = None


_LITERALS = {
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "FLOAT",
    "BINFLOAT",
}
_UNTRACKED = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NEXT_BUFFER", "EMPTY_SET"}
_CALLS = ("REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX")
_CONTAINER_CAP = 4096
_JOBLIB_WRAPPERS = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
}


class _Sink:
    """What the scan of one file gathers."""

    def __init__(self) -> None:
        self.globals: dict[tuple[str, str, str | None], GlobalRef] = {}
        self.calls: Counter[str] = Counter()
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.members: list[str] = []
        self.untrusted: list[str] | None = None
        self.joblib = False
        self.compression: str | None = None

    def add_global(
        self,
        module: str,
        name: str,
        opcode: str,
        offset: int | None,
        member: str | None,
        judged: tuple[Verdict, str] | None = None,
    ) -> _Global:
        key = (module, name, member)
        ref = self.globals.get(key)
        if ref is None:
            verdict, why = judged or classify_global(module, name)
            ref = GlobalRef(module, name, verdict, why, opcode, [], member)
            self.globals[key] = ref
        if offset is not None and len(ref.offsets) < 20:
            ref.offsets.append(offset)
        return _Global(module, name)


def _where(member: str | None) -> str:
    return f"{member}: " if member else ""


def _walk_pickle(reader: _Reader, sink: _Sink, member: str | None, depth: int = 0) -> None:
    """Walk one pickle stream up to its STOP; raises _Broken where it cannot go on."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    pos = reader.tell()

    def pop() -> Any:
        if not stack or stack[-1] is _MARK:
            raise _Broken(f"stack underflow at offset {pos}")
        return stack.pop()

    def top() -> Any:
        if not stack or stack[-1] is _MARK:
            raise _Broken(f"stack underflow at offset {pos}")
        return stack[-1]

    def pop_mark() -> list[Any]:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                items = stack[i + 1 :]
                del stack[i:]
                return items
        raise _Broken(f"no MARK before offset {pos}")

    try:
        for op, arg, at in pickletools.genops(cast(IO[bytes], reader)):
            pos = at if at is not None else pos
            name = op.name
            if name in _LITERALS:
                stack.append(arg if not isinstance(arg, str) or len(arg) <= 4096 else _ANY)
            elif name in _UNTRACKED:
                stack.append(_ANY)
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name in ("TUPLE", "LIST", "FROZENSET"):
                items = pop_mark()
                stack.append(tuple(items) if name == "TUPLE" else items if name == "LIST" else _ANY)
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = [pop() for _ in range(n)][::-1]
                stack.append(tuple(items))
            elif name == "DICT":
                items = pop_mark()
                built: dict[Any, Any] = {}
                for k, v in zip(items[::2], items[1::2], strict=False):
                    _set_item(built, k, v)
                stack.append(built)
            elif name == "APPEND":
                value = pop()
                target = top()
                if isinstance(target, list) and len(target) < _CONTAINER_CAP:
                    target.append(value)
            elif name == "APPENDS":
                items = pop_mark()
                target = top()
                if isinstance(target, list):
                    target.extend(items[: max(0, _CONTAINER_CAP - len(target))])
            elif name == "SETITEM":
                value = pop()
                key = pop()
                target = top()
                if isinstance(target, dict):
                    _set_item(target, key, value)
            elif name == "SETITEMS":
                items = pop_mark()
                target = top()
                if isinstance(target, dict):
                    for k, v in zip(items[::2], items[1::2], strict=False):
                        _set_item(target, k, v)
            elif name == "ADDITEMS":
                pop_mark()
                top()
            elif name == "POP":
                if not stack:
                    raise _Broken(f"stack underflow at offset {pos}")
                stack.pop()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(top())
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[cast(int, arg)] = top()
            elif name == "MEMOIZE":
                memo[len(memo)] = top()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise _Broken(f"memo entry {arg} read before it was written (offset {pos})")
                stack.append(memo[cast(int, arg)])
            elif name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                stack.append(sink.add_global(module, attr, name, pos, member))
            elif name == "STACK_GLOBAL":
                attr = pop()
                module = pop()
                if isinstance(module, str) and isinstance(attr, str):
                    stack.append(sink.add_global(module, attr, name, pos, member))
                else:
                    judged = (Verdict.DANGEROUS, "the module or name is computed, not a constant")
                    stack.append(sink.add_global("?", "?", name, pos, member, judged))
            elif name == "INST":
                args = pop_mark()
                module, _, attr = str(arg).partition(" ")
                sink.calls[name] += 1
                stack.append(_Obj(sink.add_global(module, attr, name, pos, member), tuple(args)))
            elif name == "OBJ":
                items = pop_mark()
                if not items:
                    raise _Broken(f"OBJ without a class at offset {pos}")
                sink.calls[name] += 1
                stack.append(_Obj(items[0], tuple(items[1:])))
            elif name in ("REDUCE", "NEWOBJ"):
                args = pop()
                func = pop()
                sink.calls[name] += 1
                stack.append(_Obj(func, args))
            elif name == "NEWOBJ_EX":
                pop()
                args = pop()
                cls = pop()
                sink.calls[name] += 1
                stack.append(_Obj(cls, args))
            elif name == "BUILD":
                state = pop()
                obj = top()
                sink.calls[name] += 1
                if isinstance(obj, _Obj):
                    obj.state = state
                    func = obj.func
                    if isinstance(func, _Global) and (func.module, func.name) in _JOBLIB_WRAPPERS:
                        sink.joblib = True
                        _skip_joblib_array(obj, reader, sink, member, depth, pos)
            elif name == "PERSID":
                stack.append(_ANY)
            elif name in ("BINPERSID", "READONLY_BUFFER"):
                pop()
                stack.append(_ANY)
            elif name in ("EXT1", "EXT2", "EXT4"):
                judged = (Verdict.SUSPICIOUS, "a copyreg extension code names an unknown global")
                sink.add_global("copyreg", f"extension[{arg}]", name, pos, member, judged)
                stack.append(_ANY)
            elif name in ("PROTO", "FRAME"):
                pass
            elif name == "STOP":
                pop()
                return
            else:
                # An opcode added after this module was written: keep the stack depth honest.
                for _ in op.stack_before:
                    pop()
                stack.extend(_ANY for _ in op.stack_after)
    except _Broken:
        raise
    except (ValueError, EOFError, OverflowError, MemoryError, OSError, zlib.error) as exc:
        raise _Broken(_genops_message(exc, reader)) from exc
    except lzma.LZMAError as exc:
        raise _Broken(f"corrupt compressed data: {exc}") from exc
    raise _Broken("pickle ends without STOP")


def _genops_message(exc: BaseException, reader: _Reader) -> str:
    text = str(exc)
    if "exhausted" in text or ("only" in text and "remain" in text) or "no newline" in text:
        return f"truncated: the pickle ends at byte {reader.tell()} before its STOP opcode"
    return f"cannot parse the pickle: {text}"


def _set_item(target: dict[Any, Any], key: Any, value: Any) -> None:
    if len(target) >= _CONTAINER_CAP:
        return
    # Unhashable keys (a list, an object) cannot matter to the scan.
    with contextlib.suppress(TypeError):
        target[key] = value


_DTYPE_CODE = re.compile(r"[<>|=]?([A-Za-z]+)(\d*)")


def _dtype_layout(dtype: Any) -> tuple[int, bool]:
    """(itemsize, holds objects) of a dtype rebuilt as numpy.dtype(code, …) + BUILD(state)."""
    if not (isinstance(dtype, _Obj) and isinstance(dtype.args, tuple) and dtype.args):
        raise _Broken("a joblib array without a recognisable dtype")
    code = dtype.args[0]
    match = _DTYPE_CODE.fullmatch(code) if isinstance(code, str) else None
    if match is None:
        raise _Broken(f"a joblib array with an unknown dtype {code!r}")
    kind, digits = match.groups()
    # The state is (version, byteorder, subarray, names, fields, elsize, alignment, flags[,
    # metadata]); elsize is set for flexible dtypes, whose code counts characters ('U3').
    state = dtype.state
    full = isinstance(state, tuple) and len(state) > 7
    flags = state[7] if full else 0
    elsize = state[5] if full else -1
    # numpy's NPY_ITEM_HASOBJECT flag: a structured dtype with an object field.
    if kind == "O" or (isinstance(flags, int) and flags & 1):
        return 0, True
    if isinstance(elsize, int) and not isinstance(elsize, bool) and elsize > 0:
        return elsize, False
    if digits:
        return int(digits) * (4 if kind == "U" else 1), False
    if kind in ("M", "m"):
        return 8, False
    raise _Broken(f"a joblib array with an unknown dtype {code!r}")


def _skip_joblib_array(
    wrapper: _Obj, reader: _Reader, sink: _Sink, member: str | None, depth: int, pos: int
) -> None:
    """Step over the array data joblib writes right after a NumpyArrayWrapper's BUILD."""
    state = wrapper.state
    if not isinstance(state, dict):
        raise _Broken(f"a joblib array at offset {pos} without its shape and dtype")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise _Broken(f"a joblib array at offset {pos} with an unreadable shape")
    itemsize, has_objects = _dtype_layout(state.get("dtype"))
    if has_objects:
        # Object arrays are a nested pickle stream, read by the same rules as the outer one.
        if depth >= _MAX_DEPTH:
            raise _Broken("joblib object arrays nested too deeply")
        _walk_pickle(reader, sink, member, depth + 1)
        return
    if state.get("numpy_array_alignment_bytes") is not None:
        pad = reader.read(1)
        if not pad or reader.skip(pad[0]) < pad[0]:
            raise _Broken(f"truncated: the joblib array after offset {pos} is cut short")
    nbytes = math.prod(shape) * itemsize
    if reader.skip(nbytes) < nbytes:
        raise _Broken(f"truncated: the joblib array after offset {pos} is cut short")


def _walk_pickles(reader: _Reader, sink: _Sink, member: str | None) -> None:
    """Walk the pickles of a stream: legacy PyTorch files hold several in a row."""
    count = 0
    while True:
        try:
            _walk_pickle(reader, sink, member)
        except _Broken as exc:
            if count == 0:
                raise
            sink.notes.append(f"{_where(member)}data after pickle {count} is not a pickle ({exc})")
            return
        count += 1
        head = reader.peek(2)
        if len(head) < 2 or head[0] != 0x80 or head[1] > 5:
            return


# --- Formats ----------------------------------------------------------------------------------


def _is_pickle_header(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _compression(head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x5d\x00\x00"):
        return "lzma"
    if head.startswith(b"\x04\x22\x4d\x18"):
        return "lz4"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"
    return None


def _decompressor(kind: str, raw: _Source) -> _Source:
    raw_io = cast(IO[bytes], raw)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw_io, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(raw_io, mode="rb")
    if kind in ("xz", "lzma"):
        return lzma.LZMAFile(raw_io, mode="rb")
    if kind == "zlib":
        return _ZlibSource(raw)
    try:
        import lz4.frame
    except ImportError:
        raise _Broken(
            "lz4-compressed data: cannot inspect it without the lz4 package (pip install lz4)"
        ) from None
    return cast(_Source, lz4.frame.open(raw_io, mode="rb"))


class _Scanner:
    """Recognises formats and dispatches, for one top-level file."""

    def __init__(self, sink: _Sink, skops_file: Path | None) -> None:
        self.sink = sink
        self.skops_file = skops_file
        self.format = "other"
        """The top-level format, known before the scan of its content can fail."""

    def _found(self, depth: int, fmt: str) -> None:
        if depth == 0:
            self.format = fmt

    def inspect(
        self,
        reader: _Reader,
        name: str,
        *,
        member: str | None,
        depth: int,
        reopen: IO[bytes] | None,
    ) -> str:
        """Scan a stream and return its format name. `reopen` is a seekable handle on the
        same bytes (archives need one)."""
        if depth > _MAX_DEPTH:
            raise _Broken("archives or compression nested too deeply")
        head = reader.peek(16)
        lower = name.lower()
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
            self._found(depth, "zip")
            return self.inspect_zip(reader, member=member, depth=depth, reopen=reopen)
        if head.startswith(b"\x93NUMPY"):
            self._found(depth, "npy")
            self.inspect_npy(reader, member)
            return "npy"
        kind = _compression(head)
        if kind is not None:
            return self.inspect_compressed(reader, kind, name, member=member, depth=depth)
        if lower.endswith(".safetensors") or _looks_like_safetensors(head, reader.size):
            self._found(depth, "safetensors")
            _check_safetensors(reader)
            return "safetensors"
        if lower.endswith(".onnx") or head[:1] == b"\x08":
            problem = _check_onnx(reader)
            if problem is None:
                self._found(depth, "onnx")
                return "onnx"
            if lower.endswith(".onnx"):
                self._found(depth, "onnx")
                raise _Broken(f"not a valid ONNX model: {problem}")
            return "other"
        if (
            _is_pickle_header(head)
            or lower.endswith(_PICKLE_EXTENSIONS)
            or _probe_pickle(reader.peek(_PROBE))
        ):
            self._found(depth, "joblib" if lower.endswith((".joblib", ".jbl")) else "pickle")
            _walk_pickles(reader, self.sink, member)
            fmt = "joblib" if self.sink.joblib else "pickle"
            self._found(depth, fmt)
            return fmt
        return "other"

    def inspect_compressed(
        self, reader: _Reader, kind: str, name: str, *, member: str | None, depth: int
    ) -> str:
        stem = name
        if stem.lower().endswith(_COMPRESSED_EXTENSIONS):
            stem = stem.rsplit(".", 1)[0]
        if depth == 0:
            self.sink.compression = kind
            pickled = stem.lower().endswith(_PICKLE_EXTENSIONS)
            self._found(depth, _guess_format(stem) if pickled else "compressed")
        inner = _Reader(_decompressor(kind, reader))
        try:
            head = inner.peek(16)
            if (
                not _is_pickle_header(head)
                and not stem.lower().endswith(_PICKLE_EXTENSIONS)
                and _compression(head) is None
                and not head.startswith((b"PK", b"\x93NUMPY"))
                and not _probe_pickle(inner.peek(_PROBE))
            ):
                return "compressed"
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise _Broken(f"corrupt {kind} data: {exc}") from exc
        # The content keeps the top-level slot: "joblib, compressed with zlib".
        fmt = self.inspect(inner, stem, member=member, depth=depth, reopen=None)
        return fmt

    def inspect_npy(self, reader: _Reader, member: str | None) -> None:
        magic = reader.read(8)
        if len(magic) < 8:
            raise _Broken("truncated .npy header")
        major = magic[6]
        width = 2 if major == 1 else 4
        raw_len = reader.read(width)
        if len(raw_len) < width:
            raise _Broken("truncated .npy header")
        header_len = int.from_bytes(raw_len, "little")
        if header_len > (1 << 20):
            raise _Broken(f".npy header of {header_len} bytes is implausible")
        header = reader.read(header_len)
        if len(header) < header_len:
            raise _Broken("truncated .npy header")
        try:
            meta = ast.literal_eval(header.decode("utf-8" if major >= 3 else "latin-1"))
        except (ValueError, SyntaxError, UnicodeDecodeError) as exc:
            raise _Broken(f"unreadable .npy header: {exc}") from exc
        if not isinstance(meta, dict) or "descr" not in meta:
            raise _Broken(".npy header without 'descr'")
        if _descr_has_objects(meta["descr"]):
            # numpy writes object arrays as a pickle after the header (np.load needs
            # allow_pickle=True to read them).
            self.sink.notes.append(f"{_where(member)}object array: loading needs allow_pickle")
            _walk_pickle(reader, self.sink, member)

    def inspect_zip(
        self,
        reader: _Reader,
        *,
        member: str | None,
        depth: int,
        reopen: IO[bytes] | None,
    ) -> str:
        handle = reopen
        if handle is None or not handle.seekable():
            data = reader.read(512 << 20)
            if reader.peek(1):
                raise _Broken("an archive inside a compressed stream larger than 512 MiB")
            handle = io.BytesIO(data)
        handle.seek(0)
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise _Broken(f"corrupt zip archive: {exc}") from exc
        with archive:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            names = [info.filename for info in infos]
            torch = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
            # PyTorch keeps raw tensor bytes in <archive>/data/<key>, next to data.pkl.
            storages = tuple(n[: -len("data.pkl")] + "data/" for n in torch)
            if "schema.json" in names:
                fmt = "skops"
            elif torch:
                fmt = "pytorch"
            elif names and all(n.lower().endswith(".npy") for n in names):
                fmt = "npz"
            else:
                fmt = "zip"
            self._found(depth, fmt)
            for info in infos:
                if storages and info.filename.startswith(storages):
                    continue
                self.inspect_member(archive, info, member=member, depth=depth)
            if fmt == "skops":
                self.inspect_skops(archive, member, handle)
        return fmt

    def inspect_member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, member: str | None, depth: int
    ) -> None:
        inner_name = f"{member}/{info.filename}" if member else info.filename
        try:
            with archive.open(info) as fh:
                child = _Reader(fh, info.file_size)
                kind = self.inspect(
                    child, info.filename, member=inner_name, depth=depth + 1, reopen=fh
                )
        except _Broken as exc:
            self.sink.problems.append(f"{inner_name}: {exc}")
            self.sink.members.append(inner_name)
            return
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, zlib.error) as exc:
            # A bad CRC, an encrypted member, a truncated deflate stream.
            self.sink.problems.append(f"{inner_name}: cannot read the member: {exc}")
            self.sink.members.append(inner_name)
            return
        if kind not in ("other", "compressed"):
            self.sink.members.append(inner_name)

    def inspect_skops(
        self, archive: zipfile.ZipFile, member: str | None, handle: IO[bytes]
    ) -> None:
        try:
            schema = json.loads(archive.read("schema.json"))
        except (ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise _Broken(f"unreadable skops schema.json: {exc}") from exc
        where = f"{member}/schema.json" if member else "schema.json"
        untrusted = self.skops_untrusted(member, handle)
        for module, name in sorted(_skops_types(schema)):
            verdict, why = classify_global(module, name)
            if (
                verdict is Verdict.SUSPICIOUS
                and untrusted is not None
                and f"{module}.{name}" not in untrusted
            ):
                verdict, why = Verdict.SAFE, "trusted by skops"
            self.sink.add_global(module, name, "skops", None, where, (verdict, why))
        for qualname in untrusted or []:
            module, _, name = qualname.rpartition(".")
            if (module, name, where) not in self.sink.globals:
                self.sink.add_global(module, name, "skops", None, where)

    def skops_untrusted(self, member: str | None, handle: IO[bytes]) -> list[str] | None:
        """skops's own judgement: the types its loader refuses unless told to trust them."""
        try:
            from skops.io import get_untrusted_types
        except ImportError:
            return None
        try:
            if member is None and self.skops_file is not None:
                found = get_untrusted_types(file=self.skops_file)
            else:
                handle.seek(0)
                found = get_untrusted_types(data=handle.read())
        except Exception as exc:
            # skops failing on a malformed file is a finding about the file, not a crash.
            self.sink.problems.append(f"skops cannot read the file: {exc}")
            return None
        self.sink.untrusted = sorted(found)
        return self.sink.untrusted


def _skops_types(schema: Any) -> set[tuple[str, str]]:
    """Every (module, name) a skops schema asks the loader to resolve."""
    found: set[tuple[str, str]] = set()
    todo = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                found.add((module, name))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found


def _descr_has_objects(descr: Any) -> bool:
    """Whether an .npy `descr` (a dtype string, or a list of (name, type[, shape]) fields)
    holds Python objects."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=")[:1] == "O"
    if isinstance(descr, list):
        return any(
            isinstance(f, (list, tuple)) and len(f) >= 2 and _descr_has_objects(f[1]) for f in descr
        )
    return False


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _probe_pickle(head: bytes) -> bool:
    """Whether a file without a pickle header is a protocol 0/1 pickle: its first bytes parse
    to the end, or parse far enough to import a real name before failing (an unparseable
    prefix that imports nothing runs nothing; text like `channels:` is no module name)."""
    if not head or head[:1] not in (b"(", b"c", b"]", b"}", b")", b"\x80"):
        return False
    probe = _Sink()
    try:
        _walk_pickle(_Reader(io.BytesIO(head), len(head)), probe, None)
    except _Broken:
        return any(
            _DOTTED.fullmatch(g.module) and _DOTTED.fullmatch(g.name)
            for g in probe.globals.values()
        )
    return True


def _looks_like_safetensors(head: bytes, size: int | None) -> bool:
    if len(head) < 9 or head[8:9] != b"{":
        return False
    n = int.from_bytes(head[:8], "little")
    return n >= 2 and (size is None or n <= size - 8)


def _check_safetensors(reader: _Reader) -> None:
    size = reader.size
    head = reader.read(8)
    if len(head) < 8:
        raise _Broken("not a safetensors file: shorter than its header length")
    n = int.from_bytes(head, "little")
    if n > (100 << 20) or (size is not None and n > size - 8):
        raise _Broken(f"not a safetensors file: header length {n} is implausible")
    try:
        header = json.loads(reader.read(n))
    except ValueError as exc:
        raise _Broken(f"not a safetensors file: the header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _Broken("not a safetensors file: the header is not a JSON object")
    data_len = size - 8 - n if size is not None else None
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("dtype"), str)
            or not isinstance(entry.get("shape"), list)
            or not (isinstance(offsets, list) and len(offsets) == 2)
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
            or (data_len is not None and offsets[1] > data_len)
        ):
            raise _Broken(f"not a safetensors file: tensor {key!r} is malformed")


_ONNX_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26}
"""ModelProto's top-level fields (ir_version=1 … graph=7, opset_import=8, functions=25)."""


def _read_varint(reader: _Reader) -> int | None:
    value = shift = 0
    while True:
        byte = reader.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise _Broken("malformed varint")


def _check_onnx(reader: _Reader) -> str | None:
    """Walk ModelProto's top-level protobuf fields; None when they look like an ONNX model."""
    seen: set[int] = set()
    try:
        while True:
            tag = _read_varint(reader)
            if tag is None:
                break
            number, wire = tag >> 3, tag & 7
            if number not in _ONNX_FIELDS:
                return f"unexpected protobuf field {number}"
            if wire == 0:
                if _read_varint(reader) is None:
                    return "truncated"
            elif wire == 2:
                length = _read_varint(reader)
                if length is None or reader.skip(length) < length:
                    return "truncated"
            elif wire == 1:
                if reader.skip(8) < 8:
                    return "truncated"
            elif wire == 5:
                if reader.skip(4) < 4:
                    return "truncated"
            else:
                return f"bad protobuf wire type {wire}"
            seen.add(number)
    except _Broken as exc:
        return str(exc)
    if 1 not in seen or 7 not in seen:
        return "no ir_version or graph"
    return None


# --- One file ---------------------------------------------------------------------------------


def _scan(
    fh: IO[bytes], display: str, size: int | None, filename: str, *, skops_file: Path | None
) -> FileFinding:
    sink = _Sink()
    scanner = _Scanner(sink, skops_file)
    reader = _Reader(_TopSource(fh), size)
    try:
        fmt = scanner.inspect(reader, filename, member=None, depth=0, reopen=fh)
    except _Broken as exc:
        sink.problems.append(str(exc))
        fmt = "joblib" if sink.joblib else scanner.format
    return _finding(display, fmt, size, sink)


def _guess_format(filename: str) -> str:
    lower = filename.lower()
    for ext, fmt in (
        (".joblib", "joblib"),
        (".pt", "pytorch"),
        (".pth", "pytorch"),
        (".onnx", "onnx"),
        (".safetensors", "safetensors"),
        (".npy", "npy"),
        (".skops", "skops"),
    ):
        if lower.endswith(ext):
            return fmt
    return "pickle"


_NO_CODE = {
    "onnx": "an ONNX model: a protobuf graph, no code",
    "safetensors": "safetensors: tensors and a JSON header, no code",
    "npy": "a numpy array without objects, no code",
    "npz": "numpy arrays without objects, no code",
    "other": "not a pickle, archive or model format; nothing here runs on load",
    "compressed": "compressed data that is not a pickle",
}


def _finding(display: str, fmt: str, size: int | None, sink: _Sink) -> FileFinding:
    refs = sorted(
        sink.globals.values(), key=lambda g: (-g.verdict.rank, g.member or "", g.qualname)
    )
    verdict = worst(g.verdict for g in refs)
    if sink.problems and verdict.rank < Verdict.ERROR.rank:
        verdict = Verdict.ERROR
    finding = FileFinding(
        file=display,
        format=fmt,
        verdict=verdict,
        reason="",
        size=size,
        compression=sink.compression,
        globals=refs,
        calls={op: sink.calls[op] for op in _CALLS if sink.calls[op]},
        members=list(sink.members),
        untrusted_types=sink.untrusted,
        problems=list(sink.problems),
        notes=list(sink.notes),
    )
    finding.reason = _reason(finding)
    return finding


def _names(refs: list[GlobalRef], verdict: Verdict, limit: int = 4) -> str:
    names = sorted({g.qualname for g in refs if g.verdict is verdict})
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _reason(f: FileFinding) -> str:
    parts: list[str] = []
    if any(g.verdict is Verdict.DANGEROUS for g in f.globals):
        parts.append(f"would import {_names(f.globals, Verdict.DANGEROUS)} on load")
    if f.problems:
        parts.append("; ".join(f.problems[:3]))
    if f.verdict is Verdict.SUSPICIOUS:
        parts.append(
            f"imports {_names(f.globals, Verdict.SUSPICIOUS)}, not on the allow-list: "
            "load it only if you trust its source"
        )
    if parts:
        return "; ".join(parts)
    if f.globals:
        return f"only allow-listed imports ({len({g.qualname for g in f.globals})})"
    if f.format in _NO_CODE:
        return _NO_CODE[f.format]
    return "a pickle that imports nothing"


__all__ = [
    "ALLOWED",
    "ALLOWED_PREFIXES",
    "DENIED",
    "DENIED_ATTRIBUTES",
    "FileFinding",
    "GlobalRef",
    "ScanReport",
    "Verdict",
    "classify_global",
    "scan_bytes",
    "scan_file",
    "scan_path",
    "worst",
]
