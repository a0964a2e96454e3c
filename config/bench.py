"""What the benchmark commands (`manage.py bench_audiences`, `bench_trigger`, `bench_send`) share: a PostgreSQL
database of their own, made if missing, and running `manage.py` again in a child process on it; the environment
of the processes they start, and stopping them all; the CPU each group of processes uses, read from /proc;
profiles made in SQL and an uploaded list of them.

Nothing here imports the apps at module level (bench_audiences imports it, and the apps are in layers)."""

import base64
import bisect
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_DATABASE_MARK = "CAMPAIGNS_BENCH_DATABASE"  # set by run_in_bench_database: the database the child may empty


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def create_database(url: str) -> None:
    """Create the database `url` names on its server, unless it exists."""
    import psycopg
    from psycopg import sql

    name = database_name(url)
    server = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(server.replace("postgresql://", "postgres://", 1), autocommit=True) as server_connection:
        exists = server_connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            server_connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def bench_database(*, command: str, url: str | None, default_name: str) -> str:
    """The PostgreSQL database a benchmark runs in: `url`, else `default_name` on DATABASE_URL's server. Refused
    (CommandError) when it is not PostgreSQL or is the database the settings use; created if missing."""
    from django.core.management.base import CommandError

    url = url or urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path=f"/{default_name}"))
    if not url.startswith(("postgres://", "postgresql://")):
        raise CommandError(
            f"{command} measures PostgreSQL only: {url!r} is not a PostgreSQL URL. "
            f"Pass --database-url postgres://user@host:5432/{default_name}."
        )
    if database_name(url) == settings.DATABASES["default"]["NAME"]:
        raise CommandError("Refusing to run in the database the settings use: pass --database-url of another.")
    create_database(url)
    return url


def manage(*arguments: str) -> list[str]:
    """The command line of `manage.py <arguments>` with this interpreter."""
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), *arguments]


def environment(database_url: str, redis_url: str) -> dict:
    """The environment of every process of a run: its database and Redis, DEBUG off (as in production), loopback
    hosts, a relay on 127.0.0.1 allowed. A benchmark's database holds no secrets: throwaway keys stand in."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CHANNELS_ALLOW_PRIVATE_NETWORKS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
        env["SECRET_KEY"] = secrets.token_urlsafe(50)
    if not env.get("FIELD_ENCRYPTION_KEYS") and not env.get("FIELD_ENCRYPTION_KEYS_FILE"):
        env["FIELD_ENCRYPTION_KEYS"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return env


def run_in_bench_database(command: str, database_url: str, redis_url: str, arguments: list[str]) -> int:
    """Run `manage.py <command> --in-bench-database <arguments>` in the benchmark's environment (its own database
    and Redis): the exit status."""
    env = {**environment(database_url, redis_url), BENCH_DATABASE_MARK: database_name(database_url)}
    completed = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        manage(command, "--in-bench-database", *arguments), env=env, check=False
    )
    return completed.returncode


def refuse_unless_bench_database() -> None:
    """CommandError unless this process was started by run_in_bench_database on the database it uses: a benchmark
    empties tables, and `--in-bench-database` typed by hand must not do it to the settings' own database."""
    from django.core.management.base import CommandError

    if os.environ.get(BENCH_DATABASE_MARK) != settings.DATABASES["default"]["NAME"]:
        raise CommandError("--in-bench-database is for the benchmark's own process: run the command without it.")


def fresh_directory(name: str) -> Path:
    """VAR_DIR/<name>, emptied of the files of a previous run."""
    directory = Path(settings.VAR_DIR) / name
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        if old.is_file():
            old.unlink()
    return directory


# --- Processes ---------------------------------------------------------------------------------------------------


