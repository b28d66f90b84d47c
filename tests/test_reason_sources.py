"""Every reason code in the source is catalogued in certbound.reasons, and every catalogued code is
still emitted somewhere: found by reading the source, so a new free-string code fails here.

Three nets. The reason *sites*: a ``reason=`` argument, the code argument of ``AuthFailure``,
``ForwardedCertError``, ``ChainVerdict`` and ``CertFacts``, a ``REASON_*`` constant, a ``"reason"``
key; a name there that is a parameter is followed to the calls of its function in the same module
(``_invalid_request(..., "nul")`` with ``reason=f"request.{reason}"`` is ``request.nul``), and an
f-string whose variable part cannot be followed is a family (``metadata.<field>``). Then every
string put together at run time (an f-string, ``+``, ``%``, ``str.format``) whose text starts with a
catalogued area, wherever it is: a code built in one module and handed to a helper in another is at
no reason site. Then every string literal shaped like a code of a catalogued area, wherever it is
(codes returned by helpers, kept in variables).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from certbound.reasons import CATALOGUE, OK, is_known, lookup

SRC = Path(__file__).resolve().parents[1] / "src" / "certbound"
#: The catalogue itself, and explain, which only reads codes (it would hide a code no longer emitted).
SKIP = {SRC / "reasons.py"} | set((SRC / "cli" / "explain").glob("*.py"))
CODE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
#: What comes before the variable part of a family's code ("metadata." + name): no text after it, so
#: a message such as f"store.session_secret_file: {exc}" is not taken for a code.
FAMILY_PREFIX = re.compile(r"[a-z][a-z0-9_]*\.[a-z0-9_.#]*")
#: Literals shaped like codes of a catalogued area that are something else.
NOT_CODES = {
    "http.disconnect": "an ASGI message type",
    "server.crt": "a file name",
    "server.key": "a file name",
    "session.key": "a file name (the gateway's session sealing key)",
}
#: Values at reason sites that are not refusals: success, and the counter's label for an unknown code.
MARKERS = {OK: "success", "other": "the client_auth counter's label for a code it does not know"}
#: Calls whose positional argument at this index is a reason code.
CODE_ARGUMENT = {"AuthFailure": 0, "JwtError": 0, "ForwardedCertError": 0, "ChainVerdict": 1, "CertFacts": 1}
DYNAMIC = "*"  # a value the scan cannot follow


@dataclass
class Found:
    codes: dict[str, set[str]] = field(default_factory=dict)  # code -> where
    families: dict[str, set[str]] = field(default_factory=dict)  # area -> where

    def code(self, value: str, where: str) -> None:
        self.codes.setdefault(value, set()).add(where)

    def family(self, area: str, where: str) -> None:
        self.families.setdefault(area, set()).add(where)


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


class Module:
    """One source file, with what following a parameter to its callers needs."""

    def __init__(self, path: Path, root: Path = SRC) -> None:
        self.path = path
        self.where = str(path.relative_to(root))
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.constants = {
            target.id: node.value.value
            for node in self.tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)
        }

    def function_of(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node in self.parent:
            node = self.parent[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return None

    def values(self, expr: ast.expr, depth: int = 0) -> list[str]:
        """The strings `expr` can be, DYNAMIC for what cannot be followed."""
        if depth > 5:
            return [DYNAMIC]
        if isinstance(expr, ast.Constant):
            return [expr.value] if isinstance(expr.value, str) else []
        if isinstance(expr, ast.IfExp):
            return self.values(expr.body, depth + 1) + self.values(expr.orelse, depth + 1)
        if isinstance(expr, ast.JoinedStr):
            return self._fstring(expr, depth)
        if isinstance(expr, ast.BoolOp):
            return [v for operand in expr.values for v in self.values(operand, depth + 1)]
        if isinstance(expr, ast.Name):
            return self._name_values(expr, depth)
        if isinstance(expr, ast.BinOp):
            return self._binop(expr, depth)
        template = _format_template(expr)
        if template is not None:
            return [_head(template, "{") + DYNAMIC]
        if isinstance(expr, ast.Call):
            return self._returned(_name(expr.func), depth)
        return [DYNAMIC]

    def _binop(self, expr: ast.BinOp, depth: int) -> list[str]:
        """``"area." + name`` as an f-string would be; ``"area.%s" % name`` as a family."""
        if isinstance(expr.op, ast.Mod) and isinstance(expr.left, ast.Constant):
            text = expr.left.value
            return [_head(text, "%") + DYNAMIC] if isinstance(text, str) and "%" in text else [DYNAMIC]
        if not isinstance(expr.op, ast.Add):
            return [DYNAMIC]
        out: list[str] = []
        for left in self.values(expr.left, depth + 1):
            for right in self.values(expr.right, depth + 1):
                out.append(DYNAMIC if DYNAMIC in left else left + right)
        return out

    def constructions(self) -> Iterator[ast.expr]:
        """Strings put together at run time (f-strings, ``+``, ``%``, ``str.format``), wherever they
        stand: one whose text starts with a code's area is a code, even away from a reason site."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.JoinedStr | ast.BinOp) or _format_template(node) is not None:
                assert isinstance(node, ast.expr)
                yield node

    def _returned(self, name: str | None, depth: int) -> list[str]:
        """What a function of this module returns (a helper that makes the code)."""
        out: list[str] = []
        for func in ast.walk(self.tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) and func.name == name:
                for node in ast.walk(func):
                    if isinstance(node, ast.Return) and node.value is not None:
                        out += self.values(node.value, depth + 1)
        return out or [DYNAMIC]

    def _fstring(self, expr: ast.JoinedStr, depth: int) -> list[str]:
        parts = expr.values
        if (
            len(parts) == 2
            and isinstance(parts[0], ast.Constant)
            and isinstance(parts[1], ast.FormattedValue)
        ):
            prefix = str(parts[0].value)
            return [prefix + (DYNAMIC if v == DYNAMIC else v) for v in self.values(parts[1].value, depth + 1)]
        return [DYNAMIC]

    def _name_values(self, expr: ast.Name, depth: int) -> list[str]:
        func = self.function_of(expr)
        if func is not None:
            params = [a.arg for a in (*func.args.posonlyargs, *func.args.args)]
            if expr.id in params + [a.arg for a in func.args.kwonlyargs]:
                return self._arguments(func, expr.id, params, depth)
            assigned = [
                node.value
                for node in ast.walk(func)
                if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets)
            ]
            if assigned:
                return [v for value in assigned for v in self.values(value, depth + 1)]
        if expr.id in self.constants:
            return [self.constants[expr.id]]
        return [DYNAMIC]

    def _arguments(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, name: str, params: list[str], depth: int
    ) -> list[str]:
        index = params.index(name) if name in params else None
        if index is not None and params[:1] in (["self"], ["cls"]):
            index -= 1
        out: list[str] = []
        for call in ast.walk(self.tree):
            if not isinstance(call, ast.Call) or _name(call.func) != func.name:
                continue
            args = [k.value for k in call.keywords if k.arg == name]
            if not args and index is not None and index < len(call.args):
                args = [call.args[index]]
            for arg in args:
                out += self.values(arg, depth + 1)
        return out or [DYNAMIC]

    def sites(self) -> Iterator[ast.expr]:
        """The expressions that are reason codes by where they stand."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                yield from (k.value for k in node.keywords if k.arg == "reason")
                index = CODE_ARGUMENT.get(_name(node.func) or "")
                if index is not None and index < len(node.args):
                    yield node.args[index]
                if _name(node.func) == "setdefault" and len(node.args) == 2:
                    key = node.args[0]
                    if isinstance(key, ast.Constant) and key.value == "reason":
                        yield node.args[1]
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.startswith("REASON_"):
                        yield node.value
                    if isinstance(target, ast.Subscript) and _is_reason_key(target.slice):
                        yield node.value
            elif isinstance(node, ast.AnnAssign):
                if isinstance(node.target, ast.Name) and node.target.id.startswith("REASON_") and node.value:
                    yield node.value
            elif isinstance(node, ast.Dict):
                yield from (v for k, v in zip(node.keys, node.values, strict=True) if _is_reason_key(k))

    def literals(self) -> Iterator[str]:
        """Every plain string literal (f-string parts are the sites' business)."""
        inside_fstring = {
            id(part)
            for node in ast.walk(self.tree)
            if isinstance(node, ast.JoinedStr)
            for part in node.values
        }
        for node in ast.walk(self.tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in inside_fstring
            ):
                yield node.value


def _format_template(node: ast.AST) -> str | None:
    """The template of a ``"...".format(...)`` call; None for any other node."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        template = node.func.value
        if isinstance(template, ast.Constant) and isinstance(template.value, str):
            return template.value
    return None


def _head(text: str, marker: str) -> str:
    """The constant text before the first placeholder."""
    return text.partition(marker)[0]


def _is_reason_key(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value == "reason"


def _areas() -> set[str]:
    return {code.partition(".")[0] for code in CATALOGUE}


def scan(root: Path = SRC) -> Found:
    found = Found()
    areas = _areas()
    for path in sorted(root.rglob("*.py")):
        if path in SKIP:
            continue
        module = Module(path, root)
        for site in module.sites():
            for value in module.values(site):
                if value in (DYNAMIC, "") or value in MARKERS:
                    continue  # e.g. `reason=failure.reason`: the code itself is written elsewhere
                if value.endswith(DYNAMIC):
                    found.family(value[: -len(DYNAMIC)].rstrip("."), module.where)
                elif DYNAMIC not in value:
                    found.code(value, module.where)
        for node in module.constructions():
            for value in module.values(node):
                area, dot, rest = value.partition(".")
                if not (dot and area in areas and rest) or value in NOT_CODES:
                    continue  # not shaped like a code of a catalogued area
                if value.endswith(DYNAMIC) and FAMILY_PREFIX.fullmatch(value[:-1]):
                    found.family(area, module.where)
                elif DYNAMIC not in value and CODE.fullmatch(value):
                    found.code(value, module.where)
        for value in module.literals():
            if CODE.fullmatch(value) and value.partition(".")[0] in areas and value not in NOT_CODES:
                found.code(value, module.where)
    return found


FOUND = scan()


def test_the_scan_finds_codes_of_every_kind_of_site() -> None:
    """The scan itself works: codes only a followed parameter, a constant or a family gives."""
    assert "request.nul" in FOUND.codes  # invalid_request(..., "request.nul")
    assert "registration.unknown_client" in FOUND.codes  # _token_not_valid("registration....")
    assert "proxy.untrusted_peer" in FOUND.codes  # REASON_UNTRUSTED_PEER
    assert "request.cancelled" in FOUND.codes  # facts.setdefault("reason", ...)
    assert "cert.invalid" in FOUND.codes  # ChainVerdict(False, "cert.invalid", ...)
    assert {"metadata", "http", "oauth"} <= set(FOUND.families)


#: Codes put together at run time where no reason site or literal shows them: each must still be seen.
BUILT = """
from certbound.errors import OAuthError

def refuse(kind: str) -> OAuthError:
    return OAuthError("invalid_request", "no", reason=REASON)

def concatenated(kind: str) -> None:
    refuse("request." + kind)

def formatted(kind: str) -> None:
    refuse("grant.%s" % kind)

def with_format(kind: str) -> None:
    refuse("scope.{}".format(kind))

def constant_tail() -> None:
    refuse("resource." + "not_a_code")
"""


def test_codes_put_together_at_run_time_are_seen(tmp_path: Path) -> None:
    """A code built by concatenation or formatting and handed to a helper elsewhere is neither at a
    reason site of its module nor a literal: it is still a code (or a family), which the catalogue
    tests then hold to the catalogue. Otherwise OAuthError refuses it at run time: a 500."""
    (tmp_path / "built.py").write_text(BUILT, encoding="utf-8")
    found = scan(tmp_path)
    assert {"request", "grant", "scope"} <= set(found.families)
    assert "resource.not_a_code" in found.codes


def test_every_code_in_the_source_is_catalogued() -> None:
    unknown = {code: sorted(where) for code, where in FOUND.codes.items() if not is_known(code)}
    assert not unknown, f"add these reason codes to certbound/reasons.py: {unknown}"


def test_every_family_in_the_source_is_a_catalogued_family() -> None:
    missing = {
        area: sorted(where)
        for area, where in FOUND.families.items()
        if (entry := lookup(f"{area}.x")) is None or not entry.is_family
    }
    assert not missing, f"codes with a variable part need a family entry (area.<what>): {missing}"


def test_every_catalogued_code_is_still_emitted() -> None:
    stale = [
        code
        for code, entry in CATALOGUE.items()
        if (code.partition(".")[0] not in FOUND.families if entry.is_family else code not in FOUND.codes)
    ]
    assert not stale, f"catalogued but emitted nowhere in src/ (remove them, or fix the scan): {stale}"
