"""Static cohorts from a ``HogQLQuery``: a documented, read-only SQL subset, checked before it runs (spec 7.6).

PostHog runs HogQL, its own SQL dialect, against ClickHouse. This project accepts the part of it a static-cohort
query needs, parses it with sqlglot (ClickHouse dialect, which HogQL follows), checks every node against an
allow-list, rewrites HogQL's property access into plain SQL and runs the result with DuckDB over the project's
frames. Anything outside the subset is a 400 that names what is not allowed; nothing is ever executed unchecked.

**The subset**

* One ``SELECT`` (``UNION [ALL|DISTINCT]``, ``INTERSECT``, ``EXCEPT`` of SELECTs allowed), with ``WITH``,
  subqueries, ``JOIN``\\s, ``WHERE``, ``GROUP BY``, ``HAVING``, ``ORDER BY``, ``LIMIT``/``OFFSET``, window
  functions. No other statement, no second statement, no ``SETTINGS``, ``PREWHERE``, ``SAMPLE``, ``FINAL``,
  ``ARRAY JOIN`` or placeholders.
* Tables: ``events`` (``uuid, event, distinct_id, timestamp, properties, person_id``), ``persons``
  (``id, created_at, properties``), ``person_distinct_ids`` (``distinct_id, person_id``) and names defined by the
  query's own ``WITH``. No schema-qualified names, no table functions (``file()``, ``url()``, ``read_csv()``...).
* ``properties.<key>`` (nested: ``properties.a.b``) reads a property of the row's table; ``person.properties.<key>``,
  ``person.id`` and ``person.created_at`` read the event's (or distinct id's) person. A table alias may prefix
  both (``e.properties.$browser``, ``e.person.properties.email``); ``$`` is allowed in names. Property values are
  text, numbers or booleans as the project's data types them (decision 2: inferred from the data).
* Functions: the operators and the functions listed in :data:`ALLOWED_NODES` and :data:`HOGQL_FUNCTIONS`
  (aggregates ``count``, ``countIf``, ``uniq``, ``uniqExact``, ``sum``, ``avg``, ``min``, ``max``, ``argMax``,
  ``argMin``, ``any``; ``if``, ``multiIf``, ``coalesce``/``ifNull``, casts ``toFloat``, ``toInt``, ``toString``,
  ``toDate``, ``toDateTime``, ``now()``, ``today()``, date helpers, string helpers). ``now()`` and ``today()`` are
  the request's instant in UTC, so a query is reproducible.

**Running it** (:func:`run_hogql_query`): only the frames the query names are handed to a fresh in-memory DuckDB
connection with file-system and network access disabled, extension loading off, a memory limit, two threads and a
time limit (the connection is interrupted when it runs out). The member column is chosen as spec 7.6 says
(``person_id``, ``actor_id``, ``id`` by output name; else the person of an ``events`` row or the ``id`` of a
``persons`` row; else a ``distinct_id`` column, resolved to its person), and only ids of the project's existing
persons are returned.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import polars as pl
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from cohort_pipeline.engine.property_types import PropertyType, infer_property_types
from cohort_pipeline.errors import CohortValidationError
from cohort_pipeline.sources import ProjectData

# ----------------------------------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class QueryLimits:
    """Bounds of one cohort query: text size, run time, memory and threads of the DuckDB connection."""

    max_query_chars: int = 20_000
    timeout_seconds: float = 10.0
    memory_limit: str = "1GB"
    threads: int = 2
    max_nesting: int = 64


DEFAULT_LIMITS: Final = QueryLimits()

# ------------------------------------------------------------------------------------------------ the subset

BASE_TABLES: Final[Mapping[str, tuple[str, ...]]] = {
    "events": ("uuid", "event", "distinct_id", "timestamp", "properties", "person_id"),
    "persons": ("id", "created_at", "properties"),
    "person_distinct_ids": ("distinct_id", "person_id"),
}
"""Tables a query may read, with the columns it sees (``SELECT *`` expands to these, plus helper columns)."""

PERSON_TABLES: Final[frozenset[str]] = frozenset({"events", "person_distinct_ids"})
"""Tables whose rows have a person (``person.id``, ``person.properties.<key>``, ``person.created_at``)."""

PERSON_PROPERTIES_COLUMN: Final = "__person_properties"
PERSON_CREATED_AT_COLUMN: Final = "__person_created_at"
MEMBER_COLUMN: Final = "__cohort_member"

ALLOWED_NODES: Final[frozenset[type[exp.Expression]]] = frozenset(
    {
        # structure
        exp.Select, exp.Union, exp.Intersect, exp.Except, exp.With, exp.CTE, exp.Subquery, exp.From, exp.Join,
        exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Distinct,
        exp.Window, exp.WindowSpec, exp.Qualify,
        # names and values
        exp.Column, exp.Dot, exp.Identifier, exp.Literal, exp.Alias, exp.TableAlias, exp.Star, exp.Table,
        exp.Null, exp.Boolean, exp.Paren, exp.Tuple, exp.Array, exp.Interval, exp.Var, exp.DataType,
        exp.DataTypeParam,
        # operators
        exp.And, exp.Or, exp.Not, exp.Xor, exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ, exp.GT, exp.GTE,
        exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Add, exp.Sub, exp.Mul, exp.Div,
        exp.IntDiv, exp.Mod, exp.Neg, exp.DPipe, exp.Case, exp.If, exp.Cast, exp.TryCast, exp.Coalesce,
        # aggregates
        exp.Count, exp.CountIf, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.ApproxDistinct, exp.ArgMax, exp.ArgMin,
        exp.AnyValue, exp.RowNumber,
        # scalar functions
        exp.Lower, exp.Upper, exp.Length, exp.Concat, exp.Substring, exp.Trim, exp.Round, exp.Abs, exp.Floor,
        exp.Ceil, exp.Greatest, exp.Least, exp.StartsWith, exp.EndsWith, exp.RegexpLike, exp.StrPosition,
        exp.DateTrunc, exp.TimestampTrunc, exp.DateDiff, exp.DateAdd, exp.DateSub, exp.Year, exp.Month, exp.Day,
        exp.DayOfWeekIso, exp.CurrentTimestamp, exp.CurrentDate,
        # checked separately: HogQL functions sqlglot does not know (rewritten by HOGQL_FUNCTIONS)
        exp.Anonymous, exp.AnonymousAggFunc,
    }
)
"""Every sqlglot node a query may contain. An allow-list: a node type not named here (a statement other than
SELECT, a table function, an unknown function, ClickHouse-only syntax) is refused before anything runs."""

_FORBIDDEN_SELECT_ARGS: Final[Mapping[str, str]] = {
    "settings": "SETTINGS",
    "prewhere": "PREWHERE",
    "sample": "SAMPLE",
    "format": "FORMAT",
    "into": "SELECT ... INTO",
    "locks": "FOR UPDATE",
}


class HogQLQueryError(CohortValidationError):
    """A cohort query that is not allowed or failed to run; a 400 on the ``query`` field."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, attr="query")


