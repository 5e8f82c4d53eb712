"""Source: a model folder, or a hub id found in the local Hugging Face cache.

Reads ``config.json`` (as JSON, capped in size) and the remote modeling code that its
``auto_map`` names (with ``ast``; see remote_code.py). Never imports the model's code and
never uses the network: a hub id that is not in the cache is a clear error, not a download.
"""

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from envdoctor.facts import Gathered, Problem, Unknown, Value
from envdoctor.sources import remote_code
from envdoctor.sources._files import MIB, FileProblem, decode_text, read_capped

CONFIG_LIMIT = 16 * MIB  # real config.json files are a few KiB
CODE_LIMIT = 4 * MIB  # modeling files are ~100 KiB; ast.parse of more takes seconds
REF_LIMIT = 4096

# Every fact this source can set; all become unknown when the model cannot be read.
KEYS = (
    "model.type", "model.architectures", "model.max_position_embeddings", "model.rope_scaling",
    "model.rope_theta", "model.torch_dtype", "model.attn_implementation",
    "model.transformers_version", "model.remote_code", "model.remote_code.sha256",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
_MODEL_CLASS_KEYS = ("AutoModelForCausalLM", "AutoModel")


class LocateProblem(Exception):
    """The model could not be found; ``str()`` is one line naming where envdoctor looked."""


@dataclass(frozen=True)
class Located:
    folder: str
    revision: Optional[str] = None  # the hub-cache snapshot, when it came from there


# ---------------------------------------------------------------- locating


def hub_cache(environ: Mapping[str, str]) -> str:
    """The cache folder huggingface_hub itself would use (without importing it)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if environ.get(var):
            return os.path.expanduser(environ[var])
    if environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(environ["HF_HOME"]), "hub")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "huggingface", "hub")


def looks_like_hub_id(spec: str) -> bool:
    return bool(_HUB_ID.match(spec)) and "--" not in spec and ".." not in spec


def locate(spec: str, revision: Optional[str], environ: Mapping[str, str]) -> Located:
    if os.path.isdir(spec):
        return Located(os.path.abspath(spec))
    if os.path.lexists(spec):
        try:
            os.stat(spec)
        except OSError as exc:
            raise LocateProblem(_os_line(spec, exc))
        raise LocateProblem("%s: not a folder (--model takes the folder that holds config.json)" % spec)
    if not looks_like_hub_id(spec):
        raise LocateProblem("%s: no such folder, and not a hub id such as internlm/internlm2-chat-1_8b" % spec)
    return _in_hub_cache(spec, revision, hub_cache(environ))


def _in_hub_cache(repo_id: str, revision: Optional[str], cache: str) -> Located:
    repo = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    snapshots = os.path.join(repo, "snapshots")
    if not os.path.isdir(snapshots):
        raise LocateProblem(
            "%s: not in the Hugging Face cache (no %s); envdoctor never downloads: pass the model's "
            "folder, or download it first (huggingface-cli download %s)" % (repo_id, snapshots, repo_id))
    if revision:
        commit = _read_ref(repo, revision) or revision
        folder = os.path.join(snapshots, commit)
        if not _safe_name(commit) or not os.path.isdir(folder):
            raise LocateProblem("%s: revision %r is not in the cache (%s)" % (repo_id, revision, snapshots))
        return Located(folder, commit)
    main = _read_ref(repo, "main")
    if main and _safe_name(main) and os.path.isdir(os.path.join(snapshots, main)):
        return Located(os.path.join(snapshots, main), main)
    newest = _newest_snapshot(snapshots)
    if newest is None:
        raise LocateProblem("%s: the cache holds no snapshot (%s is empty)" % (repo_id, snapshots))
    return Located(os.path.join(snapshots, newest), newest)


def _safe_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def _read_ref(repo: str, name: str) -> Optional[str]:
    """refs/<name> holds the commit a branch or tag pointed to when it was downloaded."""
    if ".." in name.split("/"):
        return None
    try:
        text = read_capped(os.path.join(repo, "refs", name), REF_LIMIT).decode("ascii", "replace").strip()
    except FileProblem:
        return None
    return text or None


def _newest_snapshot(snapshots: str) -> Optional[str]:
    dated: List[Tuple[float, str]] = []
    try:
        names = os.listdir(snapshots)
    except OSError as exc:
        raise LocateProblem(_os_line(snapshots, exc))
    for name in names:
        try:
            info = os.stat(os.path.join(snapshots, name))
        except OSError:
            continue  # a dangling or looping entry is no snapshot
        dated.append((info.st_mtime, name))
    return max(dated)[1] if dated else None


def _os_line(path: str, exc: OSError) -> str:
    try:
        read_capped(path, 0)
    except FileProblem as problem:
        return str(problem)
    return "%s: %s" % (path, exc.strerror or exc)


# ---------------------------------------------------------------- reading


def gather(spec: str, revision: Optional[str] = None, environ: Optional[Mapping[str, str]] = None,
           fatal: bool = True) -> Gathered:
    """Facts of one model. ``fatal``: the user named it (exit 2 when unreadable); when it is
    only implied by a training config, the run goes on with the facts unknown."""
    environ = os.environ if environ is None else environ
    try:
        located = locate(spec, revision, environ)
    except LocateProblem as exc:
        return _failed(str(exc), fatal)
    config_path = os.path.join(located.folder, "config.json")
    try:
        config = read_config(config_path)
    except FileProblem as exc:
        return _failed(str(exc), fatal, {"model.path": located.folder})

    values: Dict[str, Value] = {"model.path": located.folder}
    if located.revision:
        values["model.revision"] = located.revision
    unknown: Dict[str, Unknown] = {}
    for key, value in config_facts(config, config_path).items():
        if isinstance(value, Unknown):
            unknown[key] = value
        else:
            values[key] = value
    code = remote_code_facts(located.folder, config.get("auto_map"))
    values.update(code.values)
    unknown.update(code.unknown)
    problems = tuple(Problem("model", p.message, fatal and p.fatal) for p in code.problems)
    return Gathered(values, unknown, problems)


def _failed(message: str, fatal: bool, values: Optional[Dict[str, Value]] = None) -> Gathered:
    return Gathered(values or {}, {k: Unknown(message) for k in KEYS}, (Problem("model", message, fatal),))


def read_config(path: str) -> dict:
    data = read_capped(path, CONFIG_LIMIT)
    text = decode_text(path, data)
    try:
        config = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", str(exc))
        where = "%s:%d" % (path, line) if line else path
        hint = " (truncated?)" if _at_end(exc, text) else ""
        raise FileProblem("%s: not valid JSON: %s%s" % (where, msg, hint))
    except RecursionError:
        raise FileProblem("%s: JSON nested too deeply" % path)
    if not isinstance(config, dict):
        raise FileProblem("%s: not a JSON object (found %s)" % (path, _json_kind(config)))
    return config


def _at_end(exc: ValueError, text: str) -> bool:
    pos = getattr(exc, "pos", None)
    return pos is not None and not text[pos:].strip()


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a %s" % type(value).__name__


def config_facts(config: dict, path: str) -> Dict[str, object]:
    """config.json keys to facts; a value of the wrong type is unknown, saying so."""
    out: Dict[str, object] = {}

    def typed(key: str, raw: object, kinds: tuple, name: str) -> None:
        if raw is None:
            out[key] = None
        elif isinstance(raw, kinds) and not isinstance(raw, bool):
            out[key] = raw
        else:
            out[key] = Unknown("%s: %s is %r, expected %s" % (path, key.split(".", 1)[1], raw, name))

    typed("model.type", config.get("model_type"), (str,), "a string")
    typed("model.max_position_embeddings", config.get("max_position_embeddings"), (int,), "an integer")
    theta = config.get("rope_theta")
    if isinstance(theta, int) and not isinstance(theta, bool):
        try:
            theta = float(theta)
        except OverflowError:  # hundreds of digits: kept as an int, reported as out of range
            pass
    typed("model.rope_theta", theta, (float,), "a number")
    # transformers >= 4.56 writes "dtype"; older releases "torch_dtype".
    typed("model.torch_dtype", config.get("torch_dtype", config.get("dtype")), (str,), "a string")
    typed("model.attn_implementation", config.get("attn_implementation", config.get("_attn_implementation")), (str,), "a string")
    typed("model.transformers_version", config.get("transformers_version"), (str,), "a string")

    arch = config.get("architectures")
    if isinstance(arch, list) and all(isinstance(a, str) for a in arch):
        out["model.architectures"] = ",".join(arch) if arch else None
    else:
        typed("model.architectures", arch, (str,), "a list of class names")

    rope = config.get("rope_scaling")
    if isinstance(rope, dict):
        kind = rope.get("type", rope.get("rope_type"))
        out["model.rope_scaling"] = kind if isinstance(kind, str) else "unnamed"
    else:
        typed("model.rope_scaling", rope, (str,), "an object")
    return out


def modeling_file(auto_map: object) -> Tuple[Optional[str], Optional[str]]:
    """(relative path of the modeling file, None) or (None, why there is none to read)."""
    if not isinstance(auto_map, dict):
        return None, "auto_map is not an object"
    refs = [auto_map[k] for k in _MODEL_CLASS_KEYS if isinstance(auto_map.get(k), str)]
    refs += [v for v in auto_map.values() if isinstance(v, str) and v.split("--")[-1].startswith("modeling")]
    if not refs:
        return None, "auto_map names no model class"
    ref = refs[0]
    if "--" in ref:
        return None, "auto_map points into another repository (%s)" % ref
    module = ref.rsplit(".", 1)[0] if "." in ref else ""
    parts = module.split(".")
    if not module or not all(p.isidentifier() for p in parts):
        return None, "auto_map entry %r is not module.Class" % ref
    return os.path.join(*parts) + ".py", None


def remote_code_facts(folder: str, auto_map: object) -> Gathered:
    if auto_map is None:
        return Gathered({"model.remote_code": None, "model.remote_code.sha256": None})
    keys = ("model.remote_code", "model.remote_code.sha256")
    relative, why = modeling_file(auto_map)
    if relative is None:
        reason = "%s: %s" % (os.path.join(folder, "config.json"), why)
        return Gathered(unknown={k: Unknown(reason) for k in keys}, problems=(Problem("model", reason, False),))
    path = os.path.join(folder, relative)
    try:
        data = read_capped(path, CODE_LIMIT)
        source = decode_text(path, data)
    except FileProblem as exc:
        # Missing remote code is a hole in the picture, not a failed probe.
        return Gathered(unknown={k: Unknown(str(exc)) for k in keys}, problems=(Problem("model", str(exc), False),))
    values: Dict[str, Value] = {"model.remote_code.sha256": hashlib.sha256(data).hexdigest()}
    try:
        tree = remote_code.parse(source, path)
    except remote_code.RemoteCodeSyntaxError as exc:
        return Gathered(values, {"model.remote_code": Unknown(str(exc))}, (Problem("model", str(exc), True),))
    values["model.remote_code"] = remote_code.classify(tree)
    return Gathered(values)
