"""The quickjs-ng sandbox behind the Transformer port: what user code gets, what it cannot reach, its limits.

The engine runs real JavaScript here (it is in-process and does no IO). Limits that take a second
to breach use the default limits, so the tests show the limits a user gets.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from typing import Any

import pytest

from chalicelib.adapters.quickjs_engine import QuickJsTransformer, SandboxLimits
from chalicelib.domain.transforms import TransformationError, TransformResult, read_transformed_request

CONTEXT = {
    "connection": {"id": "web_01J0000000000000000000000A", "name": "shop-to-erp"},
    "source": {"id": "src_01J0000000000000000000000A", "name": "shop"},
    "destination": {"id": "des_01J0000000000000000000000A", "name": "erp", "type": "HTTP"},
}


def sample_request(**changes: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "path": "/orders/7",
        "query": "a=1&tag=x&tag=y",
        "parsed_query": {"a": "1", "tag": ["x", "y"]},
        "headers": {"content-type": "application/json", "x-shop": "acme"},
        "body": {"amount": 12, "currency": "eur"},
        **changes,
    }


def handler(body: str) -> str:
    return f"addHandler('transform', (request, context) => {{ {body} }});"


@pytest.fixture(scope="module")
def engine() -> QuickJsTransformer:
    return QuickJsTransformer()


def run(engine: QuickJsTransformer, code: str, *, env: dict[str, str] | None = None, **changes: Any) -> TransformResult:
    return engine.transform(code=code, env=env or {}, request=sample_request(**changes), context=CONTEXT)


def failure(engine: QuickJsTransformer, code: str, **kw: Any) -> TransformationError:
    with pytest.raises(TransformationError) as caught:
        run(engine, code, **kw)
    return caught.value


def echo(engine: QuickJsTransformer, expression: str) -> Any:
    """What a JavaScript expression evaluates to inside a transformation (via the returned body)."""
    result = run(engine, handler(f"return {{ ...request, body: {expression} }};"))
    assert isinstance(result.request, dict)
    return result.request["body"]


# ---- what user code gets and gives back -----------------------------------------------------------


def test_the_handler_rewrites_the_body_and_adds_a_header(engine):
    # Given
    code = handler(
        "request.body = { cents: request.body.amount * 100, currency: request.body.currency.toUpperCase() };"
        "request.headers['x-converted'] = 'yes';"
        "return request;"
    )
    # When
    result = run(engine, code)
    # Then
    transformed = read_transformed_request(result, original=sample_request())
    assert transformed["body"] == {"cents": 1200, "currency": "EUR"}
    assert transformed["headers"] == {"content-type": "application/json", "x-shop": "acme", "x-converted": "yes"}
    assert (transformed["method"], transformed["path"], transformed["query"]) == (
        "POST",
        "/orders/7",
        "a=1&tag=x&tag=y",
    )
    assert result.duration_ms >= 0


def test_the_handler_sees_the_whole_request_and_the_context_summaries(engine):
    # When
    seen = echo(engine, "{ request: { ...request }, context }")
    # Then
    assert seen == {"request": sample_request(), "context": CONTEXT}


def test_a_text_body_reaches_the_handler_as_a_string(engine):
    # Given
    code = handler("return { ...request, body: typeof request.body + ':' + request.body };")
    # When
    result = run(engine, code, body="plain text", headers={"content-type": "text/plain"})
    # Then
    assert result.request["body"] == "string:plain text"


def test_an_async_handler_is_awaited(engine):
    # Given
    code = "addHandler('transform', async (request) => { await null; console.info('later'); return {path: '/a'}; });"
    # When
    result = run(engine, code)
    # Then
    assert result.request == {"path": "/a"}
    assert result.logs == [{"level": "info", "message": "later"}]


# ---- env visible, host invisible ------------------------------------------------------------------


def test_the_transformations_env_is_process_env_and_nothing_else_is(engine, monkeypatch):
    # Given
    monkeypatch.setenv("FASTHOOK_SECRET_PROBE", "host-only")
    # When
    seen = run(engine, handler("return { body: process.env };"), env={"RATE": "100", "REGION": "eu"})
    # Then
    assert seen.request["body"] == {"RATE": "100", "REGION": "eu"}


def test_a_change_to_process_env_does_not_outlive_its_run(engine):
    # Given
    code = handler("const before = process.env.RATE; process.env.RATE = 'changed'; return { body: before };")
    # When
    first = run(engine, code, env={"RATE": "100"})
    second = run(engine, code, env={"RATE": "100"})
    # Then
    assert first.request["body"] == second.request["body"] == "100"


@pytest.mark.parametrize(
    "name",
    [
        "require",
        "module",
        "exports",
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "setTimeout",
        "setInterval",
        "setImmediate",
        "clearTimeout",
        "std",
        "os",
        "bjson",
        "scriptArgs",
        "print",
        "performance",
        "Deno",
        "Bun",
    ],
)
def test_no_host_facility_is_defined(engine, name):
    # When
    kind = echo(engine, f"typeof {name}")
    # Then
    assert kind == "undefined"


def test_process_holds_only_env(engine):
    # When
    keys = echo(engine, "Object.getOwnPropertyNames(process)")
    # Then
    assert keys == ["env"]


@pytest.mark.parametrize("module", ["std", "os", "fs", "node:fs", "child_process"])
def test_no_module_can_be_imported(engine, module):
    # Given
    code = (
        "addHandler('transform', async (request) => {"
        f"  try {{ await import({json.dumps(module)}); return {{ body: 'imported' }}; }}"
        "   catch (e) { return { body: String(e) }; }"
        "});"
    )
    # When
    result = run(engine, code)
    # Then
    assert result.request["body"] == f"ReferenceError: could not load module '{module}'"


def test_a_static_import_does_not_even_compile(engine):
    # When
    error = failure(engine, "import * as os from 'os';\n" + handler("return request;"))
    # Then
    assert error.message.startswith("SyntaxError")


def test_atomics_wait_cannot_block_the_worker(engine):
    # Given
    code = handler("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000); return request;")
    # When
    error = failure(engine, code)
    # Then
    assert error.message == "TypeError: cannot block in this thread"


# ---- limits ---------------------------------------------------------------------------------------


def test_an_infinite_loop_is_stopped_at_the_cpu_limit_and_the_next_run_works(engine):
    # Given
    code = handler("console.log('spinning'); for (;;) {}")
    # When
    started = time.monotonic()
    error = failure(engine, code)
    elapsed = time.monotonic() - started
    # Then
    assert error.message == "the transformation ran longer than 1 s of CPU time"
    assert error.logs == [{"level": "log", "message": "spinning"}]
    assert elapsed < 10, "a generous bound: the loop must stop, not hang the worker"
    assert run(engine, code.replace("for (;;) {}", "return request;")).request == sample_request()


def test_an_endless_chain_of_promise_jobs_is_stopped_too(engine):
    # Given
    code = "addHandler('transform', (r) => { const again = () => queueMicrotask(again); again(); return r; });"
    # When
    error = failure(engine, code)
    # Then
    assert error.message == "the transformation ran longer than 1 s of CPU time"


def test_a_memory_hog_is_stopped_at_the_memory_limit_and_the_next_run_works(engine):
    # Given
    code = handler("console.warn('hoarding'); const kept = []; for (;;) kept.push('x'.repeat(4096) + kept.length);")
    # When
    error = failure(engine, code)
    # Then
    assert error.message == "the transformation used more than 64 MiB of memory"
    assert error.logs == [{"level": "warn", "message": "hoarding"}]
    assert run(engine, handler("return request;")).request == sample_request()


def test_deep_recursion_is_a_clear_error(engine):
    # When
    error = failure(engine, handler("const down = (n) => down(n + 1) + 1; return down(0);"))
    # Then
    assert error.message == "the transformation recursed too deeply (maximum call stack size exceeded)"


def test_an_output_above_10_mib_is_rejected(engine):
    # When
    error = failure(engine, handler("console.log('big'); return { ...request, body: 'x'.repeat(10 * 1024 * 1024) };"))
    # Then
    assert error.message == "the transformed request is larger than 10 MiB"
    assert error.logs == [{"level": "log", "message": "big"}]


def test_an_output_just_under_the_limit_is_returned(engine):
    # When
    result = run(engine, handler("return { body: 'x'.repeat(9 * 1024 * 1024) };"))
    # Then
    assert len(result.request["body"]) == 9 * 1024 * 1024


def test_code_above_5_mb_is_rejected_before_it_runs(engine):
    # Given
    code = handler("return request;") + "//" + "x" * (5 * 1024 * 1024)
    # When
    error = failure(engine, code)
    # Then
    assert error.message == "the code is larger than 5 MB"


def test_smaller_limits_can_be_configured():
    # Given
    engine = QuickJsTransformer(SandboxLimits(cpu_time_s=0.2, memory_bytes=8 * 1024 * 1024, output_bytes=1024))
    # When
    slow = failure(engine, handler("for (;;) {}"))
    hungry = failure(engine, handler("const kept = []; for (;;) kept.push('x'.repeat(4096) + kept.length);"))
    wide = failure(engine, handler("return { body: 'x'.repeat(2000) };"))
    # Then
    assert slow.message == "the transformation ran longer than 0.2 s of CPU time"
    assert hungry.message == "the transformation used more than 8 MiB of memory"
    assert wide.message == "the transformed request is larger than 0.0009765625 MiB"


# ---- code that breaks the contract ----------------------------------------------------------------


def test_a_syntax_error_names_itself(engine):
    # When
    error = failure(engine, "addHandler('transform', (request) => { return request; ")
    # Then
    assert error.message.startswith("SyntaxError: ")


def test_code_without_a_transform_handler_says_how_to_register_one(engine):
    # When
    error = failure(engine, "console.log('loaded'); addHandler('other', (r) => r);")
    # Then
    assert error.message == (
        "the code registers no transform handler: call addHandler('transform', (request, context) => request)"
    )
    assert error.logs == [{"level": "log", "message": "loaded"}]


def test_a_thrown_error_is_the_message_and_keeps_the_lines_logged_before_it(engine):
    # Given
    code = handler("console.info('checking', request.body.amount); throw new TypeError('amount must be cents');")
    # When
    error = failure(engine, code)
    # Then
    assert error.message == "TypeError: amount must be cents"
    assert error.logs == [{"level": "info", "message": "checking 12"}]


def test_a_handler_returning_nothing_fails(engine):
    # When
    error = failure(engine, handler("request.body = null;"))
    # Then
    assert error.message == "the transform handler returned undefined; return the request (or a changed copy)"


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("42", "the transformation returned a number, not a request object"),
        ("'text'", "the transformation returned text, not a request object"),
        ("[request]", "the transformation returned a list, not a request object"),
        ("null", "the transformation returned null, not a request object"),
    ],
)
def test_a_handler_returning_something_other_than_an_object_fails_the_check(engine, returned, message):
    # Given
    result = run(engine, handler(f"console.log('returning'); return {returned};"))
    # When
    with pytest.raises(TransformationError) as caught:
        read_transformed_request(result, original=sample_request())
    # Then
    assert caught.value.message == message
    assert caught.value.logs == [{"level": "log", "message": "returning"}]


def test_a_value_json_cannot_hold_fails_clearly(engine):
    # When
    error = failure(engine, handler("return { ...request, body: { big: 10n } };"))
    # Then
    assert error.message.startswith("TypeError")


# ---- console --------------------------------------------------------------------------------------


def test_every_console_level_is_captured_in_order_and_nothing_reaches_the_host_log(engine, capfd):
    # Given
    code = handler(
        "console.log('a', 1, true, null); console.info({k: 'v'}); console.warn([1, 2]);"
        "console.error(new RangeError('bad')); console.debug(undefined); return request;"
    )
    # When
    result = run(engine, code)
    # Then
    assert result.logs == [
        {"level": "log", "message": "a 1 true null"},
        {"level": "info", "message": '{"k":"v"}'},
        {"level": "warn", "message": "[1,2]"},
        {"level": "error", "message": "RangeError: bad"},
        {"level": "debug", "message": "undefined"},
    ]
    assert capfd.readouterr() == ("", "")


def test_console_lines_are_capped_in_number_and_length(engine):
    # Given
    code = handler("console.log('y'.repeat(10000)); for (let i = 0; i < 150; i++) console.debug(i); return request;")
    # When
    result = run(engine, code)
    # Then
    assert len(result.logs) == 101
    assert result.logs[0]["message"] == "y" * 4096 + "…"
    assert result.logs[99] == {"level": "debug", "message": "98"}
    assert result.logs[100] == {
        "level": "warn",
        "message": "51 more console lines were dropped (at most 100 are kept per run)",
    }


def test_many_lines_logged_before_a_failure_are_all_returned(engine):
    # When
    error = failure(engine, handler("for (let i = 0; i < 100; i++) console.log('line ' + i); throw new Error('late');"))
    # Then
    assert [line["message"] for line in error.logs] == [f"line {i}" for i in range(100)]


def test_each_run_starts_with_no_console_lines(engine):
    # Given
    code = handler("console.log('once'); return request;")
    # When
    run(engine, code)
    second = run(engine, code)
    # Then
    assert second.logs == [{"level": "log", "message": "once"}]


# ---- warm contexts --------------------------------------------------------------------------------


def test_the_same_code_and_env_reuse_one_warm_context_with_fresh_top_level_state():
    # Given
    engine = QuickJsTransformer()
    code = "let runs = 0; addHandler('transform', (request) => { runs += 1; return { body: runs }; });"
    # When
    bodies = [run(engine, code, env={"A": "1"}).request["body"] for _ in range(3)]
    # Then
    assert bodies == [1, 1, 1]
    assert engine.warm_count() == 1


def test_other_env_gets_its_own_context_and_the_least_recent_is_dropped():
    # Given
    engine = QuickJsTransformer(SandboxLimits(warm_contexts=2))
    code = handler("return { body: process.env.N };")
    # When
    bodies = [run(engine, code, env={"N": str(n)}).request["body"] for n in (1, 2, 3, 1)]
    # Then
    assert bodies == ["1", "2", "3", "1"]
    assert engine.warm_count() == 2


def test_each_thread_runs_on_contexts_of_its_own():
    # Given
    engine = QuickJsTransformer()
    code = handler("return { body: 'ok' };")
    results: list[Any] = []
    # When
    threads = [threading.Thread(target=lambda: results.append(run(engine, code).request)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then
    assert results == [{"body": "ok"}] * 4
    assert engine.warm_count() == 0  # the calling thread made none


def test_a_small_transformation_runs_warm_and_reports_its_per_call_cost(engine, capsys):
    # Given
    code = handler("request.headers['x-seen'] = '1'; return request;")
    run(engine, code)
    batches = []
    # When
    for _ in range(20):
        started = time.perf_counter()
        for _ in range(200):
            run(engine, code)
        batches.append((time.perf_counter() - started) / 200 * 1e6)
    # Then
    assert run(engine, code).request["headers"]["x-seen"] == "1"
    with capsys.disabled():
        print(
            f"\n[quickjs] warm small transformation: median {statistics.median(batches):.1f} us, "
            f"best batch {min(batches):.1f} us per call"
        )
