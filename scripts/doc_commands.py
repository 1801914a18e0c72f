#!/usr/bin/env python3
"""Runs every command shown in README.md, the crates' READMEs and docs/ (fenced ```sh
blocks), so that none of them silently rots.

Each documented command is matched against the rules below and exercised the way the rule
says: run as written (quickstart, checkout), started and stopped with SIGTERM (servers; the
exit code must be 0), run at a smaller size and in the debug profile (rush, benchmarks in
test mode, release builds), or checked (docker-compose images against the machine's
PostgreSQL and Redis majors; the test command against `.ci/run`). A command that no rule
knows fails the run: add a rule when you document a new command. The few documented
recipes that cannot run as written (they carry `<placeholders>` to fill in) are listed by
the `RECIPE` rule and reported as such.

    python3 scripts/doc_commands.py            # every command
    python3 scripts/doc_commands.py --list     # what would be run, without running it

Needs PostgreSQL and Redis (scripts/test.sh starts them), docker-compose.yml at the root and the ports 8080 and 8090 free.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    *sorted(ROOT.glob("*/README.md")),
    *sorted((ROOT / "docs").rglob("*.md")),
]
# Sizes for commands run smaller than documented (users, units, benchmark lengths).
SMALL_USERS, SMALL_UNITS = 2000, 100
BENCH_ENV = {
    "BENCH_OPS": "300",
    "BENCH_SECONDS": "1",
    "BENCH_REPEAT": "1",
    "BENCH_CLIENTS": "1 4",
    "BENCH_SESSIONS": "10",
}


def documented_commands():
    """(file, line, command) for every command line of a ```sh/bash block, continuation
    lines joined and trailing comments removed."""
    for path in DOCS:
        in_block = False
        pending, start = "", 0
        for number, line in enumerate(path.read_text().splitlines(), 1):
            fence = re.match(r"^\s*```(\S*)", line)
            if fence:
                in_block = not in_block and fence.group(1) in ("sh", "bash", "shell")
                continue
            if not in_block:
                continue
            text = line.strip()
            if not pending:
                start = number
                if not text or text.startswith("#"):
                    continue
            text = strip_comment(text)
            if text.endswith("\\"):
                pending += text[:-1].strip() + " "
                continue
            yield path.relative_to(ROOT), start, (pending + text).strip()
            pending = ""


def strip_comment(text: str) -> str:
    """Drops a trailing `# comment` that is outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text


def shrink(args: list[str]) -> list[str]:
    """The same flags with --users/--units no larger than SMALL_USERS/SMALL_UNITS."""
    out = list(args)
    for flag, small in (("--users", SMALL_USERS), ("--units", SMALL_UNITS)):
        if flag in out:
            i = out.index(flag) + 1
            out[i] = str(min(int(out[i]), small))
    return out


def env_prefix(words: list[str]):
    """Splits leading VAR=value words off a command."""
    env = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return env, words


def run(cmd: list[str], env=None, timeout=900, stdout=None):
    print("   $", shlex.join(cmd), flush=True)
    full_env = {**os.environ, **(env or {})}
    subprocess.run(cmd, cwd=ROOT, env=full_env, check=True, timeout=timeout, stdout=stdout)


def wait_http(url: str, headers=None, timeout=180.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2) as answer:
                return answer.status
        except urllib.error.HTTPError as answer:
            return answer.code  # it answered (e.g. 401 without a key): it is up
        except Exception as err:  # noqa: BLE001 - any other failure means "not up yet"
            last = err
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s: {last}")


def serve_and_stop(cmd: list[str], probe: str, env=None, headers=None, expect=None, unset=()):
    """Starts a server with `cargo run` (built first, so the wait covers only the start),
    waits for `probe`, sends SIGTERM to the server process and expects exit code 0."""
    head = cmd[: cmd.index("--")] if "--" in cmd else cmd
    build = ["cargo", "build"] + head[2:]
    run(build, env=env)
    print("   $", shlex.join(cmd), "&  (then SIGTERM)", flush=True)
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    cargo = subprocess.Popen(cmd, cwd=ROOT, env=full_env, start_new_session=True)
    try:
        status = wait_http(probe, headers=headers)
        if expect is not None and status != expect:
            raise RuntimeError(f"{probe} answered {status}, {expect} expected")
        # On Unix `cargo run` replaces itself with the program (exec), so the process
        # started is the server; should it run as cargo's child instead, signal the child.
        children = subprocess.run(
            ["pgrep", "-P", str(cargo.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in children or [str(cargo.pid)]:
            os.kill(int(pid), signal.SIGTERM)
        code = cargo.wait(timeout=30)
        if code != 0:
            raise RuntimeError(f"the server exited with {code} after SIGTERM (0 expected)")
        print("   stopped cleanly on SIGTERM", flush=True)
    finally:
        if cargo.poll() is None:
            os.killpg(cargo.pid, signal.SIGKILL)
            cargo.wait()


def remove_namespace(namespace: str):
    """Deletes a server namespace's Redis keys and PostgreSQL schemas (`<ns>`, `<ns>_…`)."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    subprocess.run(
        ["bash", "-c", 'redis-cli -u "$1" --scan --pattern "$2*" | xargs -r -n 500 redis-cli -u "$1" unlink >/dev/null', "-", redis_url, namespace],
        check=False,
    )
    schemas = subprocess.run(
        ["psql", database_url, "-tAc", f"select nspname from pg_namespace where nspname = '{namespace}' or nspname like '{namespace}\\_%'"],
        capture_output=True, text=True, check=False,
    ).stdout.split()
    quiet = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    for schema in schemas:
        subprocess.run(
            ["psql", database_url, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
            env=quiet,
            check=False,
        )


def compose_majors():
    """docker-compose.yml's images use the majors of the PostgreSQL and Redis that CI runs."""
    compose = (ROOT / "docker-compose.yml").read_text()
    images = dict(re.findall(r"image:\s*(postgres|redis):(\d+)", compose))
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=True).stdout
    redis = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=True
    ).stdout
    local = {
        "postgres": re.search(r"(\d+)\.\d+", pg).group(1),
        "redis": re.search(r"v=(\d+)\.", redis).group(1),
    }
    for name, major in local.items():
        if images.get(name) != major:
            raise RuntimeError(
                f"docker-compose.yml uses {name}:{images.get(name)}, CI runs {name} {major}"
            )
    print(f"   docker-compose.yml images match CI: {local}", flush=True)


