"""``python main.py split`` / ``compare``: every bad option exits with code 2, names the option the
user typed, and is refused before the request it would have shaped (nothing written, no ``--out``
folder created)."""

from __future__ import annotations

from collections import Counter

import pytest

import main


def _split(project, dataset, *extra: str) -> list[str]:
    return ["split", "--project", project.name, "--dataset", dataset.name, "--no-progress", *extra]


@pytest.mark.parametrize(
    ("seed", "problem"),
    [
        ("abc", "is not a whole number in decimal digits"),
        ("1e3", "is not a whole number in decimal digits"),
        ("-1", "is negative"),
        (str(2**32), "is above 4294967295"),
        ("9" * 40, "is above 4294967295"),
    ],
)
def test_split_seed_errors_name_the_seed_option_before_any_request(platform, project, dataset, capsys, seed, problem):
    assert main.main(_split(project, dataset, "--seed", seed)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --seed: {seed!r} {problem}; use an integer from 0 to 4294967295")
    assert err.rstrip().endswith("e.g. --seed 0")
    assert "--subsets.seed" not in err and '"seed"' not in err
    assert platform.request_counts == Counter()


def test_split_subset_errors_use_command_line_examples(platform, project, dataset, capsys):
    assert main.main(_split(project, dataset, "--subsets", "train=x,test=20")) == 2
    err = capsys.readouterr().err
    assert "--subsets.groups[0].distribution: 'x'" in err and "e.g. train=80" in err
    assert '"distribution"' not in err
    assert main.main(_split(project, dataset, "--subsets", "train=100")) == 2
    assert "like --subsets train=80,validation=10,test=10" in capsys.readouterr().err
    assert platform.request_counts == Counter()


def test_split_option_names_follow_the_batch_messages(platform, project, dataset, capsys):
    assert main.main(_split(project, dataset, "--stratify-by", "label", "--group-by", "metadata.user.p")) == 2
    assert capsys.readouterr().err.strip().endswith("(option --stratify-by/--group-by)")
    assert platform.request_counts == Counter()


def test_split_refuses_a_dataset_id_of_another_project_and_writes_nothing(platform, project, dataset, capsys):
    import dtlpy as dl

    other = dl.projects.create(project_name=f"{project.name}-other")
    foreign = other.datasets.create(dataset_name="foreign")
    platform.add_items(foreign, [{"name": "a.jpg"}])
    platform.reset_counts()
    argv = ["split", "--project", project.name, "--dataset", foreign.id, "--no-progress"]
    assert main.main(argv) == 2
    assert f"--dataset: {foreign.id!r} is not the name or id of a dataset in project" in capsys.readouterr().err
    assert platform.write_count() == 0
    assert all("tags" not in (item.get("metadata") or {}).get("system", {}) for item in platform.items_json(foreign.id))


@pytest.mark.parametrize("bad_id", ["a/b", "../../projects", "", "a b", "x?a=1", "a" * 129])
def test_compare_ids_that_are_not_plain_ids_are_refused_before_any_request(platform, tmp_path, capsys, bad_id):
    out = tmp_path / "out"
    assert main.main(["compare", "--previous", bad_id, "--new", "b", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: --previous: ")
    assert platform.request_counts == Counter() and not out.exists()


def test_compare_out_must_be_a_folder(platform, tmp_path, capsys):
    existing = tmp_path / "report.txt"
    existing.write_text("keep me", encoding="utf-8")
    for out, problem in ((existing, "is an existing file"), (existing / "sub", "is a file, so")):
        assert main.main(["compare", "--previous", "a", "--new", "b", "--out", str(out)]) == 2
        assert problem in capsys.readouterr().err
    assert existing.read_text(encoding="utf-8") == "keep me"
    assert platform.request_counts == Counter()


def test_compare_dataset_and_models_must_share_the_project(platform, project, dataset, tmp_path, capsys):
    import dtlpy as dl

    other = dl.projects.create(project_name=f"{project.name}-elsewhere")
    foreign = other.datasets.create(dataset_name="foreign")
    previous = platform.create_model(project, "previous", dataset=dataset, labels=["cat"])
    new = platform.create_model(project, "new", dataset=dataset, labels=["cat"])
    platform.reset_counts()
    base = ["compare", "--previous", previous.id, "--new", new.id, "--out", str(tmp_path / "o")]
    assert main.main([*base, "--dataset", foreign.id]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --dataset: {foreign.id!r} belongs to project") and "the new model's project" in err
    assert main.main([*base, "--dataset", dataset.id, "--project", other.name]) == 2
    assert capsys.readouterr().err.startswith(f"error: --previous: model {previous.id!r} belongs to project")
    assert main.main([*base, "--dataset", foreign.id, "--project", project.name]) == 2
    assert "not to --project" in capsys.readouterr().err
    assert platform.write_count() == 0 and not (tmp_path / "o").exists()


def test_compare_config_file_problems_name_the_config_option(platform, tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"wins": "\xe9"}')
    twice = tmp_path / "twice.json"
    twice.write_text('{"precision_recall": {"min_delta": 0, "min_delta": 0.5}}', encoding="utf-8")
    cases = ((deep, "nested too deeply"), (latin, "not UTF-8"), (tmp_path, "is a folder"), (twice, "given twice"))
    for path, problem in cases:
        assert main.main(["compare", "--previous", "a", "--new", "b", "--config", str(path)]) == 2
        assert problem in capsys.readouterr().err
    assert platform.request_counts == Counter()