def _cast(kind: str, safe: bool = True) -> Callable[[list[exp.Expression]], exp.Expression]:
    def build(args: list[exp.Expression]) -> exp.Expression:
        _arity("cast", args, 1, 1)
        node_type = exp.TryCast if safe else exp.Cast
        return node_type(this=args[0], to=exp.DataType.build(kind))

    return build


def _arity(name: str, args: list[exp.Expression], low: int, high: int | None) -> None:
    if len(args) < low or (high is not None and len(args) > high):
        expected = str(low) if high == low else f"{low} to {high}" if high is not None else f"at least {low}"
        raise HogQLQueryError(f"Function {name}() takes {expected} argument(s), got {len(args)}")


def _is_null(args: list[exp.Expression]) -> exp.Expression:
    _arity("isNull", args, 1, 1)
    return exp.Is(this=args[0], expression=exp.Null())


def _is_not_null(args: list[exp.Expression]) -> exp.Expression:
    _arity("isNotNull", args, 1, 1)
    return exp.Not(this=exp.Is(this=args[0], expression=exp.Null()))


def _empty(args: list[exp.Expression]) -> exp.Expression:
    _arity("empty", args, 1, 1)
    return exp.EQ(this=exp.Coalesce(this=args[0], expressions=[exp.Literal.string("")]),
                  expression=exp.Literal.string(""))


