"""The knowledge base's tables (``tables/NAME.toml`` in each knowledge-base folder), by NAME.

Read once, when the knowledge base loads, from every folder: the shipped one, then each
``--kb``. A folder's rows add to the rows of the folders before it (arrays of tables are
joined; a plain value of a later folder wins). The typed forms the code reads (releases,
torch builds, import checks) are parsed on first use, once per knowledge base.
"""

from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Tuple, TypeVar

T = TypeVar("T")


class Row(NamedTuple):
    """One row of an array of tables, and where it was read (for error messages)."""

    path: str
    index: int  # its position in that file's array
    data: Any  # a table (dict) when the file is well formed


class Tables(Mapping):
    def __init__(self) -> None:
        self._files: Dict[str, List[Tuple[str, dict]]] = {}  # NAME -> [(path, data)], in folder order
        self._parsed: Dict[Callable, object] = {}

    def add(self, name: str, path: str, data: dict) -> None:
        self._files.setdefault(name, []).append((path, data))
        self._parsed.clear()

    def files(self, name: str) -> List[Tuple[str, dict]]:
        """(path, data) of table ``name`` in each folder that has it, in folder order."""
        return list(self._files.get(name, ()))

    def rows(self, name: str, key: str) -> List[Row]:
        """The rows of array ``key`` in table ``name``, from every folder in order."""
        out: List[Row] = []
        for path, data in self._files.get(name, ()):
            items = data.get(key, [])
            if isinstance(items, list):
                out.extend(Row(path, i, row) for i, row in enumerate(items))
        return out

    def parsed(self, parse: Callable[["Tables"], T]) -> T:
        """``parse(self)``, computed once and kept (an error is raised again each time)."""
        if parse not in self._parsed:
            self._parsed[parse] = parse(self)
        return self._parsed[parse]  # type: ignore[return-value]

    # Mapping: the merged raw table, for a reader that wants plain data.
    def __getitem__(self, name: str) -> dict:
        if name not in self._files:
            raise KeyError(name)
        merged: dict = {}
        for _, data in self._files[name]:
            for key, value in data.items():
                old = merged.get(key)
                merged[key] = old + value if isinstance(old, list) and isinstance(value, list) else value
        return merged

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)
