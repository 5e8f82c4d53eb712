"""Answers from the API history to the mechanical errors no record names.

ImportError "cannot import name", ModuleNotFoundError, AttributeError "module has no attribute",
TypeError "unexpected keyword argument" and unknown model types: which releases have the name
(module, keyword, model type), which installed package asks for it (from the traceback's frames),
a fix, and whether it holds in the examined environment. Loaded only when such a line matched.
"""

import re
from typing import List, NamedTuple, Optional, Sequence, Tuple

from envdoctor.history.load import History, PackageHistory, Span

# Patterns added to explain's scan: cheap literals, so a clean log pays (almost) nothing for them.
IMPORT_NAME = r"cannot import name '[^']+' from '[^']+'"
NO_MODULE = r"No module named '[^']+'"
NO_ATTRIBUTE = r"module '[^']+' has no attribute '[^']+'"
KEYWORD = r"got an unexpected keyword argument '[^']+'"
MODEL_TYPE = r"model type `[^`]+`"
FRAME = r"File \"[^\"]*[/\\](?:site|dist)-packages[/\\][^\"]+\", line \d+"
PATTERNS = (IMPORT_NAME, NO_MODULE, NO_ATTRIBUTE, KEYWORD, MODEL_TYPE)

HISTORY_REFERENCE = "knowledge/history/%s.json"


class Question(NamedTuple):
    kind: str  # "name", "module", "attribute", "keyword", "model_type"
    module: str  # the module (or callable for keywords; "" for model types)
    name: str  # the name / keyword / model type
    line: str


class Answer(NamedTuple):
    """What the history says about one question."""

    question: Question
    package: str  # the package whose history answers
    spans: Tuple[Span, ...]  # where the thing exists (examined releases); () = in none examined
    examined: str  # "4.30.2 to 5.24.0 (72 releases)"
    requires: Tuple[str, ...]  # a pin that brings it back, where one exists
    fix: str
    callable_: str = ""  # for keywords: the qualified callable that was looked up

    @property
    def what(self) -> str:
        q = self.question
        if q.kind == "keyword":
            return "keyword %r of %s" % (q.name, self.callable_ or q.module)
        if q.kind == "model_type":
            return "model type %r" % q.name
        if q.kind == "module":
            return "module %s" % q.name
        return "name %s.%s" % (q.module, q.name)


def parse_line(text: str) -> Optional[Question]:
    m = re.search(r"cannot import name '([^']+)' from '([^']+)'", text)
    if m:
        if "partially initialized" in text:
            return None  # a circular import: not a question of versions
        return Question("name", m.group(2), m.group(1), text)
    m = re.search(r"No module named '([^']+)'", text)
    if m:
        return Question("module", m.group(1), m.group(1), text)
    m = re.search(r"module '([^']+)' has no attribute '([^']+)'", text)
    if m:
        return Question("attribute", m.group(1), m.group(2), text)
    m = re.search(r"([A-Za-z_][\w.]*)\(\) got an unexpected keyword argument '([^']+)'", text)
    if m:
        return Question("keyword", m.group(1), m.group(2), text)
    m = re.search(r"model type `([^`]+)`", text)
    if m:
        return Question("model_type", "", m.group(1), text)
    return None


def _examined(ph: PackageHistory) -> str:
    return "%s to %s (%d releases examined)" % (ph.versions[0], ph.versions[-1], len(ph.versions))


def _pin(package: str, spans: Sequence[Span]) -> Tuple[str, ...]:
    if not spans:
        return ()
    spec = spans[-1].specifier()
    return ("%s%s" % (package, spec),) if spec else ()


def _callables(ph: PackageHistory, text: str) -> List[str]:
    """'LoraConfig.__init__' -> the qualified classes of that name in the history (it may have moved:
    peft.tuners.lora.LoraConfig, later peft.tuners.lora.config.LoraConfig)."""
    parts = [p for p in text.split(".") if p != "__init__"]
    return ph.callables_named(parts[-1]) if parts else []


def keyword_ranges(ph: PackageHistory, quals: Sequence[str], keyword: str) -> str:
    from envdoctor.history.ranges import decode, encode

    found = set()
    for q in quals:
        found |= decode(ph.keyword_ranges(q, keyword))
    return encode(found)


