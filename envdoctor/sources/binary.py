"""Source: whether flash-attn's compiled extension can link against the installed torch.

flash-attn's extension (``flash_attn_2_cuda*.so``) is built against one torch release and C++
ABI, and nothing in its metadata says which. The dynamic linker is the judge: importing it fails
with "undefined symbol" when it needs a torch symbol (namespaces c10, at, torch) that no library
of the installed torch exports. This source reads the ELF dynamic symbol tables of both, as
bytes, without loading either, and reports how many of those symbols are missing.

Facts: ``flash_attn.undefined_torch_symbols`` (int; null when flash-attn or torch is absent) and
``flash_attn.undefined_torch_symbols.why`` (the first missing symbols).
"""

import glob
import os
import struct
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

from envdoctor.facts import Gathered, Unknown
from envdoctor.safeio import open_regular
from envdoctor.sources.environment import Environment

KEY = "flash_attn.undefined_torch_symbols"
TORCH_NAMESPACES = (b"_ZN3c10", b"_ZNK3c10", b"_ZN2at", b"_ZNK2at", b"_ZN5torch", b"_ZNK5torch")
SHT_DYNSYM = 11
BINDINGS_EXPORTED = (1, 2, 10)  # STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE
MAX_TABLE = 512 * 1024 * 1024  # a dynamic symbol table is megabytes; refuse anything absurd
MAX_LIBRARY = 8 << 30  # libtorch_cuda.so is about 1 GiB; only headers and tables are read


class NotElf(Exception):
    pass


def _section_headers(handle) -> List[Tuple[int, int, int, int]]:
    """(type, offset, size, link) of each section of a 64-bit little-endian ELF file."""
    ident = handle.read(64)
    if len(ident) < 64 or ident[:4] != b"\x7fELF":
        raise NotElf("not an ELF file")
    if ident[4] != 2 or ident[5] != 1:
        raise NotElf("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", ident, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", ident, 0x3A)
    if shentsize != 64 or shnum == 0:
        raise NotElf("no section headers")
    handle.seek(shoff)
    table = handle.read(shentsize * shnum)
    out = []
    for i in range(shnum):
        _name, kind, _flags, _addr, offset, size, link = struct.unpack_from("<IIQQQQI", table, i * 64)
        out.append((kind, offset, size, link))
    return out


def _read(handle, offset: int, size: int) -> bytes:
    if size > MAX_TABLE:
        raise NotElf("symbol table of %d bytes" % size)
    handle.seek(offset)
    return handle.read(size)


def dynamic_symbols(path: str, prefixes: Tuple[bytes, ...] = (b"",)) -> Tuple[Set[bytes], Set[bytes]]:
    """(exported, undefined) names of a shared library's dynamic symbol table, only those
    starting with one of ``prefixes`` (torch's libraries hold hundreds of thousands)."""
    with open_regular(path, MAX_LIBRARY) as handle:
        sections = _section_headers(handle)
        dynsym = next((s for s in sections if s[0] == SHT_DYNSYM), None)
        if dynsym is None or dynsym[3] >= len(sections):
            raise NotElf("no dynamic symbol table")
        symbols = _read(handle, dynsym[1], dynsym[2])
        strtab = sections[dynsym[3]]
        names = _read(handle, strtab[1], strtab[2])
    exported: Set[bytes] = set()
    undefined: Set[bytes] = set()
    usable = len(symbols) - len(symbols) % 24
    for st_name, st_info, _other, st_shndx, _value, _size in struct.iter_unpack("<IBBHQQ", symbols[:usable]):
        if not st_name or not names.startswith(prefixes, st_name):
            continue
        end = names.find(b"\0", st_name)
        name = names[st_name:end if end >= 0 else len(names)]
        if st_shndx == 0:
            undefined.add(name)
        elif st_info >> 4 in BINDINGS_EXPORTED:
            exported.add(name)
    return exported, undefined


def _location(environment: Environment, name: str) -> Optional[str]:
    return next((d.location for d in environment.distributions if d.name == name), None)


def missing_torch_symbols(extension: str, torch_libs: Iterable[str]) -> Union[List[str], Unknown]:
    """The torch symbols the extension needs that none of torch's libraries exports."""
    current = extension
    try:
        _, wanted = dynamic_symbols(extension, TORCH_NAMESPACES)
        for current in torch_libs:
            if not wanted:
                break
            exported, _ = dynamic_symbols(current, TORCH_NAMESPACES)
            wanted -= exported
    except (OSError, NotElf, struct.error) as exc:
        why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else exc
        return Unknown("cannot read the symbol tables (%s: %s)" % (current, why))
    return sorted(n.decode("ascii", "replace") for n in wanted)


def gather(environment: Environment) -> Gathered:
    flash, torch = _location(environment, "flash-attn"), _location(environment, "torch")
    if flash is None or torch is None:
        return Gathered(values={KEY: None})
    extensions = sorted(glob.glob(os.path.join(flash, "flash_attn_2_cuda*.so")))
    libs = sorted(glob.glob(os.path.join(torch, "torch", "lib", "*.so*")))
    if not extensions:
        return Gathered(unknown={KEY: Unknown("no flash_attn_2_cuda extension found in %s" % flash)})
    if not libs:
        return Gathered(unknown={KEY: Unknown("no libraries found in %s" % os.path.join(torch, "torch", "lib"))})
    missing = missing_torch_symbols(extensions[0], libs)
    if isinstance(missing, Unknown):
        return Gathered(unknown={KEY: missing})
    values: Dict[str, object] = {KEY: len(missing)}
    if missing:
        shown = ", ".join(missing[:3]) + (" and %d more" % (len(missing) - 3) if len(missing) > 3 else "")
        values[KEY + ".why"] = "%s needs %s, which the installed torch does not export" % (os.path.basename(extensions[0]), shown)
    return Gathered(values)
