"""Open Iceberg tables and list them through pyiceberg, without a JVM.

hadoop: the table's latest `vN.metadata.json` under <warehouse>/<namespace>/<table>/metadata (StaticTable).
glue / rest / hive: pyiceberg's catalog of that type, configured from the same catalog section.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Protocol, Tuple

from lakehouse_ops.aws.clients import catalog_endpoint_properties, client, describe_failure
from lakehouse_ops.aws.s3retry import S3_READ_RETRIES, S3_RETRY_PROPERTY
from lakehouse_ops.errors import CatalogError, first_line
from lakehouse_ops.health.reach import Reach, table_reach

_VERSION_FILE = re.compile(r"^v(\d+)\.metadata\.json$")


def _fs_and_path(uri: str) -> Tuple[Any, str]:
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, str(path)
    except Exception as exc:
        raise CatalogError("cannot open warehouse %s: %s" % (uri, exc)) from None


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/")] + list(parts))


def _scheme_prefix(uri: str) -> str:
    return uri.split("://", 1)[0] + "://" if "://" in uri else ""


class Tables(Protocol):
    """Where a job finds tables: `load` gives a pyiceberg table, `list_tables` every table name."""

    def load(self, table: str) -> Any: ...

    def list_tables(self) -> List[str]: ...

    def locations(self) -> Dict[str, str]: ...

    def reaches(self) -> Reach:
        """Every prefix each table may keep files under (reach.py)."""
        ...

    def pointer(self, table: str) -> Optional[str]:
        """The table's current metadata file, read without parsing it (None: only loading the table tells)."""
        ...


# Namespaces nest this deep at most in a walk of a Hadoop warehouse (a bound against directory loops, not a
# limit anyone reaches).
MAX_NAMESPACE_DEPTH = 64


class HadoopTables:
    """A Hadoop-catalog warehouse read directly: one directory per namespace, one per table."""

    def __init__(self, warehouse: str) -> None:
        self.warehouse = warehouse
        self.fs, self.root = _fs_and_path(warehouse)
        self.prefix = _scheme_prefix(warehouse)

    def table_dir(self, table: str) -> str:
        return _join(self.root, *table.split("."))

    def metadata_location(self, table: str) -> str:
        from pyarrow.fs import FileSelector, FileType

        meta_dir = _join(self.table_dir(table), "metadata")
        hint = _join(meta_dir, "version-hint.text")
        version = None
        try:
            with self.fs.open_input_stream(hint) as stream:
                version = int(stream.read().decode().strip())
        except (OSError, ValueError):
            version = None
        candidate = _join(meta_dir, "v%d.metadata.json" % version) if version is not None else None
        if candidate is None or self.fs.get_file_info(candidate).type != FileType.File:
            # The hint is written after the metadata file; a missing or stale hint falls back to the newest file.
            try:
                infos = self.fs.get_file_info(FileSelector(meta_dir))
            except (OSError, FileNotFoundError):
                infos = []
            versions = [int(m.group(1)) for m in (_VERSION_FILE.match(i.base_name) for i in infos) if m]
            if not versions:
                raise CatalogError("table %s not found: no metadata under %s%s" % (table, self.prefix, meta_dir))
            candidate = _join(meta_dir, "v%d.metadata.json" % max(versions))
        return self.prefix + candidate

    def pointer(self, table: str) -> Optional[str]:
        return self.metadata_location(table)

    def load(self, table: str) -> Any:
        from pyiceberg.table import StaticTable

        return StaticTable.from_metadata(self.metadata_location(table))

    def list_tables(self) -> List[str]:
        """Walk namespace directories only (never into a table's data), namespaces nested to any depth."""
        from pyarrow.fs import FileSelector, FileType

        def subdirs(path: str) -> List[Any]:
            try:
                return [i for i in self.fs.get_file_info(FileSelector(path)) if i.type == FileType.Directory]
            except (OSError, FileNotFoundError):
                return []

        found: List[str] = []

        def walk(path: str, names: List[str]) -> None:
            for info in subdirs(path):
                child = names + [info.base_name]
                if len(child) >= 2 and any(d.base_name == "metadata" for d in subdirs(info.path)):
                    found.append(".".join(child))
                elif len(child) <= MAX_NAMESPACE_DEPTH:
                    walk(info.path, child)

        walk(self.root, [])
        return sorted(found)

    def locations(self) -> Dict[str, str]:
        """{table: location} of every table: a Hadoop table lives in its own directory, no metadata is read."""
        return {name: self.prefix + self.table_dir(name) for name in self.list_tables()}

    def reaches(self) -> Reach:
        return _loaded_reaches(self, self.list_tables())


