"""Facts computed from other facts and the knowledge base's tables.

Kept apart from the sources (which only read the machine) and from the records (which
only compare): e.g. whether the NVIDIA driver is new enough for torch's CUDA build.
"""

from typing import Dict, List, Optional, Tuple

from packaging.version import Version

from envdoctor.facts import Facts, Gathered, Problem, Unknown, merge
from envdoctor.kb import declared
from envdoctor.kb.load import KnowledgeBase
from envdoctor.kb.tables import Tables
from envdoctor.specs import parse_version


def driver_table(tables: Tables) -> Tuple[Dict[str, str], Dict[int, str]]:
    toolkit = {row.data["cuda"]: row.data["minimum"] for row in tables.rows("cuda-driver", "toolkit")}
    family = {int(row.data["major"]): row.data["minimum"] for row in tables.rows("cuda-driver", "family")}
    return toolkit, family


def driver_facts(facts: Facts, tables: Tables) -> Gathered:
    cuda = facts.get("torch.cuda")
    driver = facts.get("cuda.driver")
    keys = ("cuda.driver.meets_toolkit", "cuda.driver.meets_family")
    if isinstance(cuda, Unknown):
        return Gathered(unknown={k: cuda for k in keys})
    if cuda is None:  # no torch, or a CPU build: no driver needed
        return Gathered(values={k: None for k in keys})
    toolkit, family = driver_table(tables)
    cuda_v = parse_version(cuda)
    if cuda_v is None:
        return Gathered(unknown={k: Unknown("torch.cuda %r is not a version" % cuda) for k in keys})
    values: Dict[str, object] = {}
    unknown: Dict[str, Unknown] = {}
    toolkit_floor = toolkit.get("%d.%d" % (cuda_v.major, cuda_v.minor))
    family_floor = family.get(cuda_v.major)
    if toolkit_floor:
        values["cuda.driver.toolkit_floor"] = toolkit_floor
    if family_floor:
        values["cuda.driver.family_floor"] = family_floor
    if isinstance(driver, Unknown) or driver is None:
        reason = driver.reason if isinstance(driver, Unknown) else "no NVIDIA driver visible"
        return Gathered(values, {k: Unknown(reason) for k in keys})
    driver_v = parse_version(driver)
    if driver_v is None:
        return Gathered(values, {k: Unknown("driver %r is not a version" % driver) for k in keys})
    for key, floor in (("cuda.driver.meets_toolkit", toolkit_floor), ("cuda.driver.meets_family", family_floor)):
        if floor is None:
            unknown[key] = Unknown("no driver floor known for CUDA %s" % cuda)
        else:
            values[key] = driver_v >= Version(floor)
    return Gathered(values, unknown)


_NOT_PROBED = Unknown("not probed")


def _known(facts: Facts, *keys: str) -> Tuple[Dict[str, object], Optional[Unknown]]:
    """The facts' values, or the first unknown among them."""
    out: Dict[str, object] = {}
    for key in keys:
        value = facts.get(key)
        if isinstance(value, Unknown):
            if key not in facts.unknown:  # never probed: leave the derived fact unprobed too
                return out, _NOT_PROBED
            return out, Unknown("%s is unknown (%s)" % (key, value.reason))
        out[key] = value
    return out, None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def training_facts(facts: Facts) -> Gathered:
    """Facts that combine the model, the training config and the run (docs/facts.md)."""
    values: Dict[str, object] = {}
    unknown: Dict[str, Unknown] = {}

    def put(key: str, value: object, why: Optional[Unknown]) -> None:
        if why is _NOT_PROBED:
            return
        if why is not None:
            unknown[key] = why
        else:
            values[key] = value

    # Packed batches are exactly max_length long; unpacked ones take any length.
    got, why = _known(facts, "train.pack_to_max_length", "train.max_length", "run.gpus")
    multiple: object = None
    if why is None:
        packed, length, gpus = got["train.pack_to_max_length"], got["train.max_length"], got["run.gpus"]
        if packed is False:
            multiple = False
        elif packed is True and _is_int(length) and _is_int(gpus) and gpus > 0:
            multiple = length % gpus == 0  # type: ignore[operator]
    put("run.batch_length_multiple_of_gpus", multiple, why)

    got, why = _known(facts, "train.max_length", "model.max_position_embeddings")
    beyond: object = None
    if why is None and _is_int(got["train.max_length"]) and _is_int(got["model.max_position_embeddings"]):
        beyond = got["train.max_length"] > got["model.max_position_embeddings"]  # type: ignore[operator]
    put("train.max_length_beyond_positions", beyond, why)

    got, why = _known(facts, "model.rope_scaling")
    put("model.rope_scaled", None if why else got["model.rope_scaling"] is not None, why)

    # What the weights are loaded as: the config's llm torch_dtype; 'auto' takes config.json's;
    # none given leaves transformers' default, float32.
    got, why = _known(facts, "train.torch_dtype")
    dtype: object = None
    if why is None:
        dtype = got["train.torch_dtype"] or "float32"
        if dtype == "auto":
            got, why = _known(facts, "model.torch_dtype")
            dtype = None if why else got["model.torch_dtype"]
    put("run.torch_dtype", dtype, why)

    got, why = _known(facts, "torch.version", "torch.cuda")
    cpu: object = None
    if why is None and got["torch.version"] is not None:
        cpu = got["torch.cuda"] is None
    put("torch.cpu_build", cpu, why)
    return Gathered(values, unknown)


PATCHED = "xtuner.internlm2_attention_patched"


def dispatch_facts(facts: Facts, tables: Tables) -> Gathered:
    """Whether this XTuner swaps InternLM2's attention for its own non-varlen forward.

    False only when it is known not to (no flash-attn, and torch below the release's gate);
    None when there is nothing to judge (no xtuner, or a release outside the table, or no torch:
    then nothing trains at all)."""
    got, why = _known(facts, "pkg.xtuner", "pkg.flash-attn", "torch.version")
    if why is not None:
        return Gathered() if why is _NOT_PROBED else Gathered(unknown={PATCHED: why})
    xtuner, flash, torch = (parse_version(got[k]) if got[k] is not None else None for k in ("pkg.xtuner", "pkg.flash-attn", "torch.version"))
    if xtuner is None or torch is None:
        return Gathered(values={PATCHED: None})
    from packaging.specifiers import SpecifierSet

    for gate in (row.data for row in tables.rows("xtuner-internlm2-dispatch", "gate")):
        if not SpecifierSet(gate["xtuner"]).contains(Version(xtuner.public), prereleases=True):
            continue
        by_torch = "torch" in gate and SpecifierSet(gate["torch"]).contains(Version(torch.public), prereleases=True)
        return Gathered(values={PATCHED: flash is not None or by_torch})
    return Gathered(values={PATCHED: None})


def derive_all(facts: Facts, kb: KnowledgeBase) -> Tuple[Facts, Tuple[Problem, ...]]:
    """Every derived fact, in order (later steps may read earlier ones)."""
    problems: List[Problem] = []
    for step in (
        lambda f: driver_facts(f, kb.tables),
        training_facts,
        lambda f: dispatch_facts(f, kb.tables),
        lambda f: declared.derive(f, kb.tables),
    ):
        facts, found = merge([Gathered(facts.values, facts.unknown, complete=facts.complete), step(facts)])
        problems.extend(found)
    return facts, tuple(problems)
