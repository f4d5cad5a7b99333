"""Replication benchmark: one artifact to three regions, against ``cp`` in the same run.

Scenarios (each in a child process of its own, so its peak memory is its own):

    local          local folder -> 3 local folders (kernel copy, hash of the copy, fsyncs)
    s3-server-side S3 bucket -> 3 buckets on the same endpoint (server-side copy, read back)
    s3-streaming   local folder -> 3 buckets (streamed multipart upload, read back)

S3 is a moto server started by this script as a separate process (``moto_server``
on 127.0.0.1), so its memory is not counted as ours. Every scenario also times a
plain ``cp`` of the same bytes, three times (once per region), into the same
working directory, and reports replication throughput / cp throughput. Peak
memory is the child's ``ru_maxrss`` (``cp`` runs in grandchildren and is not in it).

Usage::

    python bench/replication_bench.py [--size-mib 1024] [--rounds 3]
        [--scenarios local,s3-server-side,s3-streaming] [--workdir DIR] [--out bench/results]

Writes ``replication.json`` and ``replication.md`` into ``--out``. Needs about
8 x size of free disk in ``--workdir`` (default: a temporary folder, removed after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results"
MIB = 1024 * 1024
REGIONS = ("us-east", "eu-west", "ap-south")
SCENARIOS = ("local", "s3-server-side", "s3-streaming")
MODEL = "bench/fraud-detector"
TARGET_RATIO = 0.5
TARGET_PEAK_MIB = 200


# ---------------------------------------------------------------- child: one scenario


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _write_random(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for index in range(size // MIB):
            # A fresh prefix per MiB: no two blocks alike, no compression or dedup shortcut.
            out.write(index.to_bytes(8, "little") + block[8:])
        out.write(os.urandom(size % MIB))


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def _cp_three(source: Path, into: Path) -> float:
    """``cp`` the file once per region, one after another (what a person would type)."""
    into.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for region in REGIONS:
        subprocess.run(["cp", str(source), str(into / region)], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(into)
    return elapsed


def _cp_three_synced(source: Path, into: Path) -> float:
    """The same, then ``sync``: what it costs for the copies to be on disk."""
    into.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for region in REGIONS:
        subprocess.run(["cp", str(source), str(into / region)], check=True)
    subprocess.run(["sync"], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(into)
    return elapsed


@contextmanager
def _moto_server(workdir: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = Path(sys.executable).with_name("moto_server")
    env = {**os.environ, "TMPDIR": str(workdir)}  # moto spools large objects to temp files
    log = (workdir / "moto.log").open("wb")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def run_scenario(scenario: str, size: int, rounds: int, workdir: Path) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from registry.artifacts import LocalArtifactStore
    from registry.models import VersionCreate
    from registry.store.sql import SqlStore

    workdir.mkdir(parents=True, exist_ok=True)
    original = workdir / "model.bin"
    _write_random(original, size)
    store = SqlStore(f"sqlite:///{workdir / 'registry.db'}", actor="bench")
    local_source = LocalArtifactStore(workdir / "artifacts")
    ref = local_source.put_file(original)
    original.unlink()
    store.register(MODEL, ref, VersionCreate())
    bench = _Rounds(store, workdir, workdir / "artifacts" / "sha256" / ref.sha256[:2] / ref.sha256)
    result: dict[str, Any] = {
        "scenario": scenario,
        "size_bytes": size,
        "regions": len(REGIONS),
        "rss_after_setup_mib": round(_rss_mib(), 1),
    }
    if scenario == "local":
        result["rounds"] = bench.run(
            rounds,
            lambda i: {r: LocalArtifactStore(workdir / f"round{i}" / r) for r in REGIONS},
            local_source,
        )
    else:
        from registry.artifacts.s3 import S3ArtifactStore

        with _moto_server(workdir) as endpoint:
            client = _slow_server_client(endpoint)
            source: Any = local_source
            if scenario == "s3-server-side":
                client.create_bucket(Bucket="source")
                source = S3ArtifactStore("source", "models", endpoint_url=endpoint, client=client)
                result["upload_source_s"], _ = _timed(lambda: source.put_file(bench.source_path))
            result["rounds"] = bench.run(
                rounds, lambda i: _buckets(client, endpoint, f"r{i}"), source
            )
    store.close()
    result["peak_rss_mib"] = round(_peak_mib(), 1)
    return result


def _slow_server_client(endpoint: str) -> Any:
    """``make_client``'s settings with a longer read timeout, which moto needs: it
    assembles a 1 GiB multipart object in one Python call, and three at once take longer
    than the registry's 30 s (the first full run timed out there)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=3,
        read_timeout=600,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def _buckets(client: Any, endpoint: str, label: str) -> dict[str, Any]:
    from registry.artifacts.s3 import S3ArtifactStore

    stores: dict[str, Any] = {}
    for region in REGIONS:
        client.create_bucket(Bucket=f"{region}-{label}")
        stores[region] = S3ArtifactStore(
            f"{region}-{label}", "models", endpoint_url=endpoint, client=client
        )
    return stores