def _stats():
    """(pid, comm, the fields after comm) of every process, from /proc/<pid>/stat."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            data = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        yield int(entry.name), data[data.index("(") + 1 : data.rindex(")")], data[data.rindex(")") + 2 :].split()


def proc_stats():
    """(pid, comm, ppid, pgid, state, cpu seconds) of every process."""
    for pid, comm, rest in _stats():
        yield pid, comm, int(rest[1]), int(rest[2]), rest[0], (int(rest[11]) + int(rest[12])) / _TICKS


def processes_in_groups(pgids: set[int]) -> list[str]:
    return [f"{pid} {comm}" for pid, comm, _, pgid, state, _ in proc_stats() if pgid in pgids and state != "Z"]


def children_of(pid: int) -> list[int]:
    return sorted(child for child, _, ppid, _, _, _ in proc_stats() if ppid == pid)


def start_group(command: list[str], *, env: dict, log: Path) -> subprocess.Popen:
    """Start `command` in a session of its own, its output to `log`: the whole group (a pool's or a server's
    children too) can then be stopped by its id."""
    with open(log, "ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=settings.BASE_DIR
        )


def stop_groups(processes: dict[str, subprocess.Popen], say: Callable[[str], None], grace: float = 30) -> list[str]:
    """SIGTERM to each process started, as a process manager would (gunicorn and the worker pools stop their
    children); then to any of their groups still alive, and SIGKILL as a last resort. Returns what is left."""
    groups = {name: process.pid for name, process in processes.items()}
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    forced = []
    for signum, wait in ((None, grace), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if signum is not None:
            for name, pgid in groups.items():
                if processes_in_groups({pgid}):
                    forced.append(f"{name} ({signum.name})")
                    try:
                        os.killpg(pgid, signum)
                    except ProcessLookupError:
                        pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and processes_in_groups(set(groups.values())):
            time.sleep(0.2)
        for process in processes.values():
            if process.poll() is None:
                try:
                    process.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
        if not processes_in_groups(set(groups.values())):
            break
    left = processes_in_groups(set(groups.values()))
    how = f"; signalled by group: {', '.join(forced)}" if forced else " (each stopped on its own SIGTERM)"
    say(f"stopped {', '.join(groups) or 'nothing'}{how}; left in their groups: {left or 'none'}")
    return left


# --- CPU ------------------------------------------------------------------------------------------------------------
# From /proc, as the kernel accounts it (utime + stime, in clock ticks): what each group of processes ran on a core.
# Unlike a sampling profiler's figures, a thread blocked on a socket or a lock counts nothing.

# The snapshot's entries that are not groups of processes.
_MACHINE = ("machine busy", "machine all")


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, every core together: /proc/stat's first line, busy
    being all but idle and iowait."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user already)
    return (total - fields[3] - fields[4]) / _TICKS, total / _TICKS


def _postgres_of_this_database(pid: int, database: str) -> bool:
    """A backend of the benchmark's database, or one of the server's own processes (postmaster, WAL writer,
    checkpointer, autovacuum...); not the backends of other databases (other work on the same server)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    is_backend = "(" in title or "[local]" in title
    return not is_backend or f" {database} " in title


