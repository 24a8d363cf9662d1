"""Producer manifests as facilities and pipelines really write them.

Each layout is built byte for byte as its producer writes it (with the real
``md5sum`` where the producer uses it), audited intact through the CLI (pass),
then with one covered file corrupted on a backup copy (fail).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import Lab, copy_by_location, dataset_of, rot_in_place, run_cli, write_tree


def gz(seed: str, size: int = 4096) -> bytes:
    """Deterministic bytes that look like (and are as incompressible as) a fastq.gz."""
    out = b""
    block = seed.encode()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return b"\x1f\x8b\x08\x00" + out[:size - 4]


def md5sum(cwd: Path, *names: str) -> bytes:
    return subprocess.run(["md5sum", "--", *names], cwd=cwd, capture_output=True,
                          check=True).stdout


def three_copies(lab: Lab, build: Any, checksums: Any) -> tuple[Path, Path, Path]:
    """``build(root)`` writes the delivery into each copy's root."""
    roots = (lab.location("nas", "disk", "site-a") / "P12345",
             lab.location("tape", "tape", "site-a") / "P12345",
             lab.location("remote", "disk", "site-b") / "P12345")
    for root in roots:
        root.mkdir(parents=True)
        build(root)
    lab.dataset("P12345", [{"location": "nas", "path": "P12345", "primary": True},
                           {"location": "tape", "path": "P12345"},
                           {"location": "remote", "path": "P12345"}], checksums=checksums)
    return roots


def audit(lab: Lab, *args: str) -> tuple[int, dict[str, Any]]:
    code, report = lab.audit_json(*args)
    return code, dataset_of(report, "P12345")


def assert_intact_then_corruption_fails(lab: Lab, roots: tuple[Path, Path, Path],
                                        victim: str) -> dict[str, Any]:
    code, ds = audit(lab)
    assert (code, ds["status"]) == (0, "pass"), (ds["violations"], ds["warnings"],
                                                 [c["problems"] for c in ds["copies"]])
    assert ds["reference"] == "manifest"
    assert all(c["state"] == "intact" for c in ds["copies"])
    rot_in_place(roots[2] / victim)
    code, ds = audit(lab, "--verify", "full")  # size and mtime kept: re-read the bytes
    assert (code, ds["status"]) == (1, "fail")
    copy = copy_by_location({"datasets": [ds]}, "P12345", "remote")
    assert copy["state"] == "corrupt"
    assert [p["path"] for p in copy["problems"] if p["problem"] == "corrupt"] == [victim]
    return ds


# -- NGI: one SAMPLE.md5 per sample at the project root, plus miscellaneous.md5 ----------

RUN = "240115_A00187_0921_AHKJ5TDSXY"
SAMPLES = ("P12345_1001", "P12345_1002")


def ngi_delivery(root: Path) -> None:
    for sample in SAMPLES:
        folder = f"{sample}/02-FASTQ/{RUN}"
        write_tree(root, {f"{folder}/{sample}_S{i}_L00{lane}_R{read}_001.fastq.gz":
                          gz(f"{sample}{lane}{read}")
                          for i, lane in ((1, 1), (1, 2)) for read in (1, 2)})
        names = sorted(str(p.relative_to(root)) for p in (root / folder).iterdir())
        (root / f"{sample}.md5").write_bytes(md5sum(root, *names))
    write_tree(root, {"00-Reports/P12345_multiqc_report.html": b"<html>multiqc</html>\n",
                      "00-Reports/P12345_project_summary.pdf": b"%PDF-1.4 summary\n"})
    (root / "miscellaneous.md5").write_bytes(md5sum(
        root, "00-Reports/P12345_multiqc_report.html", "00-Reports/P12345_project_summary.pdf"))


def test_ngi_delivery_glob_covers_every_sample(lab: Lab) -> None:
    roots = three_copies(lab, ngi_delivery, {"glob": "*.md5"})
    victim = f"P12345_1002/02-FASTQ/{RUN}/P12345_1002_S1_L002_R2_001.fastq.gz"
    assert_intact_then_corruption_fails(lab, roots, victim)


def test_ngi_delivery_as_a_list_of_files(lab: Lab) -> None:
    roots = three_copies(lab, ngi_delivery, [{"file": "P12345_1001.md5"},
                                             {"file": "P12345_1002.md5"},
                                             {"file": "miscellaneous.md5"}])
    assert_intact_then_corruption_fails(lab, roots, "00-Reports/P12345_project_summary.pdf")