def _not_empty(args: list[exp.Expression]) -> exp.Expression:
    return exp.Not(this=exp.Paren(this=_empty(args)))


def _multi_if(args: list[exp.Expression]) -> exp.Expression:
    if len(args) < 3 or len(args) % 2 == 0:
        raise HogQLQueryError("Function multiIf() takes cond1, then1, [cond2, then2, ...], else")
    ifs = [exp.If(this=args[i], true=args[i + 1]) for i in range(0, len(args) - 1, 2)]
    return exp.Case(ifs=ifs, default=args[-1])


def _uniq_exact(args: list[exp.Expression]) -> exp.Expression:
    _arity("uniqExact", args, 1, None)
    return exp.Count(this=exp.Distinct(expressions=args))


def _replace_all(args: list[exp.Expression]) -> exp.Expression:
    _arity("replaceAll", args, 3, 3)
    return exp.Anonymous(this="replace", expressions=args)


HOGQL_FUNCTIONS: Final[Mapping[str, Callable[[list[exp.Expression]], exp.Expression]]] = {
    "tofloat": _cast("DOUBLE"),
    "tofloat64": _cast("DOUBLE"),
    "tofloatornull": _cast("DOUBLE"),
    "tofloat64ornull": _cast("DOUBLE"),
    "toint": _cast("BIGINT"),
    "toint64": _cast("BIGINT"),
    "toint32": _cast("BIGINT"),
    "tointornull": _cast("BIGINT"),
    "toint64ornull": _cast("BIGINT"),
    "tostring": _cast("VARCHAR", safe=False),
    "todate": _cast("DATE"),
    "todatetime": _cast("TIMESTAMPTZ"),
    "parsedatetimebesteffort": _cast("TIMESTAMPTZ"),
    "parsedatetimebesteffortornull": _cast("TIMESTAMPTZ"),
    "isnull": _is_null,
    "isnotnull": _is_not_null,
    "empty": _empty,
    "notempty": _not_empty,
    "multiif": _multi_if,
    "uniqexact": _uniq_exact,
    "replaceall": _replace_all,
}
"""HogQL functions sqlglot does not translate, as builders of the equivalent DuckDB expression (``now`` and
``today`` are handled with the request's clock)."""

CLOCK_FUNCTIONS: Final[frozenset[str]] = frozenset({"now", "today"})

# ------------------------------------------------------------------------------------------------ the query


@dataclass
class _PropertyRef:
    """A property read the rewrite produced, typed once the data is known."""

    node: exp.Expression
    table: str | None  # "persons" / "events" (whose properties), None when it cannot be told
    key: str | None  # single key (nested paths are never typed)


@dataclass
class CompiledQuery:
    """A checked query, rewritten for DuckDB, with what it needs from the data."""

    tree: exp.Expression
    tables: set[str]
    person_columns: set[str]  # tables (events / person_distinct_ids) that need the person's columns
    member_kind: Literal["person", "distinct_id"]
    property_refs: list[_PropertyRef] = field(default_factory=list)

    def sql(self, types: Mapping[tuple[str, str], PropertyType] | None = None) -> str:
        """The DuckDB statement returning one column of member ids; ``types`` types the property reads."""
        for ref in self.property_refs:
            kind = (types or {}).get((ref.table, ref.key)) if ref.table and ref.key else None
            target = {PropertyType.NUMERIC: "DOUBLE", PropertyType.BOOLEAN: "BOOLEAN"}.get(kind) if kind else None
            if target and not isinstance(ref.node.parent, exp.TryCast):
                ref.node.replace(exp.TryCast(this=ref.node.copy(), to=exp.DataType.build(target)))
        inner = self.tree.sql(dialect="duckdb")
        return (
            f"SELECT DISTINCT CAST({MEMBER_COLUMN} AS VARCHAR) AS member FROM ({inner}) AS __cohort_query "
            f"WHERE {MEMBER_COLUMN} IS NOT NULL"
        )


