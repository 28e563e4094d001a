"""The repository files' parser (what a build trusts): any bytes give a RepoConfigError or a valid
config, never another exception; what the service writes, it reads back unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nno.repos import files as F

PID = "abcdefghij"
ids = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
versions = st.from_regex(r"[0-9][0-9A-Za-z.+-]{0,10}", fullmatch=True)
scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20))
configs = st.dictionaries(st.text(min_size=1, max_size=10), st.one_of(scalars, st.lists(scalars, max_size=3)),
                          max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(ids, st.tuples(versions, configs), max_size=5))
def test_what_is_written_reads_back(features: dict[str, tuple[str, dict[str, object]]]) -> None:
    files = F.initial_files(PID, "Acme", "starter", "nno.localhost")
    for fid, (version, config) in features.items():
        files.update(F.with_feature(files, PID, F.Feature(fid, version, config)))
    parsed = F.parse_repo(files, PID)
    assert {f.id: (f.version, f.config) for f in parsed.features} == features
    assert files[F.FEATURES].startswith(F.GENERATED_HEADER.encode())


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(F.FILES), st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_content_is_accepted_or_refused_cleanly(name: str, content: bytes) -> None:
    files = F.initial_files(PID, "Acme", "starter", "nno.localhost")
    files[name] = content
    try:
        F.parse_repo(files, PID)
    except F.RepoConfigError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(ids, versions, max_size=5), st.dictionaries(ids, versions, max_size=5),
       st.lists(ids, max_size=5, unique=True))
def test_one_change_of_many_features_is_what_each_change_would_give(
        current: dict[str, str], activate: dict[str, str], deactivate: list[str]) -> None:
    deactivate = [f for f in deactivate if f not in activate]  # the route refuses a feature named twice
    files = F.initial_files(PID, "Acme", "starter", "nno.localhost")
    files.update(F.with_changes(files, PID, [F.Feature(i, v) for i, v in current.items()], []))
    one = dict(files)
    one.update(F.with_changes(files, PID, [F.Feature(i, v) for i, v in activate.items()], deactivate))
    stepwise = dict(files)
    for fid, version in activate.items():
        stepwise.update(F.with_feature(stepwise, PID, F.Feature(fid, version)))
    for fid in deactivate:
        stepwise.update(F.without_feature(stepwise, PID, fid))
    assert one == stepwise
    want = {i: v for i, v in current.items() if i not in deactivate} | activate
    assert {f.id: f.version for f in F.parse_repo(one, PID).features} == want


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)
entries = st.fixed_dictionaries({"featureId": ids | st.text(max_size=8), "version": versions | st.text(max_size=5)})


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["activate", "deactivate", "environment", "other"]),
                       json_values | st.lists(entries, max_size=4) | st.lists(ids, max_size=4), max_size=3))
def test_an_apply_body_is_valid_or_refused_cleanly(body: dict[str, object]) -> None:
    from pydantic import ValidationError

    from nno.repos.schemas import ApplyFeatures

    try:
        parsed = ApplyFeatures.model_validate(body)
    except ValidationError:
        return
    named = [a.featureId for a in parsed.activate] + list(parsed.deactivate)
    assert named and len(set(named)) == len(named)