# -- per-file caches beside each file, names relative to the manifest's folder ------------

def per_file_cache(root: Path) -> None:
    folder = root / "raw" / RUN
    for read in (1, 2):
        name = f"S1_R{read}.fastq.gz"
        write_tree(folder, {name: gz(name)})
        line = md5sum(folder, name)
        # nf-core writes `md5sum f > f.md5`; a transfer tool writes it without the newline.
        (folder / f"{name}.md5").write_bytes(line if read == 1 else line.rstrip(b"\n"))


def test_per_file_cache_beside_each_file(lab: Lab) -> None:
    roots = three_copies(lab, per_file_cache, {"glob": "**/*.fastq.gz.md5"})
    assert_intact_then_corruption_fails(lab, roots, f"raw/{RUN}/S1_R2.fastq.gz")


# -- nf-core fetchngs: fastq/md5/X.fastq.gz.md5 names files in fastq/ -------------------

def fetchngs(root: Path) -> None:
    for run in ("SRX9626017_SRR13191702", "SRX9626018_SRR13191703"):
        for read in (1, 2):
            name = f"{run}_{read}.fastq.gz"
            write_tree(root / "fastq", {name: gz(name)})
            digest = hashlib.md5((root / "fastq" / name).read_bytes()).hexdigest()
            # sra_fastq_ftp: echo "${md5}  ${prefix}_1.fastq.gz" > ${prefix}_1.fastq.gz.md5
            write_tree(root / "fastq" / "md5", {f"{name}.md5": f"{digest}  {name}\n".encode()})


def test_fetchngs_md5_folder_with_paths(lab: Lab) -> None:
    roots = three_copies(lab, fetchngs, {"glob": "fastq/md5/*.md5", "paths": "fastq"})
    assert_intact_then_corruption_fails(lab, roots, "fastq/SRX9626018_SRR13191703_1.fastq.gz")


# -- digest-only sidecars (awk '{printf $1}'; EGA .md5 beside .gpg) ---------------------

def digest_only(root: Path) -> None:
    for name in ("EGAF001.bam.gpg", "EGAF002.bam.gpg"):
        write_tree(root, {f"ega/{name}": gz(name)})
        digest = hashlib.md5((root / "ega" / name).read_bytes()).hexdigest()
        (root / "ega" / f"{name}.md5").write_bytes(digest.encode())


def test_digest_only_sidecars(lab: Lab) -> None:
    roots = three_copies(lab, digest_only, {"glob": "**/*.gpg.md5", "format": "sidecar"})
    assert_intact_then_corruption_fails(lab, roots, "ega/EGAF002.bam.gpg")


# -- one space between digest and name (md5 -r) ----------------------------------------

def one_space(root: Path) -> None:
    files = {f"S{i}.fastq.gz": gz(f"one{i}") for i in range(3)}
    write_tree(root, files)
    (root / "checksums.md5").write_bytes(b"".join(
        f"{hashlib.md5(data).hexdigest()} {name}\n".encode() for name, data in files.items()))


def test_one_space_between_digest_and_name(lab: Lab) -> None:
    roots = three_copies(lab, one_space, {"file": "checksums.md5"})
    assert subprocess.run(["md5sum", "-c", "checksums.md5"], cwd=roots[0],
                          capture_output=True).returncode == 0
    assert_intact_then_corruption_fails(lab, roots, "S2.fastq.gz")


# -- UTF-8 BOM and CRLF (Windows), upper-case hex --------------------------------------

def bom_crlf(root: Path) -> None:
    files = {f"plate{i}/image_{i:03}.tif": gz(f"tif{i}") for i in range(4)}
    write_tree(root, files)
    # PowerShell 5: Get-FileHash | % { "$($_.Hash)  $name" } | Out-File -Encoding utf8
    (root / "SHA256SUMS.txt").write_bytes(b"\xef\xbb\xbf" + b"".join(
        f"{hashlib.sha256(data).hexdigest().upper()}  {name}\r\n".encode()
        for name, data in files.items()))