_IDENTIFIER_WITH_DOLLAR = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _quote_dollar_identifiers(text: str) -> str:
    """Back-quote bare identifiers containing ``$`` (``properties.$browser``), which HogQL allows and sqlglot's
    tokenizer does not. String literals and quoted identifiers are left alone."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "'\"`":
            end = index + 1
            while end < len(text):
                if text[end] == "\\":
                    end += 2
                    continue
                if text[end] == char:
                    if end + 1 < len(text) and text[end + 1] == char:  # doubled quote inside the literal
                        end += 2
                        continue
                    break
                end += 1
            out.append(text[index:end + 1])
            index = end + 1
            continue
        match = _IDENTIFIER_WITH_DOLLAR.match(text, index)
        if match and (index == 0 or not (text[index - 1].isalnum() or text[index - 1] == "_")):
            word = match.group(0)
            out.append(f"`{word}`" if "$" in word else word)
            index = match.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _parse(text: str, limits: QueryLimits) -> exp.Expression:
    if not isinstance(text, str) or not text.strip():
        raise HogQLQueryError("HogQLQuery needs a non-empty 'query' string")
    if len(text) > limits.max_query_chars:
        raise HogQLQueryError(f"The query is longer than the limit of {limits.max_query_chars} characters")
    if "\x00" in text:
        raise HogQLQueryError("The query must not contain NUL characters")
    try:
        statements = [s for s in sqlglot.parse(_quote_dollar_identifiers(text), read="clickhouse") if s is not None]
    except (ParseError, TokenError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise HogQLQueryError(f"Could not parse the query: {message}") from None
    except RecursionError:
        raise HogQLQueryError(f"The query is nested more than {limits.max_nesting} levels deep") from None
    except ValueError as error:
        raise HogQLQueryError(f"Could not parse the query: {error}") from None
    if len(statements) != 1:
        raise HogQLQueryError("Only a single SELECT statement is allowed")
    return statements[0]


def _node_name(node: exp.Expression) -> str:
    if isinstance(node, (exp.VarMap, exp.Placeholder, exp.Parameter)):
        return "A placeholder ({name})"
    if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
        return f"function {node.name}()"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()}()"
    return re.sub(r"(?<!^)(?=[A-Z])", " ", type(node).__name__).upper()


def _depth(node: exp.Expression, limit: int) -> None:
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            raise HogQLQueryError(f"The query is nested more than {limit} levels deep")
        stack.extend((child, depth + 1) for child in current.iter_expressions())


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name for cte in tree.find_all(exp.CTE)}


def _check(tree: exp.Expression, limits: QueryLimits) -> set[str]:
    """Refuse everything outside the subset; return the base tables the query reads."""
    _depth(tree, limits.max_nesting)
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise HogQLQueryError(f"Only SELECT queries are allowed, got {_node_name(tree)}")
    ctes = _cte_names(tree)
    tables: set[str] = set()
    for node in tree.walk():
        if type(node) not in ALLOWED_NODES:
            raise HogQLQueryError(f"{_node_name(node)} is not allowed in a cohort query")
        if isinstance(node, exp.Select):
            for arg, text in _FORBIDDEN_SELECT_ARGS.items():
                if node.args.get(arg):
                    raise HogQLQueryError(f"{text} is not allowed in a cohort query")
        elif isinstance(node, exp.Join) and (node.args.get("kind") or "").upper() == "ARRAY":
            raise HogQLQueryError("ARRAY JOIN is not allowed in a cohort query")
        elif isinstance(node, exp.Limit) and node.args.get("expressions"):
            raise HogQLQueryError("LIMIT ... BY is not allowed in a cohort query")
        elif isinstance(node, exp.Table):
            tables |= _check_table(node, ctes)
        elif isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
            name = node.name.lower()
            if name not in HOGQL_FUNCTIONS and name not in CLOCK_FUNCTIONS:
                raise HogQLQueryError(f"Function {node.name}() is not allowed in a cohort query")
    return tables


def _check_table(node: exp.Table, ctes: set[str]) -> set[str]:
    if not isinstance(node.this, exp.Identifier):
        raise HogQLQueryError(f"Table functions are not allowed ({node.this.sql(dialect='clickhouse')})")
    if node.args.get("db") or node.args.get("catalog"):
        raise HogQLQueryError(f"Unknown table '{node.sql(dialect='clickhouse')}'. Cohort queries may read "
                              f"{', '.join(BASE_TABLES)}")
    for arg in ("joins", "laterals", "pivots", "sample", "version", "when"):
        if node.args.get(arg):
            raise HogQLQueryError(f"{arg.upper()} on a table is not allowed in a cohort query")
    name = node.name
    if name in ctes:
        return set()
    if name not in BASE_TABLES:
        raise HogQLQueryError(f"Unknown table '{name}'. Cohort queries may read {', '.join(BASE_TABLES)}")
    return {name}


# ------------------------------------------------------------------------------------------------- rewriting


@dataclass(frozen=True)
class _Source:
    alias: str
    table: str | None  # base table, or None for a subquery / CTE


def _sources(select: exp.Select, ctes: set[str]) -> list[_Source]:
    nodes: list[exp.Expression] = []
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is not None:
        nodes.append(from_.this)
    nodes += [join.this for join in select.args.get("joins") or []]
    sources = []
    for node in nodes:
        if isinstance(node, exp.Table):
            table = node.name if node.name in BASE_TABLES and node.name not in ctes else None
            sources.append(_Source(node.alias_or_name, table))
        else:
            sources.append(_Source(node.alias_or_name, None))
    return sources


def _parts(node: exp.Expression) -> list[exp.Identifier] | None:
    """The identifiers of a dotted name (``a.b.c.d.e``), or None when ``node`` is not a plain dotted name."""
    if isinstance(node, exp.Column):
        if isinstance(node.this, exp.Star):
            return None
        parts = [node.args.get(k) for k in ("catalog", "db", "table", "this")]
        idents = [p for p in parts if p is not None]
        return idents if all(isinstance(p, exp.Identifier) for p in idents) else None
    if isinstance(node, exp.Dot):
        left = _parts(node.this)
        right = node.expression
        if left is None or not isinstance(right, exp.Identifier):
            return None
        return [*left, right]
    return None


def _column(qualifier: str | None, name: str) -> exp.Column:
    return exp.column(name, table=qualifier, quoted=True) if qualifier else exp.column(name, quoted=True)


def _json_pointer(keys: list[str]) -> str:
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


def _json_read(column: exp.Expression, keys: list[str]) -> exp.Expression:
    """``json_extract_string(TRY_CAST(col AS JSON), '/key')``: text of the value, ``NULL`` when missing, null or
    when the document is not JSON (PostHog reads those as missing too)."""
    document = exp.TryCast(this=column, to=exp.DataType.build("JSON"))
    return exp.Anonymous(this="json_extract_string", expressions=[document, exp.Literal.string(_json_pointer(keys))])


class _Rewriter:
    """Turns HogQL names into SQL over the registered frames and collects what they need."""

    def __init__(self, tree: exp.Expression) -> None:
        self.tree = tree
        self.ctes = _cte_names(tree)
        self.person_columns: set[str] = set()
        self.property_refs: list[_PropertyRef] = []

    def _scope(self, node: exp.Expression) -> list[_Source]:
        select = node.find_ancestor(exp.Select)
        return _sources(select, self.ctes) if select is not None else []

    def _resolve(self, scope: list[_Source], prefix: list[str], what: str) -> _Source | None:
        """The source a dotted name's prefix points at (``[]``: the only source of the scope)."""
        if prefix:
            if len(prefix) > 1:
                raise HogQLQueryError(f"Cannot resolve '{'.'.join(prefix)}.{what}'")
            found = [s for s in scope if s.alias == prefix[0]]
            if not found:
                return None  # e.g. an outer query's alias: DuckDB resolves (or rejects) it
            return found[0]
        if len(scope) == 1:
            return scope[0]
        if not scope:
            return None
        raise HogQLQueryError(f"'{what}' is ambiguous in a query with several tables; prefix it with a table "
                              f"alias (e.g. e.{what})")

    def run(self) -> None:
        targets = [
            node for node in self.tree.find_all(exp.Column, exp.Dot)
            if not isinstance(node.parent, exp.Dot)
        ]
        for node in targets:
            parts = _parts(node)
            if parts is None:
                continue
            names = [p.name for p in parts]
            replacement = self._rewrite(node, names)
            if replacement is not None:
                node.replace(replacement)
        self._rewrite_functions()

    def _rewrite(self, node: exp.Expression, names: list[str]) -> exp.Expression | None:
        scope = self._scope(node)
        aliases = {s.alias for s in scope}
        if "properties" in names[:-1]:
            index = names.index("properties")
            prefix, keys = names[:index], names[index + 1:]
            if prefix and prefix[-1] == "person" and "person" not in aliases:
                return self._person_property(scope, prefix[:-1], keys)
            source = self._resolve(scope, prefix, "properties." + ".".join(keys))
            qualifier = source.alias if source else (prefix[0] if prefix else None)
            read = _json_read(_column(qualifier, "properties"), keys)
            table = source.table if source else None
            self.property_refs.append(_PropertyRef(read, table, keys[0] if len(keys) == 1 else None))
            return read
        if len(names) >= 2 and names[-2] == "person" and "person" not in aliases:
            return self._person_field(scope, names[:-2], names[-1])
        return None

    def _person_source(self, scope: list[_Source], prefix: list[str], what: str, *, joins_persons: bool = True
                       ) -> _Source:
        if prefix:
            source = self._resolve(scope, prefix, what)
        else:
            candidates = [s for s in scope if s.table in PERSON_TABLES]
            if len(candidates) > 1:
                raise HogQLQueryError(f"'{what}' is ambiguous; prefix it with a table alias (e.g. e.{what})")
            source = candidates[0] if candidates else None
        if source is None or source.table not in PERSON_TABLES:
            raise HogQLQueryError(f"'{what}' is only available on events and person_distinct_ids")
        if joins_persons:
            self.person_columns.add(source.table)
        return source

    def _person_property(self, scope: list[_Source], prefix: list[str], keys: list[str]) -> exp.Expression:
        source = self._person_source(scope, prefix, "person.properties." + ".".join(keys))
        read = _json_read(_column(source.alias, PERSON_PROPERTIES_COLUMN), keys)
        self.property_refs.append(_PropertyRef(read, "persons", keys[0] if len(keys) == 1 else None))
        return read

    def _person_field(self, scope: list[_Source], prefix: list[str], name: str) -> exp.Expression:
        columns = {"id": "person_id", "created_at": PERSON_CREATED_AT_COLUMN, "properties": PERSON_PROPERTIES_COLUMN}
        if name not in columns:
            raise HogQLQueryError(f"Unknown person field 'person.{name}'. Available: person.id, person.created_at, "
                                  "person.properties.<key>")
        source = self._person_source(scope, prefix, f"person.{name}", joins_persons=name != "id")
        return _column(source.alias, columns[name])

    def _rewrite_functions(self) -> None:
        for node in list(self.tree.find_all(exp.Anonymous, exp.AnonymousAggFunc)):
            name = node.name.lower()
            if name in HOGQL_FUNCTIONS:
                node.replace(HOGQL_FUNCTIONS[name](list(node.expressions)))


