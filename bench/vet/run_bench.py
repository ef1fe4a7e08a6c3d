"""Evaluate `impextech vet` against a labelled corpus, with GuardDog as the peer, in one run.

    .venv/bin/python bench/vet/run_bench.py [--budget 2400] [--no-guarddog] [--write-docs]

Malicious: the inert repositories described in bench/vet/cases/*.toml.
Benign: npm packages (`npm pack`), PyPI source distributions (`pip download`) and project
scaffolds, named in bench/vet/corpus.toml; the downloaded archives are cached in
bench/vet/corpus-cache/ (gitignored). Everything is unpacked into a temporary work folder outside
the repository (so no linter or type checker ever walks it) and removed at the end. GuardDog is
installed into its own throwaway venv in that folder. The run stops by itself when its time budget
is spent; what was not measured is reported as such.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from impextech.vet.engine import scan_path
from impextech.vet.model import Verdict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = HERE / "corpus-cache"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- vet:begin -->", "<!-- vet:end -->"
VENV_BIN = Path(sys.executable).parent
WORK = Path(tempfile.gettempdir())  # replaced by a fresh folder in main()


@dataclass
class Target:
    name: str
    path: Path
    label: int  # 1 malicious, 0 benign
    group: str  # malicious / npm / pypi / scaffold
    ecosystem: str  # for GuardDog: npm or pypi
    technique: str = ""
    heldout: bool = False


@dataclass
class Outcome:
    flagged: bool
    seconds: float
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0


def log(msg: str) -> None:
    print(f"[bench-vet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- malicious corpus ------------------------------------------------------------------------


def _commit(repo: Repo, files: dict[str, bytes], parents: list[ObjectID], msg: str) -> ObjectID:
    store = repo.object_store
    tree_nodes: dict[str, Any] = {}
    for path, data in files.items():
        node = tree_nodes
        *dirs, name = path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = data

    def write(node: dict[str, Any]) -> ObjectID:
        tree = Tree()
        for name, value in node.items():
            if isinstance(value, bytes):
                blob = Blob.from_string(value)
                store.add_object(blob)
                tree.add(name.encode(), 0o100644, blob.id)
            else:
                tree.add(name.encode(), 0o040000, write(value))
        store.add_object(tree)
        return tree.id

    commit = Commit()
    commit.tree = write(tree_nodes)
    commit.parents = parents
    commit.author = commit.committer = b"Bench <bench@example.invalid>"
    commit.author_time = commit.commit_time = 1_700_000_000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = msg.encode()
    store.add_object(commit)
    return commit.id


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def materialise_case(case: dict[str, Any], dest_dir: Path) -> Path:
    name = str(case["name"])
    kind = str(case.get("kind", "dir"))
    files = {str(k): str(v).encode() for k, v in dict(case.get("files", {})).items()}
    files |= {str(k): bytes.fromhex(str(v)) for k, v in dict(case.get("hex_files", {})).items()}
    branch = {str(k): str(v).encode() for k, v in dict(case.get("branch_files", {})).items()}
    target = dest_dir / name
    if target.exists():
        shutil.rmtree(target)
    for suffix in (".zip", ".tar.gz"):
        (dest_dir / f"{name}{suffix}").unlink(missing_ok=True)
    if kind == "zip":
        out = dest_dir / f"{name}.zip"
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, data in files.items():
                zf.writestr(rel, data)
        return out
    if kind == "tar":
        out = dest_dir / f"{name}.tar.gz"
        with tarfile.open(out, "w:gz") as tf:
            for rel, data in files.items():
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            for rel, link in dict(case.get("symlinks", {})).items():
                info = tarfile.TarInfo(str(rel))
                info.type = tarfile.SYMTYPE
                info.linkname = str(link)
                tf.addfile(info)
        return out
    target.mkdir(parents=True)
    _write_tree(target, files)
    if kind in ("git-branch", "git-stash", "git-config"):
        repo = Repo.init(str(target))
        with repo:
            main = _commit(repo, files, [], "initial")
            repo.refs[Ref(b"refs/heads/master")] = main
            if kind == "git-branch":
                repo.refs[Ref(b"refs/heads/feature/api")] = _commit(
                    repo, files | branch, [main], "api"
                )
            elif kind == "git-stash":
                index = _commit(repo, files, [main], "index on master")
                repo.refs[Ref(b"refs/stash")] = _commit(
                    repo, files | branch, [main, index], "WIP on master"
                )
            else:
                (target / ".git" / "config").write_text(str(case["git_config"]["text"]))
    return target


def malicious_targets() -> list[Target]:
    dest = WORK / "malicious"
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Target] = []
    for spec in sorted((HERE / "cases").glob("*.toml")):
        for case in tomllib.loads(spec.read_text())["case"]:
            path = materialise_case(case, dest)
            names = set(dict(case.get("files", {})))
            eco = (
                "pypi" if any(n.endswith(".py") or n == "pyproject.toml" for n in names) else "npm"
            )
            out.append(Target(case["name"], path, 1, "malicious", eco, str(case["technique"])))
    return out


# --- benign corpus ---------------------------------------------------------------------------


def _safe_extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")


def _safe_extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            if name.startswith("/") or ".." in name.split("/") or info.is_dir():
                continue
            out = dest / name
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as fh:
                shutil.copyfileobj(src, fh)


def _npm_tgz_name(pkg: str) -> str:
    """The file name `npm pack` gives a package's tarball, without version and suffix."""
    return pkg.lstrip("@").replace("/", "-")


