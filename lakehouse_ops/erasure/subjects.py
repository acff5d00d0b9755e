"""Subjects and the values that stand for them in each table (pure: no Spark).

A subject arrives as an identifier (plaintext) or as a pseudonym. Tables hold either identifiers or pseudonyms;
for a pseudonym table the subject is matched by its deterministic token(s) or, with `match: reidentify`, by
re-identifying the table's tokens (done by the Spark side). Receipts and logs name subjects by reference (their
deterministic pseudonym, or a position when no pseudonymization is configured), never by value.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set

from lakehouse_ops.errors import ConfigError


@dataclass(frozen=True)
class Subject:
    index: int
    identifier: str
    ref: str  # what receipts and logs may show


def read_subject_lines(text: str, source: str) -> List[str]:
    """One subject per line; blank lines and lines starting with '#' are skipped."""
    out = [line.strip() for line in text.splitlines()]
    out = [line for line in out if line and not line.startswith("#")]
    if not out:
        raise ConfigError("%s names no subject (one per line; '#' starts a comment)" % source)
    return out


def reidentified(pseudonyms: List[str], client: Any) -> List[str]:
    """The plaintexts of subjects given as pseudonyms, in order."""
    if not pseudonyms:
        return []
    if client is None:
        raise ConfigError(
            "subjects given as pseudonyms need the config's 'pseudonymization' section to re-identify them"
        )
    return list(client.reidentify(list(pseudonyms)))


def resolve_subjects(identifiers: List[str], pseudonyms: List[str], client: Any = None) -> List[Subject]:
    """Subjects from identifiers and pseudonyms (re-identified through `client`), deduplicated, in order."""
    identifiers, pseudonyms = list(identifiers or ()), list(pseudonyms or ())
    if not identifiers and not pseudonyms:
        raise ConfigError("name at least one subject (an identifier or a pseudonym)")
    identifiers += reidentified(pseudonyms, client)
    distinct = list(dict.fromkeys(identifiers))
    refs = (
        client.pseudonymize(distinct, True)
        if client is not None
        else ["subject-%d" % (i + 1) for i in range(len(distinct))]
    )
    return [Subject(i, value, ref) for i, (value, ref) in enumerate(zip(distinct, refs))]


def table_values(
    entry: Any, subjects: List[Subject], client: Any = None, extra_tokens: Optional[Dict[str, int]] = None
) -> Dict[str, int]:
    """{value to look for in `entry`'s columns: subject index} for match-by-value tables.

    identifiers: the subjects themselves. pseudonyms (match: tokens): each subject's deterministic token from
    `client`, plus `extra_tokens` ({token: subject index}: pseudonyms given on the request, tokens under older key
    versions when the keys are at hand).
    """
    if entry.holds == "identifiers":
        return {s.identifier: s.index for s in subjects}
    if entry.match != "tokens":
        raise ValueError("table_values is for value matching; %s uses match: %s" % (entry.table, entry.match))
    if client is None:
        raise ConfigError("erasure table %s holds pseudonyms: configure the 'pseudonymization' section" % entry.table)
    out: Dict[str, int] = {}
    tokens = client.pseudonymize([s.identifier for s in subjects], True)
    for subject, token in zip(subjects, tokens):
        out[token] = subject.index
    out.update(extra_tokens or {})
    return out


def all_version_tokens(keyring: Any, subjects: List[Subject]) -> Dict[str, int]:
    """{deterministic token under every key version: subject index}: finds rows written before a rotation."""
    from lakehouse_ops.pseudo.cipher import Cipher

    cipher = Cipher(keyring)
    out = {}
    for version in sorted(keyring.keys):
        for subject in subjects:
            out[cipher.pseudonymize(subject.identifier, True, version=version)] = subject.index
    return out


def found_in(subjects: List[Subject], per_table: Dict[str, Set[int]]) -> List[Dict[str, Any]]:
    """[{ref, found_in: [tables]}] from {table: set of subject indexes found there}."""
    return [{"ref": s.ref, "found_in": sorted(t for t, hits in per_table.items() if s.index in hits)} for s in subjects]