def _replace_clock(tree: exp.Expression, now: datetime) -> None:
    instant = now.astimezone(UTC)
    timestamp = exp.Cast(this=exp.Literal.string(instant.isoformat()), to=exp.DataType.build("TIMESTAMPTZ"))
    date = exp.Cast(this=exp.Literal.string(instant.date().isoformat()), to=exp.DataType.build("DATE"))
    for node in list(tree.find_all(exp.Anonymous, exp.CurrentTimestamp, exp.CurrentDate)):
        name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
        if isinstance(node, exp.CurrentTimestamp) or name == "now":
            node.replace(timestamp.copy())
        elif isinstance(node, exp.CurrentDate) or name == "today":
            node.replace(date.copy())


# ------------------------------------------------------------------------------------------- member column

_MEMBER_NAMES: Final[tuple[str, ...]] = ("person_id", "actor_id", "id")


def _branches(tree: exp.Expression) -> Iterator[exp.Select]:
    if isinstance(tree, exp.SetOperation):
        yield from _branches(tree.this)
        yield from _branches(tree.expression)
    elif isinstance(tree, exp.Subquery):
        yield from _branches(tree.this)
    elif isinstance(tree, exp.Select):
        yield tree
    else:
        raise HogQLQueryError(f"Only SELECT queries are allowed, got {_node_name(tree)}")