class _Rounds:
    """cp and replication of the same bytes, round after round, each into empty regions."""

    def __init__(self, store: Any, workdir: Path, source_path: Path) -> None:
        self.store = store
        self.workdir = workdir
        self.source_path = source_path

    def run(
        self, rounds: int, make_regions: Callable[[int], dict[str, Any]], source: Any
    ) -> list[dict[str, float]]:
        return [self.one(index, rounds, make_regions(index), source) for index in range(rounds)]

    def one(
        self, index: int, rounds: int, regions: dict[str, Any], source: Any
    ) -> dict[str, float]:
        from registry.release_models import ReplicaState
        from registry.replication import replicate, verify_replicas

        def replicate_all() -> Any:
            return replicate(self.store, source, regions, MODEL, 1, retries=1)

        timings: dict[str, float] = {}
        replicas: list[Any] = []
        # Alternate which goes first, so neither always gets the warmer cache.
        for step in ["cp", "replicate"] if index % 2 == 0 else ["replicate", "cp"]:
            # Start each step with nothing dirty in the page cache: otherwise whichever
            # runs second pays for writing back the first one's bytes.
            subprocess.run(["sync"], check=True)
            if step == "cp":
                timings["cp_s"] = _cp_three(self.source_path, self.workdir / "cp")
            else:
                timings["replicate_s"], replicas = _timed(replicate_all)
        bad = [r for r in replicas if r.state is not ReplicaState.VERIFIED]
        if bad:
            raise RuntimeError(f"replication failed: {bad}")
        if index == rounds - 1:
            timings["rerun_s"], _ = _timed(replicate_all)
            timings["verify_s"], _ = _timed(lambda: verify_replicas(self.store, regions, MODEL, 1))
            timings["cp_sync_s"] = _cp_three_synced(self.source_path, self.workdir / "cp")
        _drop(regions)
        return timings


def _drop(regions: dict[str, Any]) -> None:
    """Free the disk (or the moto server's temp files) the round used."""
    from registry.artifacts import LocalArtifactStore

    for target in regions.values():
        if isinstance(target, LocalArtifactStore):
            shutil.rmtree(target.root, ignore_errors=True)
        else:
            listed = target.client.list_objects_v2(Bucket=target.bucket)
            for item in listed.get("Contents", []):
                target.client.delete_object(Bucket=target.bucket, Key=item["Key"])
            target.client.delete_bucket(Bucket=target.bucket)


