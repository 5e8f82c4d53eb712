"""``envdoctor run -- CMD``: a pre-flight check with the facts the command line gives, the
command run untouched, and a diagnosis of its output when it fails.

Knows nothing of click: ``cli.py`` hands in the options and a ``say`` function for our own
words (standard error, so the command's standard output stays its own).
"""

import os
import signal
import time
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

from envdoctor import launch as launch_line
from envdoctor import supervise
from envdoctor.capture import Capture
from envdoctor.explain import Explanation, diagnose, symptom_patterns
from envdoctor.facts import Problem
from envdoctor.kb.load import KnowledgeBase, load_kb
from envdoctor.options import CheckOptions

LOG_NAME = "the command's output"
TAIL = 100  # lines of the output's end kept in the --report file
# A command ended by one of these was stopped on purpose (Ctrl-C, kill, a job's time limit, the
# reader of its output went away): its output is not searched for a cause.
STOPPED_ON_PURPOSE = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE)

Say = Callable[[str], None]


class RunOptions(NamedTuple):
    keep_going: bool = False  # start the command even when the pre-flight confirms an error
    check: bool = True  # False: no pre-flight (--no-check)
    report: Optional[str] = None  # --report FILE: the JSON written here
    colour: bool = False


class Preflight(NamedTuple):
    launch: launch_line.Launch
    options: CheckOptions  # the user's options, completed from the command line
    report: Optional[object]  # check.Report; None with --no-check
    seconds: float
    notes: Tuple[str, ...]

    @property
    def errors(self) -> tuple:
        return () if self.report is None else self.report.confirmed("error")  # type: ignore[attr-defined]


class Result(NamedTuple):
    argv: Tuple[str, ...]
    preflight: Preflight
    started: bool
    outcome: Optional[supervise.Outcome]
    explanation: Optional[Explanation]
    tail: Tuple[str, ...]
    seconds: float  # the command's wall time

    @property
    def exit_code(self) -> int:
        return 1 if self.outcome is None else self.outcome.exit_code


def builtin_config(name: str) -> Optional[str]:
    """The file of an XTuner built-in config given by name (``xtuner train NAME``), found in
    this interpreter's xtuner package without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("xtuner")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    wanted = name if name.endswith(".py") else name + ".py"
    for root in spec.submodule_search_locations:
        for folder, _dirs, files in os.walk(os.path.join(root, "configs")):
            if wanted in files:
                return os.path.join(folder, wanted)
    return None


def _this_interpreter(path: str) -> bool:
    """Whether ``path`` is the interpreter running envdoctor (the same environment)."""
    import sys

    if os.path.abspath(path) == os.path.abspath(sys.executable):
        return True
    # A venv's bin/python is a link to its base interpreter: compare the environments.
    return os.path.dirname(os.path.dirname(os.path.abspath(path))) == os.path.abspath(sys.prefix)


def complete_options(options: CheckOptions, found: launch_line.Launch) -> Tuple[CheckOptions, Tuple[str, ...]]:
    """The user's options, with what the command line says where they say nothing."""
    notes: List[str] = list(found.notes)
    config = options.config
    if config is None and found.config is not None:
        if os.path.isfile(found.config):
            config = found.config
        elif options.python is None and options.requirements is None and os.sep not in found.config:
            config = builtin_config(found.config)
        if config is None:
            notes.append("%s %s: no such config file here; it was not checked (pass --config FILE)" % (found.program, found.config))
    python = options.python
    if python is None and options.requirements is None and found.python and not _this_interpreter(found.python):
        python = found.python  # the command runs another environment: examine that one
    return options._replace(
        python=python,
        config=config,
        launcher=options.launcher or found.launcher,
        gpus=options.gpus or found.gpus,
    ), tuple(notes)


def preflight(argv: Sequence[str], options: CheckOptions, run_options: RunOptions, kb: KnowledgeBase) -> Preflight:
    started = time.monotonic()
    found = launch_line.read(argv, os.environ)
    options, notes = complete_options(options, found)
    report = None
    if run_options.check:
        from envdoctor.check import run

        report = run(options, kb)
    return Preflight(found, options, report, time.monotonic() - started, notes)


def execute(argv: Sequence[str], kb: KnowledgeBase) -> Tuple[supervise.Outcome, Capture, float]:
    capture = Capture(symptom_patterns(kb))
    started = time.monotonic()
    # Each pattern search is bounded in time (logscan's budget): a pattern that backtracks must
    # not stall the output, and with it the command (past the spool, lines are searched as they come).
    with capture.budget:
        outcome = supervise.run(argv, capture.feed)
        capture.finish()
    return outcome, capture, time.monotonic() - started


