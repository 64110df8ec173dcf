"""Transformations that try to climb out of the quickjs-ng sandbox.

test_quickjs_engine.py shows the host facilities are absent (`require`, `fetch`, `std`, imports).
These tests try the classic ways around that: reaching the global object through constructors,
indirect eval and generator/async function constructors, probing `process` for Node's escape
hatches, and leaving traps (prototype pollution, replaced runner functions) for the next run or the
next team's code. No route may lead anywhere but the same bare global object.
"""

from __future__ import annotations

import pytest

from chalicelib.adapters.quickjs_engine import QuickJsTransformer
from tests.unit.test_quickjs_engine import echo, handler, run

# The language's own globals (ECMAScript and what quickjs-ng ships of the web platform's pure ones)
# and the three names a transformation is promised: anything else on the global object is a leak.
LANGUAGE = {
    "Object", "Function", "Error", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError",
    "URIError", "InternalError", "AggregateError", "SuppressedError", "Iterator", "Array", "parseInt",
    "parseFloat", "isNaN", "isFinite", "queueMicrotask", "decodeURI", "decodeURIComponent", "encodeURI",
    "encodeURIComponent", "escape", "unescape", "Infinity", "NaN", "undefined", "eval", "Number", "Boolean",
    "String", "Math", "Reflect", "Symbol", "DisposableStack", "globalThis", "BigInt", "Date", "RegExp", "JSON",
    "Proxy", "Map", "Set", "WeakMap", "WeakSet", "ArrayBuffer", "SharedArrayBuffer", "Uint8ClampedArray",
    "Int8Array", "Uint8Array", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "BigInt64Array",
    "BigUint64Array", "Float16Array", "Float32Array", "Float64Array", "DataView", "Atomics", "Promise",
    "AsyncDisposableStack", "WeakRef", "FinalizationRegistry", "DOMException", "btoa", "atob",
    "Symbol(Symbol.toStringTag)",
}  # fmt: skip
PROMISED = {"console", "addHandler", "process"}
# The runner's own entry points: plain JS functions, sealed (not writable, not configurable).
RUNNER = {"__fasthook_compile__", "__fasthook_run__", "__fasthook_settle__", "__fasthook_logs__"}

ESCAPES = [
    "Function('return this')()",
    "(0, eval)('this')",
    "request.constructor.constructor('return this')()",
    "context.constructor.constructor('return globalThis')()",
    "console.log.constructor('return this')()",
    "addHandler.constructor('return this')()",
    "[].constructor.constructor('return this')()",
    "(function* () {}).constructor('yield this')().next().value",
    "Object.getPrototypeOf(async function () {}).constructor.constructor('return this')()",
    "new Proxy({}, {}).constructor.constructor('return this')()",
    "Reflect.construct(Function, ['return this'])()",
    "Object.getOwnPropertyDescriptor(globalThis, 'process').value.constructor.constructor('return this')()",
]


@pytest.fixture(scope="module")
def engine() -> QuickJsTransformer:
    return QuickJsTransformer()


def test_the_global_object_holds_only_the_language_and_what_a_transformation_is_promised(engine):
    # When
    names = set(echo(engine, "Reflect.ownKeys(globalThis).map(String)"))

    # Then
    assert names - LANGUAGE - PROMISED - RUNNER == set()


@pytest.mark.parametrize("escape", ESCAPES)
def test_every_way_to_the_global_object_leads_to_the_same_bare_one(engine, escape):
    # When
    found = echo(
        engine,
        f"(() => {{ const g = {escape}; return {{"
        "  same: g === globalThis,"
        "  names: Reflect.ownKeys(g).length === Reflect.ownKeys(globalThis).length,"
        "  host: ['std', 'os', 'require', 'module', 'fetch', 'Deno', 'Bun'].filter((k) => typeof g[k] !== 'undefined'),"
        "}; })()",
    )

    # Then
    assert found == {"same": True, "names": True, "host": []}


def test_process_has_none_of_nodes_escape_hatches(engine):
    # Given
    hatches = ["binding", "_linkedBinding", "dlopen", "exit", "kill", "mainModule", "cwd", "pid", "versions", "stdout"]

    # When
    kinds = echo(engine, f"{hatches!r}.map((k) => typeof process[k])")

    # Then
    assert kinds == ["undefined"] * len(hatches)


def test_the_runners_functions_cannot_be_replaced_to_forge_a_result(engine):
    # Given: code that tries to swap the runner and the JSON the runner answers with
    code = (
        "try { globalThis.__fasthook_run__ = () => 'R[]\\n{\"forged\":true}'; } catch (e) {}\n"
        "try { Object.defineProperty(globalThis, '__fasthook_settle__', { value: () => 'F' }); } catch (e) {}\n"
        "JSON.stringify = () => '{\"forged\":true}';\n" + handler("return { ...request, body: { ran: true } };")
    )

    # When
    first = run(engine, code)
    second = run(engine, code)

    # Then
    assert first.request["body"] == {"ran": True} and "forged" not in first.request
    assert second.request["body"] == {"ran": True}


def test_a_polluted_prototype_does_not_reach_another_transformation(engine):
    # Given: one team's code leaves traps on the shared built-ins it can reach
    trap = (
        "Object.prototype.polluted = 'yes'; Array.prototype.map = () => ['hijacked'];\n"
        "process.env.LEAK = 'from-a';\n" + handler("return request;")
    )
    run(engine, trap, env={"A_SECRET": "a-value"})

    # When: another transformation runs next on the same engine
    seen = echo(engine, "({ polluted: ({}).polluted, mapped: [1, 2].map((x) => x * 2), env: process.env })")

    # Then
    assert seen == {"mapped": [2, 4], "env": {}}


def test_a_thrown_host_looking_object_does_not_reach_python(engine):
    # Given: errors whose messages and names look like host paths or Python objects
    code = handler("throw Object.assign(new Error('/etc/passwd'), { name: '__import__(\"os\")' });")

    # When
    with pytest.raises(Exception) as caught:
        run(engine, code)

    # Then: the failure is a plain message about the user's error, nothing was imported or read
    assert "/etc/passwd" in str(caught.value)
    assert type(caught.value).__module__.startswith("chalicelib")