def answer(history: History, q: Question) -> Optional[Answer]:
    """The history's answer, or None where it covers nothing the line names."""
    if q.kind == "model_type":
        ph = history.package("transformers")
        if ph is None or not ph.data.get("model_types"):
            return None
        spans = tuple(ph.span(ph.model_type_ranges(q.name))) if ph.model_type_ranges(q.name) else ()
        requires = _pin("transformers", spans) if spans else ()
        fix = ("install %s (the model type exists in transformers %s)" % (requires[0], spans[-1].text()) if requires else
               "no examined transformers release knows it: the model needs its own code (trust_remote_code=True) or a newer transformers"
               if not spans else "upgrade transformers")
        return Answer(q, "transformers", spans, _examined(ph), requires, fix)
    if q.kind == "keyword":
        for package in _packages_for_callable(history, q.module):
            ph = history.package(package)
            quals = _callables(ph, q.module) if ph else []
            if not quals:
                continue
            qual = " / ".join(quals)
            ranges = keyword_ranges(ph, quals, q.name)
            spans = tuple(ph.span(ranges)) if ranges else ()
            requires = _pin(package, spans)
            fix = ("install %s (%s accepts %r in %s)" % (requires[0], qual, q.name, spans[-1].text()) if requires else
                   "no examined %s release accepts %r: drop it, or rename it as the installed release calls it" % (package, q.name))
            return Answer(q, package, spans, _examined(ph), requires, fix, qual)
        return None
    module = q.module
    ph = history.for_module(module)
    if ph is None:
        return None
    if q.kind == "module":
        ranges = ph.module_ranges(module)
    else:
        ranges = ph.name_ranges(module, q.name)
    if not ranges and not ph.module_ranges(module.split(".")[0]):
        return None
    spans = tuple(ph.span(ranges)) if ranges else ()
    requires = _pin(ph.package, spans)
    if q.kind == "module" and "." not in module:
        requires = (ph.package,)
        fix = "install %s" % ph.package
    elif requires:
        fix = "install %s (it has %s in %s)" % (requires[0], module if q.kind == "module" else "%s.%s" % (module, q.name),
                                                spans[-1].text())
    else:
        fix = "no examined %s release has it: upgrade or pin the package that asks for it" % ph.package
    return Answer(q, ph.package, spans, _examined(ph), requires, fix)


def _packages_for_callable(history: History, text: str) -> List[str]:
    """Which packages' histories to search for a callable named in a TypeError (by its class name)."""
    order = ["transformers", "peft", "trl", "accelerate", "datasets", "mmengine", "xtuner", "deepspeed", "bitsandbytes"]
    return [p for p in order if p in history.index["packages"]]


def importer_from(frames: Sequence[str], before_line: int, frame_lines: Sequence[Tuple[int, str]]) -> Optional[str]:
    """The innermost site-packages frame above the error line: 'xtuner/utils/x.py line 13'."""
    best = None
    for number, text in frame_lines:
        if number < before_line and (best is None or number > best[0]):
            best = (number, text)
    if best is None:
        return None
    m = re.search(r"(?:site|dist)-packages[/\\]([^\"]+)\", line (\d+)", best[1])
    return "%s line %s" % (m.group(1), m.group(2)) if m else None


def holds_here(history: History, a: Answer, installed: dict) -> Tuple[Optional[bool], str]:
    """Whether the error would happen in the examined environment, and why, in words."""
    q = a.question
    version = installed.get(a.package)
    if version is None:
        if q.kind == "module" or q.kind == "name":
            return True, "%s is not installed here" % a.package
        return None, "%s is not installed here" % a.package
    ph = history.package(a.package)
    if ph is None:
        return None, ""
    if q.kind == "model_type":
        known = ph.knows_model_type(q.name, version)
    elif q.kind == "keyword":
        answers = [ph.accepts(c, q.name, version) for c in a.callable_.split(" / ")]
        known = True if True in answers else None if None in answers else False
    elif q.kind == "module":
        known = ph.has_module(q.module, version)
    else:
        known = ph.has_name(q.module, q.name, version)
        if known is None and q.kind == "attribute":
            known = ph.has_module(q.module + "." + q.name, version) or None
    if known is None:
        return None, "%s %s is installed here; the history cannot tell for that release" % (a.package, version)
    if known:
        return False, "%s %s here has it" % (a.package, version)
    return True, "%s %s here lacks it" % (a.package, version)