def postmortem(pre: Preflight, capture: Capture, kb: KnowledgeBase) -> Explanation:
    """The explanation of the output, judged with the pre-flight's facts (or, after --no-check,
    with a check made now, only when a symptom matched)."""
    scanner, progress = capture.result()  # the output is searched now, the command having failed
    hits = scanner.hits()
    report = pre.report
    if hits and report is None:
        from envdoctor.check import run

        report = run(pre.options, kb)
    from envdoctor.logscan import PATTERN_BUDGET

    problems: List[Problem] = []
    for index, line in sorted(scanner.slow.items(), key=lambda item: item[1]):
        problems.append(Problem("log", "the symptom pattern %r ran out of time (%gs) on one line, at or after line %d, and was "
                                       "not looked for from there on" % (scanner.patterns[index].text, PATTERN_BUDGET, line)))
    if report is not None:
        problems.extend(p for p in report.problems if p.source != "knowledge")  # type: ignore[attr-defined]
    diagnoses = diagnose(hits, kb, report)
    if any(len(d.candidates) > 1 for d in diagnoses):
        diagnoses = _rank_by_tail(diagnoses, capture)
    return Explanation(LOG_NAME, diagnoses, progress.lines, progress.size,  # type: ignore[arg-type]
                       True, len([r for r in kb.records if r.symptoms]), report, tuple(problems))  # type: ignore[arg-type]


def _rank_by_tail(diagnoses: tuple, capture: Capture) -> tuple:
    """Rival causes ranked as explain ranks them, by the traceback paths and versions printed;
    here read from the output's end (the traceback comes just before the failure)."""
    from envdoctor import rivals
    from envdoctor.explain import rank_rivals

    wanted = rivals.clues([c.record for d in diagnoses if len(d.candidates) > 1 for c in d.candidates])
    found = rivals.LogClues.from_hits(wanted, capture.scan_tail([c.pattern for c in wanted]))
    return rank_rivals(diagnoses, found)


def _on_purpose(outcome: supervise.Outcome) -> bool:
    return outcome.signal in STOPPED_ON_PURPOSE or any(s in STOPPED_ON_PURPOSE for s in outcome.forwarded)


def run(argv: Sequence[str], options: CheckOptions, run_options: RunOptions, say: Say) -> Result:
    from envdoctor.render import run as out

    kb = load_kb(options.extra_kb)
    pre = preflight(argv, options, run_options, kb)
    text = out.preflight_text(pre, run_options.keep_going, run_options.colour)
    if text:
        say(text)
    if pre.errors and not run_options.keep_going:
        return _finish(Result(tuple(argv), pre, False, None, None, (), 0.0), run_options, say)
    outcome, capture, seconds = execute(argv, kb)
    if outcome.error:
        say("envdoctor: %s\n" % outcome.error)
        return _finish(Result(tuple(argv), pre, False, outcome, None, (), seconds), run_options, say)
    explanation = None
    if outcome.exit_code != 0 and not _on_purpose(outcome):
        explanation = postmortem(pre, capture, kb)
        say(out.postmortem_text(explanation, outcome, run_options.colour))
    tail = tuple(capture.tail(TAIL)) if outcome.exit_code != 0 else ()
    capture.close()
    return _finish(Result(tuple(argv), pre, True, outcome, explanation, tail, seconds), run_options, say)


def _finish(result: Result, run_options: RunOptions, say: Say) -> Result:
    if run_options.report:
        from envdoctor.render import run as out

        try:
            from envdoctor.redact import redact_text
            from envdoctor.safeio import write_beside

            # The command line and its output's lines may hold an index URL with a token.
            write_beside(run_options.report, redact_text(out.render_json(result)), 0o644)
        except OSError as exc:
            say("envdoctor: --report %s: cannot write it (%s)\n" % (run_options.report, exc.strerror or exc))
    return result


def report_folder_problem(path: str) -> Optional[str]:
    """Why ``--report FILE`` could not be written, checked before the command starts."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "--report %s: is a folder; give a file name" % path
    if not os.path.isdir(folder):
        return "--report %s: the folder %s does not exist" % (path, folder)
    if not os.access(folder, os.W_OK):
        return "--report %s: the folder %s is not writable" % (path, folder)
    return None