def _output_names(projection: exp.Expression, sources: list[_Source]) -> list[str]:
    if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and isinstance(projection.this,
                                                                                              exp.Star)):
        if len(sources) == 1 and sources[0].table:
            return list(BASE_TABLES[sources[0].table])
        return []
    return [projection.alias_or_name]


def _choose_member(select: exp.Select, ctes: set[str]) -> tuple[Literal["person", "distinct_id"], exp.Expression]:
    """Spec 7.6: ``person_id``, ``actor_id``, ``id`` by output name; else the person of ``events`` / the id of
    ``persons``; else a ``distinct_id`` column."""
    sources = _sources(select, ctes)
    only = sources[0] if len(sources) == 1 else None
    named: dict[str, exp.Expression] = {}
    for projection in select.expressions:
        is_star = isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star))
        if is_star:
            if only is not None and only.table is not None:
                for name in BASE_TABLES[only.table]:
                    named.setdefault(name, _column(only.alias, name))
            continue
        named.setdefault(projection.alias_or_name, projection.unalias())
    for name in _MEMBER_NAMES:
        if name in named:
            return "person", named[name].copy()
    if only is not None and only.table == "events":
        return "person", _column(only.alias, "person_id")
    if only is not None and only.table == "persons":
        return "person", _column(only.alias, "id")
    if "distinct_id" in named:
        return "distinct_id", named["distinct_id"].copy()
    raise HogQLQueryError("Could not find a person_id, actor_id, id, or distinct_id column in the query")