def test_bom_and_crlf_every_line_checked(lab: Lab) -> None:
    roots = three_copies(lab, bom_crlf, {"file": "SHA256SUMS.txt", "algorithm": "sha256"})
    # Every line counts, the first (after the BOM) and the last (before CRLF) too.
    assert_intact_then_corruption_fails(lab, roots, "plate0/image_000.tif")


def test_bom_and_crlf_last_line(lab: Lab) -> None:
    roots = three_copies(lab, bom_crlf, {"file": "SHA256SUMS.txt", "algorithm": "sha256"})
    assert_intact_then_corruption_fails(lab, roots, "plate3/image_003.tif")


# -- names with a parent prefix, absolute names ------------------------------------------

def parent_prefix(root: Path) -> None:
    files = {f"run1/lane{i}.fastq.gz": gz(f"lane{i}") for i in range(3)}
    write_tree(root.parent / "staging", files)
    # md5sum run1/* from the project folder, the dataset rooted at run1.
    (root / "checksums.md5").write_bytes(md5sum(root.parent / "staging", *sorted(files)))
    for name, data in files.items():
        write_tree(root, {name.split("/", 1)[1]: data})


def test_parent_prefix_removed_with_strip(lab: Lab) -> None:
    roots = three_copies(lab, parent_prefix, {"file": "checksums.md5", "strip": "run1/"})
    assert_intact_then_corruption_fails(lab, roots, "lane1.fastq.gz")


def test_parent_prefix_without_strip_is_missing_not_passed(lab: Lab) -> None:
    three_copies(lab, parent_prefix, {"file": "checksums.md5"})
    code, ds = audit(lab)
    assert (code, ds["status"]) == (1, "fail")
    assert all(c["state"] == "incomplete" for c in ds["copies"])


def absolute_names(root: Path) -> None:
    files = {f"lane{i}.fastq.gz": gz(f"abs{i}") for i in range(3)}
    write_tree(root, files)
    (root / "checksums.md5").write_bytes(b"".join(
        f"{hashlib.md5(d).hexdigest()}  /proj/ngi/P12345/{n}\n".encode()
        for n, d in files.items()))


def test_absolute_names_with_strip(lab: Lab) -> None:
    roots = three_copies(lab, absolute_names, {"file": "checksums.md5",
                                               "strip": "/proj/ngi/P12345/"})
    assert_intact_then_corruption_fails(lab, roots, "lane2.fastq.gz")


def test_absolute_names_without_strip_are_a_reference_violation(lab: Lab) -> None:
    three_copies(lab, absolute_names, {"file": "checksums.md5"})
    code, ds = audit(lab)
    assert (code, ds["status"]) == (1, "fail")
    [violation] = [v for v in ds["violations"] if v["rule"] == "reference"]
    assert violation["message"] == (
        "producer manifest checksums.md5 names files outside the copy: line 1: absolute "
        "name '/proj/ngi/P12345/lane0.fastq.gz' (remove its prefix with 'strip:'); line 2: "
        "absolute name '/proj/ngi/P12345/lane1.fastq.gz' (remove its prefix with 'strip:'); "
        "line 3: absolute name '/proj/ngi/P12345/lane2.fastq.gz' (remove its prefix with "
        "'strip:')")
    assert violation["next_step"] == (
        "remove the names' prefix with strip:, or set paths: to the folder they are relative "
        "to, or have the manifest corrected, then audit again")


# -- a manifest that lists itself --------------------------------------------------------

def lists_itself(root: Path) -> None:
    write_tree(root, {f"d{i}/f{i}.raw": gz(f"self{i}") for i in range(3)})
    subprocess.run("find . -type f -exec md5sum {} + > checksums.md5", shell=True,
                   cwd=root, check=True)
    assert b"./checksums.md5" in (root / "checksums.md5").read_bytes()


def test_manifest_entry_for_itself_is_ignored(lab: Lab) -> None:
    roots = three_copies(lab, lists_itself, {"file": "checksums.md5"})
    ds = assert_intact_then_corruption_fails(lab, roots, "d1/f1.raw")
    assert any("naming its own manifest ignored" in w for w in ds["warnings"])


# -- contradictory entries ------------------------------------------------------------

