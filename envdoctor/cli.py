"""Command line: parses options, picks implementations, prints. The work lives elsewhere."""

import os
import sys

import click

from envdoctor import __version__
from envdoctor.sources.run import LAUNCHERS

EXIT_CODES = """\b
Exit codes:
  0  nothing at or above --fail-on
  1  findings at or above --fail-on
  2  usage error, or the environment could not be probed"""

FORMAT = click.Choice(["text", "json", "markdown"])


class _Failure(Exception):
    """A clear, one-line error for the user (exit 2)."""


class _Signalled(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so children are killed and temp files removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum


def _on_signal(signum, frame) -> None:
    raise _Signalled(signum)


def _emit(text: str) -> None:
    from envdoctor.redact import redact_text

    if sys.stdout is None:  # started with stdout closed
        raise _Failure("standard output is closed; nothing can be printed")
    try:
        sys.stdout.write(redact_text(text))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `envdoctor check | head`
        os._exit(0)
    except OSError as exc:  # /dev/full, a closed descriptor
        raise _Failure("cannot write to standard output (%s)" % (exc.strerror or exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="envdoctor")
def cli() -> None:
    """Find the known-bad combinations in an XTuner / transformers / torch / CUDA stack.

    \b
      envdoctor check                      examine this environment
      envdoctor check --python venv/bin/python
      envdoctor explain train.log          which known issue a log or traceback shows
      envdoctor kb list                    what envdoctor knows about
    """


def probe_options(func):
    """The options that say which environment to examine; shared by check, explain and fix."""
    options = [
        click.option("--python", "python", metavar="PATH", help="Examine another interpreter (a venv's python) instead of this one. Nothing is installed into it."),
        click.option("--driver", metavar="VERSION", help="NVIDIA driver version to check against (default: the visible one; also ENVDOCTOR_CUDA_DRIVER)."),
        click.option("--kb", "kb_dirs", multiple=True, metavar="DIR", type=click.Path(exists=True, file_okay=False), help="Also load your own records from DIR (repeatable)."),
        click.option("-r", "--requirements", "requirements", metavar="FILE", help="Check the pins of a requirements file or lockfile instead of an installed environment (nothing is installed)."),
        click.option("--python-version", "python_version", metavar="X.Y", help="With -r: the Python the file is meant for (default: the one running envdoctor)."),
        click.option("--fact", "set_facts", multiple=True, metavar="KEY=VALUE", help="Supply or override a fact (docs/facts.md), e.g. --fact model.type=internlm2 --fact run.gpus=8 (repeatable)."),
        click.option("--probe-timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True, metavar="SECONDS", help="Time limit for each program envdoctor runs to probe: the --python interpreter, nvidia-smi, nvcc."),
        click.option("--model", metavar="PATH_OR_ID", help="The model: a folder with config.json, or a hub id found in the local Hugging Face cache (never downloaded)."),
        click.option("--revision", metavar="REV", help="With a hub id: the cached branch, tag or commit (default: main, else the newest snapshot)."),
        click.option("--config", "config", metavar="FILE.py", type=click.Path(dir_okay=False), help="The XTuner config, read without running it. Implies --model from its pretrained_model_name_or_path."),
        click.option("--gpus", type=click.IntRange(1, 100000), metavar="N", help="GPUs the training runs on (default: WORLD_SIZE, NPROC_PER_NODE or SLURM_NTASKS)."),
        click.option("--launcher", type=click.Choice(LAUNCHERS), help="How training is launched; 'deepspeed' for xtuner train --deepspeed (default: from the environment)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_options(params: dict, require_gpu: bool = False):
    """CheckOptions from the values of probe_options."""
    from envdoctor.options import CheckOptions

    return CheckOptions(
        python=params["python"],
        extra_kb=tuple(params["kb_dirs"]),
        driver=params["driver"],
        probe_timeout=params["probe_timeout"],
        require_gpu=require_gpu,
        model=params.get("model"),
        revision=params.get("revision"),
        config=params.get("config"),
        gpus=params.get("gpus"),
        launcher=params.get("launcher"),
        requirements=params.get("requirements"),
        python_version=_python_version(params),
        set_facts=_set_facts(params.get("set_facts") or ()),
    )


def _set_facts(items) -> tuple:
    """KEY=VALUE pairs; true/false/none and integers are typed, the rest stays text."""
    out = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise _Failure("--fact %s: expected KEY=VALUE, e.g. model.type=internlm2" % item)
        lowered = text.strip().lower()
        value = {"true": True, "false": False, "none": None, "null": None}.get(lowered, text.strip())
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        out.append((key.strip(), value))
    return tuple(out)


def _python_version(params: dict):
    version = params.get("python_version")
    if version is None:
        return None
    if not params.get("requirements"):
        raise _Failure("--python-version only applies with -r FILE")
    if params.get("python"):
        raise _Failure("-r FILE and --python are two different environments; give one")
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Version(version)
    except InvalidVersion:
        raise _Failure("--python-version %s: not a version (expected e.g. 3.10)" % version)
    if len(parsed.release) < 2:
        raise _Failure("--python-version %s: give at least major.minor, e.g. 3.10" % version)
    return version


@cli.command(epilog=EXIT_CODES)
@probe_options
@click.option("--require-gpu", is_flag=True, help="Fail when no NVIDIA driver or GPU is visible (off by default, so container builds pass).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True, help="Output format.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error", show_default=True, help="Lowest severity that makes the exit code 1.")
@click.option("--distributed", is_flag=True, help="Run under torchrun or srun: each node probes itself, rank 0 reports what differs between nodes; every rank exits with the same code (needs torch).")
@click.option("--timeout", type=click.FloatRange(1, 86400), metavar="SECONDS", help="With --distributed: how long to wait for every rank (default: 300).")
def check(require_gpu, fmt, fail_on, distributed, timeout, **probe) -> None:
    """Probe an environment and report known problems.

    Reads package metadata and files as text: never imports torch, transformers or
    xtuner, never executes user files, never uses the network. Findings that depend on a
    fact envdoctor could not learn are shown as "possible", with the option that supplies
    it; they never change the exit code.
    """
    from envdoctor.check import run

    if distributed:
        sys.exit(_distributed(check_options(probe, require_gpu), fmt, fail_on, 300.0 if timeout is None else timeout))
    if timeout is not None:
        raise _Failure("--timeout applies only with --distributed (use --probe-timeout for nvidia-smi and nvcc)")
    report = run(check_options(probe, require_gpu), fail_on=fail_on)
    _emit(_render(report, fmt))
    for problem in report.problems:
        if problem.fatal and fmt != "text":
            _tell("envdoctor: %s" % problem.message)
    sys.exit(report.exit_code)


def _colour(stream=None) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org) or
    TERM=dumb (a dumb terminal shows the codes as text)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return (stream or sys.stdout).isatty()
    except (AttributeError, ValueError):
        return False


def _render(result, fmt: str) -> str:
    """Every command's result goes out through the one dispatcher."""
    from envdoctor.render import COLOURED, render

    return render(result, fmt, colour=fmt in COLOURED and _colour())


def _render_cluster(cluster, fmt: str, command: str) -> str:
    from envdoctor.render import cluster as out

    if fmt == "json":
        return out.render_json(cluster)
    if fmt == "markdown":
        return out.render_markdown(cluster, command)
    return out.render_text(cluster, command, colour=_colour())


def _distributed(options, fmt: str, fail_on: str, timeout: float) -> int:
    from envdoctor.cluster import command, distributed, launch, table

    try:
        return command.check_distributed(options, fail_on, timeout, lambda c: _render_cluster(c, fmt, "check --distributed"), _emit)
    except (launch.LaunchError, distributed.DistributedError, table.TableError) as exc:
        raise _Failure(str(exc))


COMPARE_EXIT_CODES = """\b
Exit codes:
  0  the nodes agree and nothing is at or above --fail-on
  1  a fact that must agree differs, or findings at or above --fail-on
  2  a file is not a readable check report, or a node's probe failed"""


@cli.command(epilog=COMPARE_EXIT_CODES)
@click.argument("reports", nargs=-1, required=True, metavar="REPORT.json...")
@click.option("--kb", "kb_dirs", multiple=True, metavar="DIR", type=click.Path(file_okay=False), help="Also load your own records (and tables) from DIR (repeatable).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True, help="Output format.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error", show_default=True, help="Lowest severity that makes the exit code 1.")
def compare(reports, kb_dirs, fmt, fail_on) -> None:
    """Compare the reports of envdoctor check --format json made on each node of a job.

    Says which facts differ between nodes (and which nodes hold which value), whether
    knowledge/tables/drift.toml lets them differ, and the knowledge base's findings once per
    distinct environment.
    """
    from envdoctor.cluster import command, nodes, table
    from envdoctor.kb.load import load_kb

    try:
        cluster = command.compare(reports, load_kb(tuple(kb_dirs)), fail_on)
    except (nodes.ReportError, table.TableError) as exc:
        raise _Failure(str(exc))
    _emit(_render_cluster(cluster, fmt, "compare"))
    sys.exit(cluster.exit_code)


@cli.group()
def kb() -> None:
    """Inspect and validate the knowledge base."""


@kb.command("lint", epilog="\b\nExit codes:\n  0  every record is valid\n  1  at least one record is invalid\n  2  usage error")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def kb_lint(directory) -> None:
    """Validate the records and tables in DIRECTORY (default: the shipped knowledge base).

    Every error of every file is listed with its line: unknown fields and fact names,
    specifiers on facts that are not versions, invalid versions, patterns that can backtrack
    for ever, ids that a shipped record already has, malformed tables.
    """
    from envdoctor.kb.lint import lint, summary
    from envdoctor.kb.load import shipped_dir

    directory = directory or shipped_dir()
    if not os.path.isdir(directory):
        raise _Failure("%s: no such folder" % directory)
    from envdoctor.cluster.table import lint as lint_drift_table

    result = lint(directory)
    _emit("".join(str(error) + "\n" for error in result.errors))
    drift = lint_drift_table(result.base.tables)  # the cluster drift table's own rules
    _emit("".join(str(problem) + "\n" for problem in drift))
    _emit(summary(result, directory) + "\n")
    sys.exit(1 if result.errors or drift else 0)


@kb.command("list", epilog="\b\nExit codes:\n  0  listed\n  1  a record of a --kb folder is invalid (named on standard error; the rest listed)\n  2  usage error")
@click.option("--kb", "kb_dirs", multiple=True, metavar="DIR", type=click.Path(exists=True, file_okay=False), help="Also list your own records from DIR.")
@click.option("--area", metavar="AREA", help="Only the records of AREA: their folder under knowledge/records/ (xtuner, peft, cuda ...).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True)
def kb_list(kb_dirs, area, fmt) -> None:
    """List every record: id, area, severity, affected ranges, fix, source."""
    from envdoctor.kb.load import areas, load_kb, only_area

    base = load_kb(tuple(kb_dirs))
    if area is not None:
        known = areas(base)
        base = only_area(base, area)
        if not base.records:
            raise _Failure("--area %s: no such area (areas: %s)" % (area, ", ".join(a for a in known if a)))
    _emit(_render(base, fmt))
    for error in base.errors:
        _tell("envdoctor: %s" % (error,))
    sys.exit(1 if base.errors else 0)


FIX_EXIT_CODES = """\b
Exit codes:
  0  a plan (or nothing to do); the lockfile, if asked for, was written
  1  no plan is possible in this environment (the output says what would have to change)
  2  usage error, the environment could not be probed, or the lockfile could not be made"""


@cli.command(epilog=FIX_EXIT_CODES)
@probe_options
@click.option("--latest", is_flag=True, help="Take the newest release that clears everything (default: the nearest).")
@click.option("--allow-change", "allow_change", multiple=True, type=click.Choice(["torch", "python"]), help="Let the plan change torch (and its CUDA build) or Python, which usually come from the base image.")
@click.option("--allow-downgrade", is_flag=True, help="Let the plan move XTuner back to an older line, or more than three releases back (configs are written for a line, so by default it does not).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")
@click.option("--print-requirements", is_flag=True, help="Print only the plan as a requirements.in.")
@click.option("--write-lock", "write_lock", metavar="PATH", help="Resolve the plan for the target Python and platform and write a pinned lockfile (pip-compile's format) to PATH.")
@click.option("--force", is_flag=True, help="With --write-lock: overwrite PATH even if it is not an envdoctor lockfile.")
@click.option("--verify", is_flag=True, help="With --write-lock: install the lockfile into a throwaway venv, run pip check, import the stack and run a CPU training step of a tiny model (exit 1 when the level asked for is not reached).")
@click.option("--verify-level", type=click.Choice(["consistent", "imports", "smoke"]), default="smoke", show_default=True, help="With --verify: the level to reach (consistent: installs and pip check; imports: the stack imports; smoke: a forward and backward step runs).")
@click.option("--verify-python", metavar="PATH", help="With --verify: the interpreter for the throwaway venv (default: the target interpreter).")
@click.option("--offline", is_flag=True, help="Pick a curated lockfile shipped with envdoctor that matches this environment; no index is asked.")
@click.option("--index-url", metavar="URL", help="Where releases come from, for the resolver check, the lockfile and --verify.")
@click.option("--extra-index-url", multiple=True, metavar="URL", help="Another index, as pip takes it (repeatable).")
@click.option("--find-links", multiple=True, metavar="DIR|URL", help="A folder or page of release files, as pip takes it (repeatable).")
@click.option("--no-index", is_flag=True, help="Use only --find-links.")
@click.option("--generate-hashes", is_flag=True, help="Write each pin's hashes into the lockfile.")
@click.option("--pip-compile", "pip_compile", metavar="PATH", help="With --resolver pip-tools: the pip-compile to run (also ENVDOCTOR_PIP_COMPILE); it must run on the target Python.")
@click.option("--lock-timeout", type=click.FloatRange(1, 7200), default=900, show_default=True, metavar="SECONDS", help="Time limit for the resolver (and each --verify step).")
@click.option("--resolver", type=click.Choice(["uv", "pip-tools"]), default="uv", show_default=True, help="What writes the lockfile: uv resolves for any target Python and platform; pip-tools runs pip-compile on an interpreter of the target Python (installed into a cached venv when needed).")
@click.option("--no-resolve", is_flag=True, help="Do not put the plan to a resolver (uv) before showing it; the plan says it was not checked.")
@click.option("--uv", "uv", metavar="PATH", help="The uv to run (default: the one installed with envdoctor, then PATH; also ENVDOCTOR_UV).")
def fix(latest, allow_change, allow_downgrade, fmt, print_requirements, write_lock, force, verify, verify_python, offline, index_url,
        extra_index_url, find_links, no_index, generate_hashes, pip_compile, lock_timeout, resolver, no_resolve, uv, verify_level,
        **probe) -> None:
    """Plan the smallest change that clears every error; optionally write a lockfile.

    Candidate versions come from the knowledge base (release tables, record ranges and
    remedies); each is checked against every record before it is proposed. torch and Python
    stay as they are unless --allow-change says otherwise.
    """
    import shlex

    from envdoctor.fix import command
    from envdoctor.fix.locktypes import Index

    if (verify or force) and not write_lock:
        raise _Failure("--verify and --force apply only with --write-lock PATH")
    if offline and write_lock:
        raise _Failure("--offline picks a shipped lockfile; it cannot be combined with --write-lock")
    # The resolvers run in a scratch folder: a folder given relative to here must still be found.
    links = tuple(os.path.abspath(f) if os.path.isdir(f) else f for f in find_links)
    index = Index(index_url, tuple(extra_index_url), links, no_index, generate_hashes)
    if print_requirements and not offline:  # only the plan is asked for: no lockfile is made
        fmt, write_lock = "requirements", None
    try:
        result = command.run(check_options(probe), command.FixOptions(
            latest=latest, allow_change=frozenset(allow_change), write_lock=write_lock, force=force, verify=verify,
            verify_python=verify_python, offline=offline, index=index, timeout=lock_timeout, pip_compile=pip_compile,
            resolve=not no_resolve, uv=uv, resolver=resolver, verify_level=verify_level, allow_downgrade=allow_downgrade,
            command="envdoctor " + " ".join(shlex.quote(a) for a in sys.argv[1:]), progress=_progress))
    except command.FixError as exc:
        raise _Failure(str(exc))
    if fmt == "requirements" and getattr(result, "plan", None) is not None and result.plan.status == "no-plan":
        # stdout is meant for a requirements.in: on no plan it gets nothing, the reasons go to stderr.
        _say(_render(result, "text"))
        sys.exit(result.exit_code)
    _emit(_render(result, fmt))
    sys.exit(result.exit_code)


def _progress(message: str) -> None:
    """The lockfile steps' progress, only for a person at a terminal: a pipe or a log gets
    nothing. A requirement may be a URL with a token: redacted."""
    from envdoctor.redact import redact_text

    if sys.stderr.isatty():
        sys.stderr.write("envdoctor: %s\n" % redact_text(message))
        sys.stderr.flush()


def _tell(message: str) -> None:
    """One line on standard error, credentials hidden; nothing when stderr is gone."""
    from envdoctor.redact import redact_text

    try:
        click.echo(redact_text(message), err=True)
    except (OSError, ValueError, AttributeError):
        pass


def _setup_streams() -> None:
    """A file name in a non-ASCII locale (PYTHONIOENCODING=ascii) is escaped, never a crash;
    SIGTERM and SIGHUP unwind like Ctrl-C (children killed, temp files removed)."""
    import signal

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            pass
    for name in ("SIGTERM", "SIGHUP"):
        # An ignored one (SIGHUP under nohup) stays ignored: for us, and for what `run` starts.
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) != signal.SIG_IGN:
            try:
                signal.signal(getattr(signal, name), _on_signal)
            except (ValueError, OSError):  # not the main thread (envdoctor called as a library)
                pass


def main() -> None:
    _setup_streams()
    try:
        cli.main(prog_name="envdoctor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        try:
            exc.show()
        except (OSError, ValueError, AttributeError):  # stderr closed or full
            pass
        sys.exit(2)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            sys.exit(130)
        _tell("envdoctor: aborted")
        sys.exit(2)
    except _Failure as exc:
        _tell("envdoctor: %s" % exc)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except _Signalled as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug of ours: one line, the traceback only on demand
        if os.environ.get("ENVDOCTOR_DEBUG"):
            raise
        _tell("envdoctor: internal error: %s: %s (set ENVDOCTOR_DEBUG=1 for details)" % (type(exc).__name__, exc))
        sys.exit(2)



EXPLAIN_EXIT_CODES = """\b
Exit codes:
  0  no known issue's symptom in the log
  1  a known issue's symptom found
  2  the log could not be read (or only in part, with nothing found), or the environment could not be probed"""


@cli.command(epilog=EXPLAIN_EXIT_CODES)
@click.argument("log", required=False, default="-", metavar="[LOG|-]")
@probe_options
@click.option("--log-only", is_flag=True, help="Only match the log; examine no environment (the log comes from another machine).")
@click.option("--format", "fmt", type=FORMAT, default="text", show_default=True, help="Output format.")
def explain(log, log_only, fmt, **probe) -> None:
    """Find known issues in a training log or traceback (a file, .gz too, or - for standard input).

    For each known issue whose symptom appears: the matching lines with their numbers, the
    cause, whether the environment at hand (this interpreter, or --python) has it, and the
    fix. Where several known issues share a symptom, the environment's facts say which one
    applies, or which fact would decide it. The log is streamed: any size, little memory.
    """
    from envdoctor.explain import LogError, explain as explain_log

    try:
        result = explain_log(log, check_options(probe), examine=not log_only)
    except LogError as exc:
        raise _Failure(str(exc))
    _emit(_render(result, fmt))
    if fmt != "text":
        for problem in result.problems:
            _tell("envdoctor: %s" % problem.message)
    sys.exit(result.exit_code)


RUN_EXIT_CODES = """\b
Exit codes:
  the command's own (128+N when a signal N ended it)
  1    the pre-flight confirmed an error and the command was not started
  2    usage error
  126  the command was found but cannot be run; 127 not found"""


@cli.command(epilog=RUN_EXIT_CODES, context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@probe_options
@click.option("--keep-going", is_flag=True, help="Start the command even when the pre-flight confirms an error.")
@click.option("--no-check", "no_check", is_flag=True, help="No pre-flight; only diagnose the output if the command fails.")
@click.option("--report", metavar="FILE", help="Also write the pre-flight, the outcome and the diagnosis as JSON to FILE.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- COMMAND [ARGS]...")
def run(keep_going, no_check, report, command, **probe) -> None:
    """Check this environment for what COMMAND will train, run it, and diagnose it if it fails.

    \b
      envdoctor run -- xtuner train my_config.py --deepspeed deepspeed_zero2
      envdoctor run -- torchrun --nproc_per_node=8 train.py ...
    The XTuner config, the launcher and the number of processes are read from the command
    line. The command's output passes through untouched (a pseudo-terminal when this is a
    terminal); envdoctor's own words go to standard error, and only when there is something
    to say.
    """
    from envdoctor import runcmd, supervise

    why = supervise.supported()
    if why:
        raise _Failure(why)
    if report:
        problem = runcmd.report_folder_problem(report)
        if problem:
            raise _Failure(problem)
    result = runcmd.run(command, check_options(probe), runcmd.RunOptions(
        keep_going=keep_going, check=not no_check, report=report, colour=_colour(sys.stderr)), _say)
    sys.exit(result.exit_code)


def _say(text: str) -> None:
    from envdoctor.redact import redact_text

    try:
        sys.stderr.write(redact_text(text))
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