def _npm_dir_name(pkg: str) -> str:
    """A folder name that keeps `@scope/name` apart from an unscoped `scope-name`."""
    return pkg.replace("/", "+")


def fetch_npm(names: list[str], deadline: Deadline) -> list[Target]:
    out_dir = WORK / "npm"
    out_dir.mkdir(parents=True, exist_ok=True)

    def tgz_dir(name: str) -> Path:
        # `npm pack @scope/name` and `npm pack scope-name` write the same file name.
        return CACHE / "npm-tgz" / ("scoped" if name.startswith("@") else "")

    def tarball(name: str) -> Path | None:
        prefix = _npm_tgz_name(name) + "-"
        folder = tgz_dir(name)
        found = sorted(
            t
            for t in folder.glob("*.tgz")
            if t.name.startswith(prefix) and t.name[len(prefix)][:1].isdigit()
        )
        return found[-1] if found else None

    for scoped in (False, True):
        missing = [n for n in names if n.startswith("@") is scoped and tarball(n) is None]
        folder = tgz_dir("@x/y" if scoped else "x")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(0, len(missing), 15):
            if deadline.left() < 60:
                log("npm fetch stopped: time budget")
                break
            batch = missing[i : i + 15]
            log(f"npm pack {len(batch)} packages")
            try:
                subprocess.run(
                    ["npm", "pack", "--silent", "--ignore-scripts", *batch],
                    cwd=folder,
                    capture_output=True,
                    timeout=240,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                log("npm pack batch timed out")
    targets: list[Target] = []
    for name in names:
        archive = tarball(name)
        if archive is None:
            continue
        dest = out_dir / _npm_dir_name(name)
        if not dest.exists():
            tmp = out_dir / (dest.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            _safe_extract_tar(archive, tmp)
            tmp.rename(dest)
        targets.append(Target(name, dest, 0, "npm", "npm"))
    return targets


def fetch_pypi(names: list[str], deadline: Deadline) -> list[Target]:
    sdist_dir = CACHE / "pypi-sdist"
    out_dir = WORK / "pypi"
    sdist_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)

    def norm(s: str) -> str:
        return s.lower().replace("-", "_").replace(".", "_")

    def found(name: str) -> list[Path]:
        out = []
        for p in sdist_dir.iterdir():
            m = re.match(r"(.+?)-(\d[^-]*)\.(?:tar\.gz|zip)$", p.name)
            if m and norm(m.group(1)) == norm(name):
                out.append(p)
        return out

    for name in names:
        if found(name):
            continue
        if deadline.left() < 60:
            log("pypi fetch stopped: time budget")
            break
        log(f"pip download {name}")
        try:
            subprocess.run(
                [
                    str(VENV_BIN / "python"),
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--no-binary",
                    name,
                    "--dest",
                    str(sdist_dir),
                    name,
                ],
                capture_output=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            log(f"pip download {name} timed out")
    targets: list[Target] = []
    for name in names:
        archives = [p for p in found(name) if p.name.endswith((".tar.gz", ".zip"))]
        if not archives:
            continue
        dest = out_dir / norm(name)
        if not dest.exists():
            tmp = out_dir / (dest.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            archive = sorted(archives)[-1]
            if archive.name.endswith(".zip"):
                _safe_extract_zip(archive, tmp)
            else:
                _safe_extract_tar(archive, tmp)
            tmp.rename(dest)
        targets.append(Target(name, dest, 0, "pypi", "pypi"))
    return targets


def fetch_scaffolds(packages: list[str], deadline: Deadline) -> list[Target]:
    targets: list[Target] = []
    for t in fetch_npm(packages, deadline):
        for template in sorted(t.path.glob("package/template-*")):
            if template.is_dir():
                targets.append(Target(f"{t.name}/{template.name}", template, 0, "scaffold", "npm"))
    return targets


# --- tools -----------------------------------------------------------------------------------


def run_vet(target: Target) -> tuple[Outcome, int]:
    start = time.perf_counter()
    report = scan_path(target.path)
    seconds = time.perf_counter() - start
    top = [f"{f.rule_id}@{f.path}:{f.line}" for f in report.findings[:4]]
    outcome = Outcome(
        report.verdict is not Verdict.CLEAN,
        seconds,
        f"{report.verdict.value} {report.score} " + " ".join(top),
        {"verdict": report.verdict.value, "score": report.score},
    )
    return outcome, report.bytes_scanned


def install_guarddog(deadline: Deadline, reuse: str) -> Path | None:
    venv = Path(reuse) if reuse else WORK / "guarddog-venv"
    py = venv / "bin" / "python"
    if py.exists():
        probe = subprocess.run([str(py), "-c", "import guarddog"], capture_output=True, check=False)
        if probe.returncode == 0:
            return py
    uv = VENV_BIN / "uv"
    log("installing GuardDog into its own venv")
    try:
        subprocess.run([str(uv), "venv", "--quiet", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(uv), "pip", "install", "--quiet", "--python", str(py), "guarddog"],
            check=True,
            timeout=max(60, min(900, deadline.left() - 60)),
        )
    except (subprocess.SubprocessError, OSError) as exc:
        log(f"GuardDog could not be installed: {exc}")
        return None
    return py


def run_guarddog(py: Path, targets: list[Target], deadline: Deadline) -> dict[str, dict[str, Any]]:
    jobs = [{"target": str(t.path), "ecosystem": t.ecosystem} for t in targets]
    results: dict[str, dict[str, Any]] = {}
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(
        [str(py), str(HERE / "guarddog_runner.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps(jobs))
    proc.stdin.close()
    try:
        for line in proc.stdout:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            results[row["target"]] = row
            if len(results) % 25 == 0:
                log(f"GuardDog {len(results)}/{len(jobs)}")
            if deadline.expired():
                log("GuardDog stopped: time budget")
                break
    finally:
        proc.kill()
        proc.wait()
    return results


# --- metrics ---------------------------------------------------------------------------------


def metrics(rows: list[tuple[Target, Outcome]], total_bytes: int) -> dict[str, float]:
    tp = sum(1 for t, o in rows if t.label and o.flagged)
    fp = sum(1 for t, o in rows if not t.label and o.flagged)
    fn = sum(1 for t, o in rows if t.label and not o.flagged)
    tn = sum(1 for t, o in rows if not t.label and not o.flagged)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    seconds = sum(o.seconds for _, o in rows)
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": precision, "recall": recall, "f1": f1,
        "fp_rate": fp / (fp + tn) if fp + tn else 0.0,
        "seconds": seconds,
        "mb_per_s": total_bytes / 1e6 / seconds if seconds else 0.0,
    }  # fmt: skip


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        "## vet: malware inspection of untrusted repositories",
        "",
        f"Measured {summary['date']} on {summary['machine']} with "
        "`.venv/bin/python bench/vet/run_bench.py --write-docs` "
        f"(time budget {summary['budget']} s, run took {summary['elapsed']:.0f} s).",
        "",
        f"Corpus: {summary['counts']['malicious']} malicious repositories written for this "
        "benchmark (bench/vet/cases/, inert), "
        f"{summary['counts']['npm']} npm packages, {summary['counts']['pypi']} PyPI source "
        f"distributions and {summary['counts']['scaffold']} project scaffolds "
        f"({summary['benign_mb']:.1f} MB benign, {summary['malicious_kb']:.0f} KB malicious). "
        "A repository counts as flagged by vet when its verdict is not `clean`; by GuardDog "
        "when its risk label is `suspicious` or `high_risk` (label) or when any rule matched "
        "(any rule). Throughput: bytes inspected / time spent in the scanner, one process each.",
        "",
        "| tool | precision | recall | F1 | benign FP rate | FP / benign | MB/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in summary["tools"].items():
        lines.append(
            f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
            f"{100 * m['fp_rate']:.1f} % | {m['fp']}/{m['fp'] + m['tn']} | {m['mb_per_s']:.2f} |"
        )
    rows = summary.get("rows", [])
    if rows:
        lines += [
            "",
            "Flagged, per part of the corpus (vet / GuardDog label / GuardDog any rule):",
            "",
            "| part | repositories | vet | GuardDog (label) | GuardDog (any rule) |",
            "|---|---|---|---|---|",
        ]
        parts: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
            ("malicious", lambda r: r["label"] == 1),
            ("npm packages", lambda r: r["group"] == "npm" and not r.get("heldout")),
            ("PyPI sdists", lambda r: r["group"] == "pypi" and not r.get("heldout")),
            ("scaffolds", lambda r: r["group"] == "scaffold"),
            ("held-out npm + PyPI", lambda r: bool(r.get("heldout"))),
        ]
        for title, keep in parts:
            part = [r for r in rows if keep(r)]
            if not part:
                continue
            vet_n = sum(1 for r in part if r["vet_flagged"])
            gd_rows = [r for r in part if r.get("guarddog_label") is not None]
            gd_label = sum(1 for r in gd_rows if r["guarddog_label"] in ("suspicious", "high_risk"))
            gd_any = sum(1 for r in gd_rows if r.get("guarddog_rules"))
            lines.append(
                f"| {title} | {len(part)} | {vet_n} | {gd_label}/{len(gd_rows)} | "
                f"{gd_any}/{len(gd_rows)} |"
            )
    if summary.get("notes"):
        lines += ["", *[f"- {n}" for n in summary["notes"]]]
    if "load" in summary:
        lines += [f"- Load average at start {summary['load'][0]}, at end {summary['load'][1]}."]
    lines += [
        "",
        "Reading these figures:",
        "",
        "- The malicious repositories were written by the author of the rules, alongside them; "
        "recall on them shows every technique in issue 5 is covered, not how vet fares on "
        "malware it has never seen.",
        "- The benign packages other than the held-out ones were used to tune the rules; the "
        "held-out row is the honest false-positive estimate for unseen code.",
        "- GuardDog is built to scan packages on a registry: it does not read git history, "
        "editor tasks, dev containers or archive structure, and its metadata rules need registry "
        "metadata that a local scan does not have. Several malicious cases use exactly those "
        "channels, which favours vet by construction.",
        "- The machine is shared with other jobs; vet and GuardDog ran one after the other in "
        "the same run, so load can differ between them.",
    ]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    doc = DOCS.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOCS.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=2400.0, help="seconds for the whole run")
    parser.add_argument("--no-guarddog", action="store_true")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="benign packages per registry")
    parser.add_argument("--guarddog-venv", default="", help="reuse this GuardDog venv")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render bench/results/vet.json, no scans"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        summary = json.loads((ROOT / "bench" / "results" / "vet.json").read_text())
        text = markdown(summary)
        print(text)
        if args.write_docs:
            write_docs(text)
        return 0
    global WORK
    WORK = Path(tempfile.mkdtemp(prefix="vet-bench-"))
    try:
        return run(args)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    deadline = Deadline(args.budget)
    corpus = tomllib.loads((HERE / "corpus.toml").read_text())
    npm_names = [str(n) for n in corpus["npm"]]
    pypi_names = [str(n) for n in corpus["pypi"]]
    heldout = {str(n) for n in corpus["heldout_npm"]} | {str(n) for n in corpus["heldout_pypi"]}
    npm_names += [str(n) for n in (*corpus["tuned_npm"], *corpus["heldout_npm"])]
    pypi_names += [str(n) for n in (*corpus["tuned_pypi"], *corpus["heldout_pypi"])]
    if args.limit:
        npm_names, pypi_names = npm_names[: args.limit], pypi_names[: args.limit]
    targets = malicious_targets()
    targets += fetch_npm(npm_names, deadline)
    targets += fetch_pypi(pypi_names, deadline)
    for t in targets:
        t.heldout = t.name in heldout
    targets += fetch_scaffolds([str(n) for n in corpus["scaffolds"]], deadline)
    counts = {
        g: sum(t.group == g for t in targets) for g in ("malicious", "npm", "pypi", "scaffold")
    }
    log(f"corpus: {counts}")

    vet_rows: list[tuple[Target, Outcome]] = []
    sizes: dict[str, int] = {}
    for t in targets:
        if deadline.left() < 30:
            log("vet stopped: time budget")
            break
        outcome, size = run_vet(t)
        sizes[str(t.path)] = size
        vet_rows.append((t, outcome))
    measured = {str(t.path) for t, _ in vet_rows}
    total = sum(sizes.values())
    summary: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "budget": args.budget,
        "counts": counts,
        "benign_mb": sum(sizes[str(t.path)] for t, _ in vet_rows if not t.label) / 1e6,
        "malicious_kb": sum(sizes[str(t.path)] for t, _ in vet_rows if t.label) / 1e3,
        "tools": {"vet": metrics(vet_rows, total)},
        "notes": [],
        "rows": [],
    }
    gd: dict[str, dict[str, Any]] = {}
    if not args.no_guarddog:
        py = install_guarddog(deadline, args.guarddog_venv)
        if py is not None:
            gd = run_guarddog(py, [t for t, _ in vet_rows], deadline)
    if gd:
        done = [(t, o) for t, o in vet_rows if str(t.path) in gd]
        for mode in ("label", "any rule"):
            rows: list[tuple[Target, Outcome]] = []
            for t, _ in done:
                r = gd[str(t.path)]
                flagged = (
                    r["label"] in ("suspicious", "high_risk")
                    if mode == "label"
                    else bool(r["rules"])
                )
                rows.append((t, Outcome(flagged, float(r["seconds"]), r["label"])))
            gd_bytes = sum(sizes[str(t.path)] for t, _ in done)
            summary["tools"][f"GuardDog ({mode})"] = metrics(rows, gd_bytes)
        if len(done) < len(vet_rows):
            summary["notes"].append(
                f"GuardDog finished {len(done)} of {len(vet_rows)} repositories in the budget; "
                "its figures cover those only."
            )
        errors = sum(1 for r in gd.values() if r["label"] in ("error", "timeout"))
        if errors:
            summary["notes"].append(
                f"GuardDog errors or timeouts: {errors} (counted as not flagged)."
            )
    elif not args.no_guarddog:
        summary["notes"].append("GuardDog could not be run in this run.")
    if len(measured) < len(targets):
        summary["notes"].append(f"vet measured {len(measured)} of {len(targets)} repositories.")
    for t, o in vet_rows:
        g = gd.get(str(t.path), {})
        summary["rows"].append(
            {
                "name": t.name, "group": t.group, "label": t.label, "technique": t.technique,
                "heldout": t.heldout,
                "bytes": sizes[str(t.path)], "vet": o.detail, "vet_flagged": o.flagged,
                "vet_seconds": o.seconds, "guarddog_label": g.get("label"),
                "guarddog_rules": g.get("rules"), "guarddog_seconds": g.get("seconds"),
            }
        )  # fmt: skip
    missed = [r["name"] for r in summary["rows"] if r["label"] and not r["vet_flagged"]]
    false_pos = [r["name"] for r in summary["rows"] if not r["label"] and r["vet_flagged"]]
    held = [(t, o) for t, o in vet_rows if t.heldout]
    if held:
        held_fp = [t.name for t, o in held if o.flagged]
        summary["notes"].append(
            f"Held-out benign packages (never scanned before this run): {len(held)}, "
            f"flagged by vet: {len(held_fp)}" + (f" ({', '.join(held_fp)})" if held_fp else "")
        )
    if missed:
        summary["notes"].append("vet missed: " + ", ".join(missed))
    if false_pos:
        summary["notes"].append("vet false positives: " + ", ".join(false_pos))
    summary["elapsed"] = time.monotonic() - started
    summary["load"] = [load_start, " ".join(f"{x:.2f}" for x in os.getloadavg())]
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "vet.json").write_text(json.dumps(summary, indent=2))
    text = markdown(summary)
    print(text)
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
