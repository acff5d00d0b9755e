"""The values that stand for the subjects in one table's columns, under every key version its tokens were made
with.

A table of identifiers holds the subjects themselves. A table of pseudonyms (`match: tokens`) holds each subject's
deterministic token, but only under the key version it was written with: after a key rotation, older rows hold
older tokens. The key versions present in the table's files are read (each token's first byte names its version);
those the subjects' tokens do not cover (the service makes tokens under its current version only) are matched by
re-identifying the table's tokens of those versions, in the executors. `match: reidentify` re-identifies every
token. What was covered how goes in the receipt (`key_versions`); a version that cannot be re-identified fails the
table's erasure (it is not verified).
"""

from typing import Any, Dict, List, Optional, Tuple

from lakehouse_ops.config import Config
from lakehouse_ops.erasure import files as meta_files
from lakehouse_ops.erasure.raw import FieldIdReads, RawReader
from lakehouse_ops.erasure.subjects import Subject, table_values
from lakehouse_ops.pseudo.cipher import token_version

Values = Dict[str, int]  # a value to erase -> the index of the subject it stands for


def values_for(
    spark: Any,
    config: Config,
    entry: Any,
    subjects: List[Subject],
    client: Any,
    given_tokens: Optional[Dict[str, int]],
    files: meta_files.TableFiles,
    raw: RawReader,
) -> Tuple[Values, Optional[Dict[str, List[int]]]]:
    """({value in the table's columns: subject index}, {"by_token": versions, "by_reidentifying": versions} for
    a table of pseudonyms)."""
    if entry.holds == "identifiers":
        return table_values(entry, subjects, client, given_tokens), None
    data = [meta.path for meta in files.files.values() if meta.content != meta_files.POSITION_DELETES]
    if entry.match == "tokens":
        values = table_values(entry, subjects, client, given_tokens)
        covered = {v for v in (token_version(t) for t in values) if v is not None}
        # Every version present is looked for, newer ones too: a rotation rolled back leaves tokens of a version
        # newer than the service's current one.
        present = raw.versions(data)
        others = sorted(present - covered)
    else:  # match: reidentify: every token of every referenced file
        values, covered, others = {}, set(), sorted(raw.versions(data))
    if others:
        values.update(reidentified(spark, config, subjects, raw, data, others))
    return values, {"by_token": sorted(covered), "by_reidentifying": others}


def reidentified(
    spark: Any, config: Config, subjects: List[Subject], raw: RawReader, paths: List[str], versions: List[int]
) -> Values:
    """{token of key `versions` in `paths` that stands for a subject: subject index}: re-identified in the
    executors and joined with the subjects there (no plaintext reaches the driver but the subjects')."""
    from lakehouse_ops.engine.frames import frame
    from lakehouse_ops.pseudo.spark import reidentify

    wanted = frame(
        spark,
        {"plain": [s.identifier for s in subjects], "subject": [s.index for s in subjects]},
        "plain string, subject int",
    )
    with FieldIdReads(spark):
        tokens = raw.tokens_of(paths, versions).selectExpr("token", "token AS plain")
        plain = reidentify(tokens, ["plain"], config.section("pseudonymization").settings())
        rows = plain.join(wanted, "plain").select("token", "subject").collect()
    return {row.token: int(row.subject) for row in rows}