# ---------------------------------------------------------------- parent: report


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    total = result["size_bytes"] * result["regions"]
    cp = statistics.median(r["cp_s"] for r in result["rounds"])
    rep = statistics.median(r["replicate_s"] for r in result["rounds"])
    last = result["rounds"][-1]
    ratios = [r["cp_s"] / r["replicate_s"] for r in result["rounds"]]
    return {
        "scenario": result["scenario"],
        "bytes_total": total,
        "cp_mib_s": total / MIB / cp,
        "replicate_mib_s": total / MIB / rep,
        "ratio": statistics.median(ratios),  # per round (same conditions), then the median
        "ratios": [round(x, 2) for x in ratios],
        "ratio_vs_cp_sync": last["cp_sync_s"] / last["replicate_s"],
        "cp_s": cp,
        "replicate_s": rep,
        "cp_sync_s": last["cp_sync_s"],
        "rerun_s": last["rerun_s"],
        "verify_s": last["verify_s"],
        "peak_rss_mib": result["peak_rss_mib"],
        "rss_after_setup_mib": result["rss_after_setup_mib"],
        "upload_source_s": result.get("upload_source_s"),
        "rounds": len(result["rounds"]),
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "git": commit,
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(
            ["df", "-T", str(path)], capture_output=True, text=True, check=True
        ).stdout.splitlines()[-1]
        return out.split()[1]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Replication benchmark results",
        "",
        "Produced by `bench/replication_bench.py`: one artifact of "
        f"{report['size_mib']} MiB replicated to {len(REGIONS)} regions, against `cp` of the "
        "same bytes (once per region, one after another) into the same working directory, "
        "in the same run. Figures are medians over the rounds.",
        "",
        f"{report['started']} · git {m['git']} · {m['cpus']} CPUs ({m['cpu']}) · "
        f"{m['memory_gib']} GiB RAM · Linux {m['kernel']} · Python {m['python']} · "
        f"workdir on {report['filesystem']} · load average (1/5/15 min) {m['load_avg']} at "
        f"start, {report['load_avg_end']} at end",
        "",
        "| scenario | total bytes | cp MiB/s | replicate MiB/s | ratio (target >= "
        f"{TARGET_RATIO}) | peak RSS MiB (target < {TARGET_PEAK_MIB}) | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    extra = [
        "",
        "| scenario | ratio per round | ratio vs cp + sync (last round) |",
        "| --- | --- | ---: |",
    ]
    for s in report["summaries"]:
        ok_ratio = s["ratio"] >= TARGET_RATIO
        ok_mem = s["peak_rss_mib"] < TARGET_PEAK_MIB
        if s["scenario"] == "local":
            verdict = "PASS" if ok_ratio and ok_mem else "FAIL"
        else:  # the throughput target is stated for local replication only
            verdict = ("PASS" if ok_mem else "FAIL") + " (memory; ratio for information)"
        lines.append(
            f"| {s['scenario']} | {s['bytes_total'] / MIB:.0f} MiB | {s['cp_mib_s']:.0f} | "
            f"{s['replicate_mib_s']:.0f} | {s['ratio']:.2f} | {s['peak_rss_mib']:.0f} | {verdict} |"
        )
        extra.append(
            f"| {s['scenario']} | {', '.join(f'{r:.2f}' for r in s['ratios'])} | "
            f"{s['ratio_vs_cp_sync']:.2f} |"
        )
    lines += extra
    lines += [
        "",
        "| scenario | cp s | cp + sync s | replicate s | re-run (nothing to copy) s | "
        "verify (re-read every region) s | RSS after setup MiB | source upload s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in report["summaries"]:
        upload = f"{s['upload_source_s']:.1f}" if s["upload_source_s"] is not None else "-"
        lines.append(
            f"| {s['scenario']} | {s['cp_s']:.2f} | {s['cp_sync_s']:.2f} | "
            f"{s['replicate_s']:.2f} | {s['rerun_s']:.3f} | {s['verify_s']:.2f} | "
            f"{s['rss_after_setup_mib']:.0f} | {upload} |"
        )
    lines += ["", "## Notes", "", *report["notes"], ""]
    return "\n".join(lines)


NOTES = [
    "- Replication does more than `cp`: every copy is hashed (sha256) from the target "
    "and fsynced before its row says verified, and three rows are written to the "
    "registry. `cp` does not sync; the `cp + sync` column shows what durability costs it.",
    "- local: `sendfile` into a temporary file beside the final one, sha256 of that file "
    "(the read-back), fsync, rename, fsync of the folder (`write_verified`, the one path "
    "by which bytes land on a local disk); the three regions run in parallel threads. The "
    "source file is in the page cache for both `cp` and replication (rounds alternate "
    "which runs first); the read-back of a just-written file is also served from the "
    "page cache.",
    "- s3-server-side: `copy` (multipart UploadPartCopy) inside the moto server, then "
    "each region's object is read back over HTTP and hashed. s3-streaming: the local "
    "file is hashed, uploaded from its path straight to each bucket's content key "
    "(multipart, parts read as they are sent), then read back. moto is a single Python "
    "process: these figures measure moto more than the registry; the ratio is given "
    "for information (the throughput target is for local replication).",
    "- Peak RSS is the scenario process's own high-water mark (`ru_maxrss`), imports "
    "(SQLAlchemy, pydantic, boto3) included; the moto server and `cp` are other "
    "processes. Copies stream in 1 MiB chunks (S3 transfers: at most 4 parts of 8 MiB "
    "buffered per upload), so it does not grow with the artifact size.",
]


def _keep_earlier(report: dict[str, Any], path: Path, ran: list[str]) -> None:
    """Keep the earlier results of scenarios this run skipped (S3 ones take minutes)."""
    if not path.exists():
        return
    earlier = json.loads(path.read_text())
    for result in earlier.get("results", []):
        if result["scenario"] not in ran and result["scenario"] in SCENARIOS:
            report["results"].append(result)
            report["summaries"].append(summarise(result))
            report["notes"] = [
                *report["notes"],
                f"- {result['scenario']}: from the run of {earlier['started']} "
                f"(load average {earlier['machine']['load_avg']}).",
            ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--s3-rounds", type=int, default=1)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = args.size_mib * MIB

    if args.child:
        print(json.dumps(run_scenario(args.child, size, args.rounds, args.workdir)))
        return

    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="replication-bench-"))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    report: dict[str, Any] = {
        "started": started,
        "size_mib": args.size_mib,
        "machine": machine(),
        "filesystem": _filesystem(base if base.exists() else base.parent),
        "results": [],
        "summaries": [],
        "notes": NOTES,
    }
    try:
        for scenario in scenarios:
            rounds = args.rounds if scenario == "local" else args.s3_rounds
            workdir = base / scenario
            print(f"{scenario}: {args.size_mib} MiB x {len(REGIONS)} regions, {rounds} round(s)")
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    scenario,
                    "--size-mib",
                    str(args.size_mib),
                    "--rounds",
                    str(rounds),
                    "--workdir",
                    str(workdir),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            shutil.rmtree(workdir, ignore_errors=True)
            if child.returncode != 0:
                raise SystemExit(f"{scenario} failed:\n{child.stderr}")
            result = json.loads(child.stdout.splitlines()[-1])
            summary = summarise(result)
            report["results"].append(result)
            report["summaries"].append(summary)
            print(
                f"  cp {summary['cp_mib_s']:.0f} MiB/s, replicate {summary['replicate_mib_s']:.0f} "
                f"MiB/s, ratio {summary['ratio']:.2f}, peak RSS {summary['peak_rss_mib']:.0f} MiB"
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    _keep_earlier(report, args.out / "replication.json", scenarios)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "replication.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "replication.md").write_text(markdown(report))
    print(f"wrote {args.out / 'replication.md'}")


if __name__ == "__main__":
    main()