def test_two_digests_for_one_file_fail_whatever_the_copies_hold(lab: Lab) -> None:
    def build(root: Path) -> None:
        write_tree(root, {"f1": b"one", "f2": b"two"})
        good = md5sum(root, "f1", "f2")
        (root / "checksums.md5").write_bytes(b"0" * 32 + b"  f1\n" + good)
    three_copies(lab, build, {"file": "checksums.md5"})
    code, ds = audit(lab)
    assert (code, ds["status"]) == (1, "fail")
    [violation] = [v for v in ds["violations"] if v["rule"] == "reference"]
    assert violation["message"] == (
        "the producer manifests give 1 file two different checksums: f1: md5 "
        f"{'0' * 32} (checksums.md5:1) but {hashlib.md5(b'one').hexdigest()} "
        "(checksums.md5:2)")
    assert violation["next_step"] == (
        "ask the producer which checksum is right and have the manifest corrected (or leave "
        "the wrong manifest out of checksums:), then audit again")


def test_contradiction_across_manifests(lab: Lab) -> None:
    def build(root: Path) -> None:
        write_tree(root, {"S1/a.fq": b"a", "S2/b.fq": b"b"})
        (root / "S1.md5").write_bytes(md5sum(root, "S1/a.fq"))
        (root / "S2.md5").write_bytes(md5sum(root, "S2/b.fq")
                                      + f"{hashlib.md5(b'x').hexdigest()}  S1/a.fq\n".encode())
    three_copies(lab, build, {"glob": "*.md5"})
    code, ds = audit(lab)
    assert code == 1
    assert "(S1.md5:1) but" in ds["violations"][0]["message"]


# -- manifests outside the copy, globs that match nothing, foreign formats ---------------

@pytest.mark.parametrize(("checksums", "message"), [
    ({"file": "../x.md5"}, "checksums.file: must not contain '..': it would leave the copy"),
    ({"file": "../../../../etc/hostname"}, "checksums.file: must not contain '..'"),
    ({"file": "/etc/hostname"}, "checksums.file: must be a path inside the copy"),
    ({"glob": "../*.md5"}, "checksums.glob: must not contain '..'"),
    ({"glob": "*.md5", "paths": "../elsewhere"}, "checksums.paths: must be 'manifest', "
                                                 "'dataset' or a folder inside the copy"),
])
def test_manifest_outside_the_copy_is_exit_4_at_load(lab: Lab, checksums: dict[str, str],
                                                     message: str) -> None:
    three_copies(lab, one_space, checksums)
    inventory = lab.write()
    for command in (["validate", str(inventory)],
                    ["audit", str(inventory), "--state", str(lab.state)]):
        result = run_cli(*command)
        assert result.exit_code == 4
        assert f"datasets.P12345.{message}" in result.stderr
    assert not lab.state.exists()  # nothing was audited


def test_glob_matching_nothing_leaves_no_reference(lab: Lab) -> None:
    three_copies(lab, one_space, {"glob": "**/*.sha256", "algorithm": "sha256"})
    code, ds = audit(lab)
    assert (code, ds["status"]) == (3, "unknown")
    assert all(c["state"] == "error" for c in ds["copies"])
    assert ds["warnings"][0] == ("checksums glob '**/*.sha256' matches no file in the primary "
                                 "copy: no reference to compare the copies with")


def hashdeep(root: Path) -> bytes:
    """What `hashdeep -c md5 -l -r . > checksums.md5` writes (the real tool)."""
    return subprocess.run(["hashdeep", "-c", "md5", "-l", "-r", "."], cwd=root,
                          capture_output=True, check=True).stdout


@pytest.mark.parametrize(("content", "format_name"), [
    (hashdeep, "hashdeep output"),
    (b"//\r\n// File Checksum Integrity Verifier version 2.05.\r\n//\r\n"
     + b"0" * 32 + b" s0.fastq.gz\r\n", "Windows File Checksum Integrity Verifier (FCIV)"),
])
def test_foreign_formats_refused_with_a_line_naming_them(lab: Lab, content: Any,
                                                         format_name: str) -> None:
    def build(root: Path) -> None:
        one_space(root)
        (root / "checksums.md5").write_bytes(content(root) if callable(content) else content)
    three_copies(lab, build, {"file": "checksums.md5"})
    code, ds = audit(lab)
    assert (code, ds["status"]) == (3, "unknown")
    assert ds["warnings"][0].startswith(
        f"producer manifest checksums.md5: not a coreutils checksum file: looks like "
        f"{format_name}")