class PyIcebergTables:
    """Glue, REST or Hive through pyiceberg's catalog implementations."""

    def __init__(self, catalog: Any) -> None:
        from pyiceberg.catalog import load_catalog

        props = {"type": catalog.type}
        if catalog.uri:
            props["uri"] = catalog.uri
        if catalog.warehouse:
            props["warehouse"] = catalog.warehouse
        # The endpoint override first, so that the catalog's own properties win over it.
        props.update(catalog_endpoint_properties(catalog.type))
        props[S3_RETRY_PROPERTY] = S3_READ_RETRIES  # metadata reads ride out bursts of S3's 503 SlowDown
        # Spark-only settings (class names) mean nothing to pyiceberg; everything else is passed through.
        props.update({k: v for k, v in catalog.properties.items() if not k.endswith("-impl")})
        try:
            if catalog.type == "glue":
                from pyiceberg.catalog.glue import GlueCatalog

                # Our client: bounded connect timeouts and retries, so an unreachable Glue fails in seconds.
                glue = client("glue", region_name=props.get("glue.region"), endpoint=props.get("glue.endpoint"))
                self.catalog: Any = GlueCatalog(catalog.name, client=glue, **props)
            else:
                self.catalog = load_catalog(catalog.name, **props)
        except Exception as exc:
            raise CatalogError(
                "cannot open the %s catalog '%s' with pyiceberg: %s (for Glue, install "
                "pyiceberg[glue]; for Hive, pyiceberg[hive])" % (catalog.type, catalog.name, exc)
            ) from None

    def load(self, table: str) -> Any:
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table(table)
        except NoSuchTableError as exc:
            raise CatalogError("table %s not found in the catalog: %s" % (table, first_line(exc))) from None
        except Exception as exc:
            raise CatalogError("cannot load table %s: %s" % (table, describe_failure(exc) or first_line(exc))) from None

    def pointer(self, table: str) -> Optional[str]:
        """Glue: the `metadata_location` parameter of the catalog entry (one GetTable call, the metadata file is
        not read); other catalogs: None."""
        glue = getattr(self.catalog, "glue", None)
        if glue is None:
            return None
        database, _, name = table.rpartition(".")
        try:
            entry = glue.get_table(DatabaseName=database, Name=name)["Table"]
        except Exception:  # not found, permissions, endpoint: loading the table names the failure
            return None
        location = (entry.get("Parameters") or {}).get("metadata_location")
        return str(location) if location else None

    def list_tables(self) -> List[str]:
        names = []
        try:
            for ns in self.catalog.list_namespaces():
                for ident in self.catalog.list_tables(ns):
                    names.append(".".join(ident))
        except Exception as exc:
            described = describe_failure(exc)
            if described is None:
                raise
            raise CatalogError("cannot list the tables of the catalog: %s" % described) from None
        return sorted(names)

    def locations(self) -> Dict[str, str]:
        """{table: location} of every table of the catalog (Glue: from the table listing, any table format, no
        metadata read; otherwise each table's metadata, 8 at a time)."""
        glue = getattr(self.catalog, "glue", None)
        if glue is not None:
            out = {}
            for ns in self.catalog.list_namespaces():
                pages = glue.get_paginator("get_tables").paginate(DatabaseName=".".join(ns))
                for table in (t for page in pages for t in page.get("TableList", [])):
                    location = (table.get("StorageDescriptor") or {}).get("Location")
                    if location:
                        out["%s.%s" % (".".join(ns), table["Name"])] = location
            return out
        names = self.list_tables()
        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(zip(names, pool.map(lambda name: str(self.load(name).metadata.location), names)))

    def reaches(self) -> Reach:
        """Glue: each Iceberg table's metadata read (8 at a time); any other table's `StorageDescriptor.Location`;
        views skipped; a table without a location is unknown. Other catalogs: every table's metadata."""
        glue = getattr(self.catalog, "glue", None)
        if glue is None:
            return _loaded_reaches(self, self.list_tables())
        iceberg, out = [], Reach()
        for ns in self.catalog.list_namespaces():
            pages = glue.get_paginator("get_tables").paginate(DatabaseName=".".join(ns))
            for table in (t for page in pages for t in page.get("TableList", [])):
                name = "%s.%s" % (".".join(ns), table["Name"])
                if table.get("TableType") == "VIRTUAL_VIEW":
                    continue
                if str((table.get("Parameters") or {}).get("table_type", "")).upper() == "ICEBERG":
                    iceberg.append(name)
                    continue
                location = (table.get("StorageDescriptor") or {}).get("Location")
                if location:
                    out.prefixes[name] = (str(location),)
                else:
                    out.unknown[name] = "registered without StorageDescriptor.Location"
        found = _loaded_reaches(self, iceberg)
        out.prefixes.update(found.prefixes)
        out.unknown.update(found.unknown)
        return out


def _loaded_reaches(tables: Any, names: List[str]) -> Reach:
    """Each table's reach from its metadata (8 at a time); a table that cannot be loaded is unknown."""

    def one(name: str) -> Tuple[str, Optional[Tuple[str, ...]], str]:
        try:
            table = tables.load(name)
            return name, table_reach(table.metadata, str(getattr(table, "metadata_location", "") or "")), ""
        except Exception as exc:
            return name, None, "its metadata cannot be read (%s)" % first_line(exc)[:200]

    out = Reach()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for name, prefixes, why in pool.map(one, names):
            if prefixes is None:
                out.unknown[name] = why
            else:
                out.prefixes[name] = prefixes
    return out


def open_tables(catalog: Any) -> Tables:
    """The tables of a config's catalog section (hadoop: read from the warehouse; else pyiceberg's catalog)."""
    if catalog.type == "hadoop":
        return HadoopTables(catalog.warehouse)
    return PyIcebergTables(catalog)