def _add_member_columns(tree: exp.Expression) -> Literal["person", "distinct_id"]:
    ctes = _cte_names(tree)
    kinds = set()
    for select in _branches(tree):
        kind, expression = _choose_member(select, ctes)
        kinds.add(kind)
        select.select(exp.alias_(expression, MEMBER_COLUMN, quoted=False), copy=False)
    if len(kinds) > 1:
        raise HogQLQueryError("A UNION cannot mix person id and distinct_id columns")
    return kinds.pop()


# ------------------------------------------------------------------------------------------------- compiling


def compile_hogql(text: str, *, now: datetime, limits: QueryLimits = DEFAULT_LIMITS) -> CompiledQuery:
    """Parse and check ``text`` and rewrite it for DuckDB; raise :class:`HogQLQueryError` on anything outside
    the subset (see the module docstring). Needs no data, so a bad query fails before any frame is read."""
    tree = _parse(text, limits)
    tables = _check(tree, limits)
    member_kind = _add_member_columns(tree)
    rewriter = _Rewriter(tree)
    rewriter.run()
    _replace_clock(tree, now)
    return CompiledQuery(tree, tables, rewriter.person_columns, member_kind, rewriter.property_refs)


# -------------------------------------------------------------------------------------------------- running


def _frames(compiled: CompiledQuery, data: ProjectData) -> dict[str, pl.LazyFrame]:
    """The registered tables: only those the query reads, with the person columns it uses."""
    persons = data.persons.select("id", "created_at", "properties")
    distinct_ids = data.person_distinct_ids.select("distinct_id", "person_id")
    person_columns = persons.select(
        pl.col("id").alias("person_id"),
        pl.col("properties").alias(PERSON_PROPERTIES_COLUMN),
        pl.col("created_at").alias(PERSON_CREATED_AT_COLUMN),
    )
    frames: dict[str, pl.LazyFrame] = {}
    if "persons" in compiled.tables:
        frames["persons"] = persons
    if "person_distinct_ids" in compiled.tables:
        frame = distinct_ids
        if "person_distinct_ids" in compiled.person_columns:
            frame = frame.join(person_columns, on="person_id", how="left")
        frames["person_distinct_ids"] = frame
    if "events" in compiled.tables:
        frame = data.events.select("uuid", "event", "distinct_id", "timestamp", "properties").join(
            distinct_ids, on="distinct_id", how="left"
        )
        if "events" in compiled.person_columns:
            frame = frame.join(person_columns, on="person_id", how="left")
        frames["events"] = frame
    return frames


