"""PUT /transformations/run through the HTTP API: the transformed request and console lines, or why it failed.

The run uses the real quickjs-ng engine the container wires; bodies that are rejected before
anything runs share one FastHook per class (`shared`).
"""

from __future__ import annotations

import pytest

from tests.support.factories import make_transformation, running_fasthook

TAGGER = (
    "addHandler('transform', (request, context) => {"
    "  console.log('tagging', request.parsed_query.order);"
    "  request.headers['x-tag'] = process.env.TAG;"
    "  request.body = { ...request.body, total: request.body.amount * 100 };"
    "  return request;"
    "});"
)
SAMPLE = {
    "method": "post",
    "path": "/orders",
    "query": "order=7&x=1",
    "headers": {"Content-Type": "application/json"},
    "body": {"amount": 3},
}
UNKNOWN_ID = "trs_01HZZZZZZZZZZZZZZZZZZZZZZZ"


@pytest.fixture(scope="class")
def shared():
    with running_fasthook() as (client, _clock):
        yield client


def assert_failed(status: int, body: dict, message: str) -> None:
    assert status == 422, body
    assert body["error"] == "TRANSFORMATION_FAILED"
    assert body["message"] == message


# ---- a run that works -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1", "/api/control/v1", ""])
def test_a_run_answers_the_transformed_request_its_console_lines_and_its_duration(api, prefix):
    # When
    status, body = api.as_(api.token, prefix).put(
        "/transformations/run", {"code": TAGGER, "env": {"TAG": "blue"}, "request": SAMPLE}
    )
    # Then
    assert status == 200, body
    assert body["request"] == {
        "method": "POST",
        "path": "/orders",
        "query": "order=7&x=1",
        "headers": {"content-type": "application/json", "x-tag": "blue"},
        "body": {"amount": 3, "total": 300},
    }
    assert body["logs"] == [{"level": "log", "message": "tagging 7"}]
    assert isinstance(body["duration_ms"], (int, float)) and body["duration_ms"] >= 0


def test_a_stored_transformation_runs_with_its_own_env_unless_one_is_given(api):
    # Given
    stored = make_transformation(api, code=TAGGER, env={"TAG": "green"})
    # When
    _, own = api.put("/transformations/run", {"transformation_id": stored["id"], "request": SAMPLE})
    _, given = api.put(
        "/transformations/run", {"transformation_id": stored["id"], "env": {"TAG": "red"}, "request": SAMPLE}
    )
    # Then
    assert own["request"]["headers"]["x-tag"] == "green"
    assert given["request"]["headers"]["x-tag"] == "red"


def test_a_text_body_under_a_json_type_reaches_the_code_parsed(api):
    # Given
    code = "addHandler('transform', (r) => ({ ...r, body: { kind: typeof r.body, id: r.body.id } }));"
    sample = {"headers": {"content-type": "application/json"}, "body": '{"id": 5}'}
    # When
    status, body = api.put("/transformations/run", {"code": code, "request": sample})
    # Then
    assert status == 200, body
    assert body["request"]["body"] == {"kind": "object", "id": 5}
    assert body["request"]["method"] == "POST"


def test_the_run_route_is_not_taken_for_a_transformation_id_and_the_id_routes_still_work(api):
    # Given
    stored = make_transformation(api, code=TAGGER)
    # When
    run_status, run_body = api.put("/transformations/run", {"code": TAGGER, "request": SAMPLE})
    update_status, updated = api.put(f"/transformations/{stored['id']}", {"env": {"TAG": "new"}})
    get_status, _ = api.get("/transformations/run")
    # Then
    assert run_status == 200 and "request" in run_body
    assert update_status == 200 and updated["env"] == {"TAG": "new"}
    assert get_status in (404, 405)


# ---- a run that fails -----------------------------------------------------------------------------


def test_code_that_throws_is_422_with_the_lines_logged_before_it(api):
    # Given
    code = "addHandler('transform', (r) => { console.warn('about to fail'); throw new Error('no amount'); });"
    # When
    status, body = api.put("/transformations/run", {"code": code, "request": SAMPLE})
    # Then
    assert_failed(status, body, "Error: no amount")
    assert body["logs"] == [{"level": "warn", "message": "about to fail"}]


def test_code_that_loops_forever_is_422_and_the_api_keeps_serving(api):
    # Given
    code = "addHandler('transform', (r) => { console.log('looping'); while (true) {} });"
    # When
    status, body = api.put("/transformations/run", {"code": code, "request": SAMPLE})
    # Then
    assert_failed(status, body, "the transformation ran longer than 1 s of CPU time")
    assert body["logs"] == [{"level": "log", "message": "looping"}]
    assert api.put("/transformations/run", {"code": TAGGER, "request": SAMPLE})[0] == 200


def test_code_that_exhausts_memory_is_422(api):
    # Given
    code = "addHandler('transform', (r) => { const all = []; for (;;) all.push('x'.repeat(8192) + all.length); });"
    # When
    status, body = api.put("/transformations/run", {"code": code, "request": SAMPLE})
    # Then
    assert_failed(status, body, "the transformation used more than 64 MiB of memory")


def test_code_that_returns_no_request_is_422(api):
    # When
    status, body = api.put(
        "/transformations/run", {"code": "addHandler('transform', () => 'nope');", "request": SAMPLE}
    )
    # Then
    assert_failed(status, body, "the transformation returned text, not a request object")


def test_an_unknown_transformation_is_404(api):
    # When
    status, body = api.put("/transformations/run", {"transformation_id": UNKNOWN_ID, "request": SAMPLE})
    # Then
    assert status == 404, body
    assert body["error"] == "not_found"


def test_a_run_needs_a_token(anon):
    # When
    status, _ = anon.put("/transformations/run", {"code": TAGGER, "request": SAMPLE})
    # Then
    assert status == 401


class TestRejectedRunBodies:
    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"code": TAGGER}, "request"),
            ({"request": SAMPLE}, "code"),
            ({"code": TAGGER, "transformation_id": UNKNOWN_ID, "request": SAMPLE}, "code"),
            ({"code": "", "request": SAMPLE}, "code"),
            ({"code": 7, "request": SAMPLE}, "code"),
            ({"code": TAGGER, "request": "GET /"}, "request"),
            ({"code": TAGGER, "request": {**SAMPLE, "query": {"a": "1"}}}, "request.query"),
            ({"code": TAGGER, "request": {**SAMPLE, "headers": {"x-n": 1}}}, "request.headers.x-n"),
            ({"code": TAGGER, "request": {**SAMPLE, "method": "GET /x"}}, "request.method"),
            ({"code": TAGGER, "request": {**SAMPLE, "cookies": {}}}, "request.cookies"),
            ({"code": TAGGER, "env": {"N": 1}, "request": SAMPLE}, "env.N"),
            ({"code": TAGGER, "request": SAMPLE, "language": "lua"}, "language"),
        ],
    )
    def test_a_bad_body_is_422_naming_the_field(self, shared, payload, field):
        # When
        status, body = shared.put("/transformations/run", payload)
        # Then
        assert status == 422, body
        assert body["error"] == "validation_error"
        assert body["field"] == field

    def test_a_malformed_transformation_id_is_404(self, shared):
        # When
        status, body = shared.put("/transformations/run", {"transformation_id": "src_nope", "request": SAMPLE})
        # Then
        assert status == 404, body