@pytest.mark.parametrize(("checksums", "message"), [
    ({"file": "a.md5", "glob": "*.md5"}, "checksums: needs exactly one of 'file'"),
    ({"algorithm": "md5"}, "checksums: needs exactly one of 'file'"),
    ({"format": "bagit", "algorithm": "md5"}, "checksums.algorithm: format 'bagit' takes no "
                                              "other keys"),
    ([{"format": "bagit"}, {"file": "x.md5"}], "checksums: format 'bagit' describes the whole "
                                              "copy"),
    ({"glob": "*.md5", "format": "sidecar", "paths": "dataset"},
     "checksums.paths: format 'sidecar' takes no 'paths'"),
    ({"file": "a.md5", "algorithm": "crc99"}, "checksums.algorithm: unsupported algorithm "
                                              "'crc99' (expected one of: md5, sha1, sha224"),
    ({"file": "a.md5", "format": "rar"}, "checksums.format: unknown format 'rar'"),
    ({"file": "a.md5", "colour": "blue"}, "checksums.colour: unknown key 'colour'"),
    ([], "checksums: must be a mapping"),
    (["a.md5"], "checksums[0]: must be a mapping"),
    ([{"file": "a.md5"}, {"glob": "/x/*.md5"}], "checksums[1].glob: must be relative"),
])
def test_checksums_schema_errors(lab: Lab, checksums: Any, message: str) -> None:
    three_copies(lab, one_space, checksums)
    result = run_cli("validate", str(lab.write()))
    assert result.exit_code == 4
    assert f"datasets.P12345.{message}" in result.stderr, result.stderr


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha224", "sha256", "sha384", "sha512",
                                       "xxh128"])
def test_every_manifest_algorithm(lab: Lab, algorithm: str) -> None:
    import xxhash

    def build(root: Path) -> None:
        files = {f"f{i}.raw": gz(f"alg{i}") for i in range(3)}
        write_tree(root, files)
        def digest(data: bytes) -> str:
            if algorithm == "xxh128":
                return str(xxhash.xxh3_128_hexdigest(data))
            return hashlib.new(algorithm, data).hexdigest()
        (root / "sums.txt").write_bytes(b"".join(
            f"{digest(d)}  {n}\n".encode() for n, d in files.items()))
    roots = three_copies(lab, build, {"file": "sums.txt", "algorithm": algorithm})
    assert_intact_then_corruption_fails(lab, roots, "f1.raw")


def test_the_ngi_delivery_example(tmp_path: Path) -> None:
    import shutil
    example = tmp_path / "ngi-delivery"
    shutil.copytree(Path(__file__).parent.parent / "examples" / "ngi-delivery", example)
    state = str(tmp_path / "state.sqlite3")
    inventory = str(example / "inventory.yaml")
    result = run_cli("audit", inventory, "--state", state, "--format", "json")
    assert result.exit_code == 0, result.stdout
    fastq = next((example / "storage" / "swestore").rglob("P12345_1002_*_R2_001.fastq.gz"))
    rot_in_place(fastq)
    result = run_cli("audit", inventory, "--state", state, "--format", "json", "--verify",
                     "full")
    assert result.exit_code == 1
    copy = copy_by_location(result.json(), "ngi-P12345", "swestore")
    assert copy["state"] == "corrupt"


# -- no file goes unverified: manifests and uncovered files are recorded ---------------

def ngi_with_extras(root: Path) -> None:
    ngi_delivery(root)
    # Files no manifest names: a README the facility added, the lab's own notes.
    write_tree(root, {"README.txt": b"Delivered by NGI Stockholm.\n",
                      "notes/lab-notes.txt": b"Library prep: TruSeq PCR-free.\n"})


def test_report_says_how_many_files_manifests_cover_and_were_recorded(lab: Lab) -> None:
    three_copies(lab, ngi_with_extras, {"glob": "*.md5"})
    code, ds = audit(lab)
    assert code == 0
    # 8 fastq.gz + 2 reports from the manifests; 3 manifests + README + notes recorded.
    assert ds["reference_files"] == {"manifests": 3, "covered": 10, "recorded": 5}
    assert all(c["files"]["expected"] == 15 and c["files"]["extra"] == 0
               for c in ds["copies"])
    table = lab.audit("--format", "table", write=False).stdout
    assert ("reference: 10 files from 3 producer manifests, 5 recorded from the "
            "primary") in table