def _property_types(compiled: CompiledQuery, data: ProjectData) -> dict[tuple[str, str], PropertyType]:
    """Decision 2: each property key read by the query is typed from the data it is read from."""
    wanted: dict[str, set[str]] = {}
    for ref in compiled.property_refs:
        if ref.table in ("persons", "events") and ref.key is not None:
            wanted.setdefault(ref.table, set()).add(ref.key)
    frames = {"persons": data.persons, "events": data.events}
    types: dict[tuple[str, str], PropertyType] = {}
    for table, keys in wanted.items():
        for key, kind in infer_property_types(frames[table], keys).items():
            types[(table, key)] = kind
    return types


def _duckdb_message(error: Exception) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return re.sub(r"^(Binder|Parser|Conversion|Invalid Input|Catalog|Out of Range|Not implemented) Error: ",
                  "", first)


def execute_sql(sql: str, frames: Mapping[str, pl.LazyFrame | pl.DataFrame], limits: QueryLimits) -> list[Any]:
    """Run ``sql`` on a sandboxed in-memory DuckDB holding only ``frames``; return the first column.

    The connection cannot touch files or the network and cannot load extensions; it is interrupted once the run
    exceeds ``limits.timeout_seconds``. Errors become :class:`HogQLQueryError` with DuckDB's message.
    """
    import duckdb

    config = {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "memory_limit": limits.memory_limit,
        "threads": limits.threads,
    }
    connection = duckdb.connect(":memory:", config=config)
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        connection.interrupt()

    timer = threading.Timer(limits.timeout_seconds, interrupt)
    try:
        for name, frame in frames.items():
            collected = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
            connection.register(name, collected.to_arrow())
        connection.execute("SET lock_configuration = true")
        timer.start()
        rows = connection.execute(sql).fetchall()
    except duckdb.InterruptException:
        raise HogQLQueryError(
            f"The query ran longer than the limit of {limits.timeout_seconds:g} seconds and was stopped"
        ) from None
    except duckdb.OutOfMemoryException:
        raise HogQLQueryError(f"The query needs more memory than the limit of {limits.memory_limit}") from None
    except duckdb.Error as error:
        if timed_out.is_set():
            raise HogQLQueryError(
                f"The query ran longer than the limit of {limits.timeout_seconds:g} seconds and was stopped"
            ) from None
        raise HogQLQueryError(f"The query failed: {_duckdb_message(error)}") from None
    finally:
        timer.cancel()
        connection.close()
    return [row[0] for row in rows]


def resolve_members(ids: list[Any], kind: Literal["person", "distinct_id"], data: ProjectData) -> list[str]:
    """Member ids as the project's existing person ids (a distinct id resolves to its person), unique, sorted."""
    submitted = pl.LazyFrame({"value": [str(v) for v in ids if v is not None]}, schema={"value": pl.String})
    persons = data.persons.select(pl.col("id").cast(pl.String).alias("person_id"))
    if kind == "distinct_id":
        mapping = data.person_distinct_ids.select(
            pl.col("distinct_id").cast(pl.String).alias("value"), pl.col("person_id").cast(pl.String)
        )
        found = submitted.join(mapping, on="value", how="inner").select("person_id")
    else:
        found = submitted.select(pl.col("value").alias("person_id"))
    members = found.join(persons, on="person_id", how="semi").unique().sort("person_id").collect()
    return members["person_id"].to_list()


def run_hogql_query(
    text: str, data: ProjectData, *, now: datetime, limits: QueryLimits = DEFAULT_LIMITS
) -> list[str]:
    """The person ids a HogQL query selects (spec 7.6), checked, sandboxed and time-limited."""
    compiled = compile_hogql(text, now=now, limits=limits)
    sql = compiled.sql(_property_types(compiled, data))
    ids = execute_sql(sql, _frames(compiled, data), limits)
    return resolve_members(ids, compiled.member_kind, data)


__all__ = [
    "ALLOWED_NODES",
    "BASE_TABLES",
    "DEFAULT_LIMITS",
    "HOGQL_FUNCTIONS",
    "CompiledQuery",
    "HogQLQueryError",
    "QueryLimits",
    "compile_hogql",
    "execute_sql",
    "resolve_members",
    "run_hogql_query",
]