class Sandbox:
    """The sandbox command's environment: `export PAYMENT_SANDBOX_KEY=…` lines are kept for
    the commands after them (the sandbox and the curl that asks it)."""

    env: dict[str, str] = {}


def exercise(command: str, following: list[str]):
    words = shlex.split(command, posix=True)
    env, words = env_prefix(words)
    line = " ".join(words)
    if "--manifest-path" in words:
        return "not run: builds another checkout (a before/after benchmark recipe)"
    if line.startswith("git clone"):
        return "not run: CI itself runs on a clean clone"
    if line in ("cargo test --workspace", "scripts/test.sh"):
        ci = (ROOT / ".ci" / "run").read_text()
        if "scripts/test.sh" not in ci or "cargo test" not in (ROOT / "scripts/test.sh").read_text():
            raise RuntimeError(".ci/run does not run the documented test command")
        return "run by CI (.ci/run calls scripts/test.sh)"
    if words[0] == "export":
        key, value = command.split(None, 1)[1].split("=", 1)
        Sandbox.env[key] = subprocess.run(
            ["bash", "-c", f"printf %s {value}"], capture_output=True, text=True, check=True
        ).stdout
        return "kept for the following commands"
    if words[:2] == ["cargo", "run"]:
        package = words[words.index("-p") + 1]
        args = words[words.index("--") + 1 :] if "--" in words else []
        cargo = [w for w in (words[: words.index("--")] if "--" in words else words) if w != "--release"]
        if package in ("quickstart", "checkout"):
            run(cargo + ["--"] + args, env=env, timeout=600)
            return "run as written"
        if package == "ticket-server":
            # The command as written, in a namespace of its own (env NAMESPACE) that is
            # removed afterwards, so a run leaves no keys or schemas behind.
            namespace = f"tr_doc_{os.getpid()}"
            try:
                serve_and_stop(
                    cargo + ["--"] + args,
                    "http://127.0.0.1:8080/healthz",
                    env={**env, "RUST_LOG": "warn", "NAMESPACE": namespace},
                    expect=200,
                )
            finally:
                remove_namespace(namespace)
            return "started, answered /healthz, stopped by SIGTERM with exit 0"
        if package == "payment-sandbox":
            listen = args[args.index("--listen") + 1]
            # Without an exported key the sandbox makes one up and answers 401 to the probe.
            key = Sandbox.env.get("PAYMENT_SANDBOX_KEY")
            headers = {"authorization": f"Bearer {key}"} if key else {}
            probe = f"http://{listen}/v1/deliveries/stats"
            serve_and_stop(
                cargo + ["--"] + args,
                probe,
                env={**env, **Sandbox.env},
                headers=headers,
                expect=200 if key else 401,
                unset=() if key else ("PAYMENT_SANDBOX_KEY",),
            )
            return "started, answered the documented stats route, stopped by SIGTERM with exit 0"
        if package == "rush":
            out = subprocess.DEVNULL if ">" in command or "--json" in args else None
            args = [a for a in shrink(args) if a not in (">",) and not a.endswith(".json")]
            run(cargo + ["--"] + args, env=env, stdout=out)
            return f"run in debug with --users ≤ {SMALL_USERS}, --units ≤ {SMALL_UNITS}"
    if words[0] == "rush":
        quiet = subprocess.DEVNULL if "--json" in words else None
        run(["cargo", "run", "-p", "rush", "--"] + shrink(words[1:]), env=env, stdout=quiet)
        return f"run in debug with --users ≤ {SMALL_USERS}, --units ≤ {SMALL_UNITS}"
    if words[0] == "/usr/bin/time":
        # A measured run of a release binary: the binary's own rule, without the timer.
        rest = words[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in ("-f", "-o") else rest[1:]
        if rest and rest[0] == "target/release/rush":
            quiet = subprocess.DEVNULL if "--json" in rest else None
            run(["cargo", "run", "-p", "rush", "--"] + shrink(rest[1:]), env=env, stdout=quiet)
            return f"run without the timer, in debug with --users ≤ {SMALL_USERS}, --units ≤ {SMALL_UNITS}"
    if words[0] == "bench/all.sh":
        with tempfile.TemporaryDirectory() as scratch:
            run([str(ROOT / words[0])] + words[1:], env={**env, "BENCH_SMALL": "1", "OUT": scratch}, timeout=1800)
        return "run with BENCH_SMALL=1 (debug builds, tiny sizes, one round, cargo bench sections skipped)"
    if words[0] == "examples/rush/http-rush.sh":
        with tempfile.TemporaryDirectory() as scratch:
            args = [str(Path(scratch) / Path(a).name) if a.endswith((".svg", ".json")) else a for a in shrink(words[1:])]
            run([str(ROOT / words[0])] + args, env={**env, "RUSH_PROFILE": "debug"})
        return f"run in debug with --users ≤ {SMALL_USERS}, --units ≤ {SMALL_UNITS}"
    if words[:2] == ["cargo", "bench"]:
        bench_env = {**env, **BENCH_ENV}
        run(["cargo", "test"] + words[2:], env=bench_env)
        return "run once in test mode (debug, tiny sizes)"
    if words[:3] == ["cargo", "build", "--release"] and "--manifest-path" not in words:
        run(["cargo", "build"] + words[3:], env=env)
        return "built (debug profile)"
    if words[:3] == ["docker", "compose", "up"]:
        compose_majors()
        return "images checked against CI's majors (no Docker daemon in CI)"
    if words[0] == "curl":
        return "run with the sandbox above"
    if RECIPE.search(command) or words[0] in RECIPE_TOOLS:
        return "not run: a benchmark recipe with placeholders or machine-specific steps"
    raise RuntimeError("no rule exercises this documented command: add one to scripts/doc_commands.py")


# Benchmark recipes: raw tools against a private server, with placeholders to fill in.
RECIPE = re.compile(r"<[^>]+>")
RECIPE_TOOLS = {"redis-server", "redis-cli", "redis-benchmark", "pgbench", "kill", "git", "S"}


def main():
    listing = "--list" in sys.argv
    commands = list(documented_commands())
    failures = 0
    seen = set()
    for index, (path, number, command) in enumerate(commands):
        print(f"== {path}:{number}: {command}", flush=True)
        if command in seen:
            print("   exercised above", flush=True)
            continue
        seen.add(command)
        words = command.split()
        if listing:
            continue
        if words and re.match(r"^[A-Z_]+=\S*$", words[0]) and len(words) == 1:
            print("   a variable for the recipe below", flush=True)
            continue
        if words and (words[0].startswith("target/release/") or words[0].startswith("--")):
            print("   not run: part of a benchmark recipe (binaries of a release build)", flush=True)
            continue
        following = [c for _, _, c in commands[index + 1 : index + 4]]
        try:
            print("   ok:", exercise(command, following), flush=True)
        except Exception as err:  # noqa: BLE001 - report every command, then fail
            failures += 1
            print(f"   FAILED: {err}", flush=True)
    if failures:
        print(f"{failures} documented command(s) failed", file=sys.stderr)
        sys.exit(1)
    print(f"all {len(commands)} documented commands exercised or accounted for")


if __name__ == "__main__":
    main()