def test_a_manifest_deleted_on_a_backup_makes_it_incomplete(lab: Lab) -> None:
    roots = three_copies(lab, ngi_with_extras, {"glob": "*.md5"})
    assert audit(lab)[0] == 0
    (roots[1] / "P12345_1002.md5").unlink()
    code, ds = audit(lab)
    assert (code, ds["status"]) == (1, "fail")  # 3-2-1 needs the tape copy intact
    tape = copy_by_location({"datasets": [ds]}, "P12345", "tape")
    assert tape["state"] == "incomplete"
    assert tape["problems"] == [{"path": "P12345_1002.md5", "problem": "missing",
                                 "detail": ""}]


def test_an_uncovered_file_is_checked_on_every_copy(lab: Lab) -> None:
    roots = three_copies(lab, ngi_with_extras, {"glob": "*.md5"})
    assert audit(lab)[0] == 0
    rot_in_place(roots[2] / "notes" / "lab-notes.txt")
    code, ds = audit(lab, "--verify", "full")
    assert code == 1
    remote = copy_by_location({"datasets": [ds]}, "P12345", "remote")
    assert remote["state"] == "corrupt"
    assert [p["path"] for p in remote["problems"]] == ["notes/lab-notes.txt"]


def test_a_file_added_to_the_primary_later_is_extra_as_without_manifests(lab: Lab) -> None:
    roots = three_copies(lab, ngi_with_extras, {"glob": "*.md5"})
    assert audit(lab)[0] == 0
    (roots[0] / "new-analysis.txt").write_bytes(b"added after delivery\n")
    code, ds = audit(lab)
    assert code == 0
    assert "copy nas:P12345 has 1 file not in the reference" in ds["warnings"]


def test_a_reissued_manifest_becomes_the_reference(lab: Lab) -> None:
    roots = three_copies(lab, ngi_with_extras, {"glob": "*.md5"})
    assert audit(lab)[0] == 0
    # The facility re-delivers sample 1002 with a fixed file, on every copy.
    victim = f"P12345_1002/02-FASTQ/{RUN}/P12345_1002_S1_L001_R1_001.fastq.gz"
    for root in roots:
        (root / victim).write_bytes(gz("re-delivered"))
        names = sorted(str(p.relative_to(root))
                       for p in (root / f"P12345_1002/02-FASTQ/{RUN}").iterdir())
        (root / "P12345_1002.md5").write_bytes(md5sum(root, *names))
    code, ds = audit(lab)
    assert code == 0, [c["problems"] for c in ds["copies"]]
    # A backup that kept the old manifest is not intact.
    (roots[1] / "P12345_1002.md5").write_bytes(b"0" * 32 + b"  old\n")
    code, ds = audit(lab)
    assert copy_by_location({"datasets": [ds]}, "P12345", "tape")["state"] == "corrupt"


def test_primary_unreachable_later_uses_the_reference_kept_in_the_catalog(lab: Lab) -> None:
    roots = three_copies(lab, ngi_with_extras, {"glob": "*.md5"})
    assert audit(lab)[0] == 0
    rot_in_place(roots[2] / "README.txt")
    (lab.tmp / "storage" / "nas").rename(lab.tmp / "storage" / "nas-unmounted")
    code, ds = audit(lab, "--verify", "full")
    assert (code, ds["status"]) == (1, "fail")
    assert ds["warnings"][0].startswith("the producer manifests could not be read (the "
                                        "primary copy nas:P12345 is unreachable")
    assert ds["warnings"][0].endswith("using the reference kept in the catalog")
    states = {c["location"]: c["state"] for c in ds["copies"]}
    assert states == {"nas": "unreachable", "tape": "intact", "remote": "corrupt"}


def test_primary_missing_on_first_audit_leaves_no_reference(lab: Lab) -> None:
    roots = three_copies(lab, ngi_delivery, {"glob": "*.md5"})
    import shutil
    shutil.rmtree(roots[0])
    code, ds = audit(lab)
    assert (code, ds["status"]) == (1, "fail")
    assert ds["warnings"][0].startswith("no reference: the producer manifests could not be "
                                        "read (the primary copy nas:P12345 is missing")
    assert {c["location"]: c["state"] for c in ds["copies"]} == {
        "nas": "missing", "tape": "error", "remote": "error"}