def cpu_snapshot(
    groups: dict,
    database: str,
    *,
    commands: dict[str, str] | None = None,
    waited_children: str | None = None,
    own: str | None = None,
) -> dict:
    """CPU seconds used so far by each process that counts, keyed by (group, pid):

    - `groups`: name -> a process started in a session of its own (start_group), or a list of them: every process
      of its group, with the CPU of the children each has waited for (cutime + cstime: an RQ work-horse forked for
      a job and ended since counts in its worker); a process whose /proc comm is a key of `commands` counts in the
      group it names instead (smtp-sink, started by the sink's counter);
    - "PostgreSQL": the server's own processes and the backends of `database`, not those of other databases;
      "Redis": redis-server;
    - `waited_children`: the children this process has waited for (getrusage: wrk, run to its end);
      `own`: this process.

    With the whole machine's busy and total seconds, and the time (monotonic clock)."""
    leaders = {}
    for name, started in groups.items():
        for process in started if isinstance(started, list | tuple) else [started]:
            leaders[process.pid] = name
    commands = commands or {}
    me = os.getpid()
    used: dict = {}
    kept: set = set()
    for pid, comm, rest in _stats():
        seconds = (int(rest[11]) + int(rest[12])) / _TICKS
        pgid = int(rest[2])
        if pgid in leaders:
            key = (commands.get(comm, leaders[pgid]), pid)
            used[key] = seconds + (int(rest[13]) + int(rest[14])) / _TICKS
            if pid == pgid:
                # Its parent is outside the group: once it is gone, its figures are kept, as no one counts them.
                kept.add(key)
        elif comm == "postgres" and _postgres_of_this_database(pid, database):
            used[("PostgreSQL", pid)] = seconds  # a backend gone keeps its figures (the postmaster's cutime would
            kept.add(("PostgreSQL", pid))  # hold every database's backends)
        elif comm.startswith("redis-server"):
            used[("Redis", pid)] = seconds
            kept.add(("Redis", pid))
        elif own and pid == me:
            used[(own, pid)] = seconds
    if waited_children:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        used[(waited_children, 0)] = children.ru_utime + children.ru_stime
    busy, total = machine_cpu()
    return {"processes": used, "kept": kept, "machine busy": busy, "machine all": total, "at": time.monotonic()}


def _carried(before: dict, after: dict) -> dict:
    """`after`, with the figures of the processes gone since `before` whose CPU no one else counts (a group's first
    process, a PostgreSQL backend): such a process loses only its last moments, not everything it used."""
    processes = dict(after["processes"])
    kept = set(after["kept"])
    for key in before["kept"]:
        if key not in processes:
            processes[key] = before["processes"][key]
            kept.add(key)
    return {**after, "processes": processes, "kept": kept}


def _totals(snapshot: dict) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (group, _), seconds in snapshot["processes"].items():
        totals[group] += seconds
    for name in _MACHINE:
        totals[name] = snapshot[name]
    return dict(totals)


def _difference(first: dict[str, float], last: dict[str, float], seconds: float) -> dict[str, float]:
    used = {group: max(0.0, value - first.get(group, 0.0)) for group, value in last.items() if group not in _MACHINE}
    busy = last["machine busy"] - first["machine busy"]
    every = last["machine all"] - first["machine all"]
    return {
        **used,
        "rest of the machine": max(0.0, busy - sum(used.values())),
        "machine busy": busy,
        "machine idle share": 1 - busy / every if every > 0 else float("nan"),
        "seconds": seconds,
    }


def cpu_seconds(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two snapshots by each group; "rest of the machine": the machine's busy seconds that
    are none of theirs (other work, the kernel's own); "machine busy"; "machine idle share" (of every core's time);
    "seconds": the wall clock between the two."""
    return _difference(_totals(before), _totals(_carried(before, after)), after["at"] - before["at"])


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """As cpu_seconds, in cores (CPU seconds a second); "machine idle share" as it is."""
    used = cpu_seconds(before, after)
    seconds = used.pop("seconds")
    return {name: value if name == "machine idle share" else value / seconds for name, value in used.items()}


class CpuSampler:
    """Snapshots (`take`, which returns a cpu_snapshot) every `interval` seconds in a thread during a `with` block,
    each carrying the figures of the processes gone since; `seconds_between(start, end)`: the CPU each group used
    between two moments of the monotonic clock (a window measured elsewhere: at the sink), each figure interpolated
    between the snapshots around the moment."""

    def __init__(self, take: Callable[[], dict], interval: float = 0.2):
        self.take, self.interval = take, interval
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._last: dict | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu sampler", daemon=True)

    def _sample(self) -> None:
        snapshot = self.take()
        if self._last is not None:
            snapshot = _carried(self._last, snapshot)
        self._last = snapshot
        self.samples.append((snapshot["at"], _totals(snapshot)))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "CpuSampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _at(self, moment: float) -> dict[str, float]:
        times = [at for at, _ in self.samples]
        index = bisect.bisect_left(times, moment)
        if index == 0:
            return self.samples[0][1]
        if index == len(times):
            return self.samples[-1][1]
        (start, first), (end, last) = self.samples[index - 1], self.samples[index]
        share = (moment - start) / (end - start) if end > start else 1.0
        return {name: first.get(name, 0.0) + (value - first.get(name, 0.0)) * share for name, value in last.items()}

    def seconds_between(self, start: float, end: float) -> dict[str, float]:
        """As cpu_seconds, between `start` and `end` (clamped to the time sampled)."""
        return _difference(self._at(start), self._at(end), end - start)


# --- Data ---------------------------------------------------------------------------------------------------------

FIRST_NAME_ONLY = "jsonb_build_object('first_name', 'Reader ' || g)"


def ensure_profiles(prefix: str, domain: str, count: int, *, consent: bool, attributes: str = FIRST_NAME_ONLY) -> int:
    """Profiles <prefix><n>@<domain> for n < count, with their email identity (and email consent), those missing;
    `attributes` is the SQL of each one's attributes, of `g`, its n. Returns how many were made."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH wanted AS (
                SELECT g, %(prefix)s || g || '@' || %(domain)s AS email
                FROM generate_series(0, %(count)s - 1) AS g
                WHERE NOT EXISTS (
                    SELECT 1 FROM audiences_identity i
                    WHERE i.namespace = 'email' AND i.value = %(prefix)s || g || '@' || %(domain)s
                )
            ), made AS (
                INSERT INTO audiences_profile (email, phone, attributes, timezone, locale, created_at, updated_at)
                SELECT email, '', {attributes}, 'UTC', '', now(), now()
                FROM wanted
                RETURNING id, email
            ), identities AS (
                INSERT INTO audiences_identity (profile_id, namespace, value)
                SELECT id, 'email', email FROM made
                RETURNING profile_id
            ), consents AS (
                INSERT INTO audiences_consent (profile_id, channel, state, source, updated_at)
                SELECT profile_id, 'email', 'opted_in', 'bench', now() FROM identities WHERE %(consent)s
            )
            SELECT count(*) FROM identities
            """,  # noqa: S608 - `attributes` is the caller's constant SQL
            {"prefix": prefix, "domain": domain, "count": count, "consent": consent},
        )
        return cursor.fetchone()[0]


def uploaded_list(name: str, prefix: str, domain: str, count: int):
    """An uploaded list (an audience) of the profiles <prefix><n>@<domain> for n < count."""
    from django.db import connection

    from audiences.models import Audience, AudienceMember

    members, _ = Audience.objects.get_or_create(name=name, defaults={"kind": Audience.Kind.UPLOADED})
    if AudienceMember.objects.filter(audience=members).count() != count:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audiences_audiencemember WHERE audience_id = %s", [members.pk])
            cursor.execute(
                """
                INSERT INTO audiences_audiencemember (audience_id, profile_id)
                SELECT %(audience)s, i.profile_id
                FROM generate_series(0, %(count)s - 1) AS g
                JOIN audiences_identity i ON i.namespace = 'email' AND i.value = %(prefix)s || g || '@' || %(domain)s
                """,
                {"audience": members.pk, "count": count, "prefix": prefix, "domain": domain},
            )
    return members


def wrk_figures(view: str, summary: dict) -> dict:
    """One window's figures from the JSON summary the benchmarks' wrk scripts print (`done` hook)."""
    duration = summary["duration_us"] / 1e6
    return {
        "view": view,
        "requests": summary["requests"],
        "seconds": duration,
        "rps": summary["requests"] / duration,
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "max_ms": summary["max_us"] / 1000,
        "errors": sum(summary[name] for name in ("connect", "read", "write", "status", "timeout")),
    }
