"""The dashboard in a real browser: what an operator does every day, from login to a finished bulk retry."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from tests.browser.conftest import Browser, Stack
from tests.support.receiver import Receiver, Response

PHONE = {"width": 390, "height": 844}


def eventually(check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    """The pipeline is asynchronous: wait for what a user would wait for."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"gave up waiting for {check.__doc__ or check}"
            return value
        time.sleep(0.2)


def log_in(b: Browser, stack: Stack) -> Any:
    page = b.page
    page.goto(f"{stack.url}/")
    page.get_by_role("button", name="Log in as demo user").click()
    page.get_by_role("heading", name="Connections").wait_for()
    return page


def events_of(stack: Stack, connection_id: str, status: str) -> list[dict[str, Any]]:
    return stack.ok("GET", f"/events?connection_id={connection_id}&status={status}")["models"]


def test_an_operator_wires_a_connection_and_follows_a_failed_webhook_to_its_attempt_and_retries_it(
    browser: Browser, stack: Stack, receiver: Receiver
) -> None:
    # Given a logged-in operator, and a receiver that fails the first delivery
    page = log_in(browser, stack)
    receiver.script(Response(status=500, body=b'{"error":"try later"}'))
    name = uuid.uuid4().hex[:6]

    # When they create a source, a destination and a connection in the dashboard
    page.get_by_role("link", name="Sources").click()
    page.get_by_role("button", name="New source").click()
    form = page.get_by_role("form", name="New source")
    form.get_by_label("Name").fill(f"ui-src-{name}")
    form.get_by_role("button", name="Create source").click()
    page.get_by_role("cell", name=f"ui-src-{name}", exact=True).wait_for()
    page.get_by_role("link", name="Destinations").click()
    page.get_by_role("button", name="New destination").click()
    form = page.get_by_role("form", name="New destination")
    form.get_by_label("Name").fill(f"ui-dst-{name}")
    form.get_by_label(re.compile("^Config")).fill(f'{{"url": "{receiver.url("/hooks")}"}}')
    form.get_by_role("button", name="Create destination").click()
    page.get_by_role("cell", name=f"ui-dst-{name}", exact=True).wait_for()
    page.get_by_role("link", name="Connections").click()
    page.get_by_role("button", name="New connection").click()
    form = page.get_by_role("form", name="New connection")
    form.get_by_label("Name").fill(f"ui-conn-{name}")
    form.get_by_label("Source", exact=True).select_option(label=f"ui-src-{name}")
    form.get_by_label("Destination", exact=True).select_option(label=f"ui-dst-{name}")
    form.get_by_role("button", name="Create connection").click()
    row = page.get_by_role("row").filter(has_text=f"ui-conn-{name}")
    row.get_by_text("active").wait_for()
    browser.shot("connection-created")

    # And a provider sends a webhook to the source URL the dashboard shows
    source_url = row.locator("code").first.inner_text()
    assert re.fullmatch(rf"{re.escape(stack.url)}/e/src_\w+", source_url)
    request_id = stack.send(source_url.rsplit("/", 1)[1])
    connection_id = stack.ok("GET", f"/connections?name=ui-conn-{name}")["models"][0]["id"]
    eventually(lambda: events_of(stack, connection_id, "failed"))

    # Then they find the request, its event and the failed attempt, with secrets in headers masked
    page.get_by_role("link", name="Requests").click()
    page.get_by_role("link", name=request_id).click()
    detail = page.get_by_role("region", name="Request detail")
    detail.get_by_role("heading", name=f"Request {request_id}").wait_for()
    headers = detail.get_by_label("Headers").inner_text()
    assert '"authorization"' in headers and "provider-secret" not in headers
    assert '"hello": "world"' in detail.get_by_label("Body").inner_text()
    browser.shot("request-detail")
    detail.get_by_role("link", name=re.compile("^evt_")).click()
    event = page.get_by_role("region", name="Event detail")
    event.get_by_text("FAILED").first.wait_for()
    event.get_by_role("link", name=re.compile("^#1")).click()
    attempt = page.get_by_role("region", name="Attempt 1")
    attempt.get_by_text("try later").wait_for()
    assert "500" in attempt.inner_text()
    browser.shot("failed-attempt")

    # When they retry it, and the receiver now answers 200
    event = page.get_by_role("region", name="Event detail")
    event.get_by_role("button", name="Retry now").click()

    # Then the event shows a second, successful attempt
    event.get_by_role("link", name=re.compile("^#2")).wait_for(timeout=30_000)
    assert event.get_by_text("SUCCESSFUL").count() >= 1
    assert [r.header("x-fasthook-attempt-trigger") for r in receiver.wait_for(2)] == ["INITIAL", "MANUAL"]
    browser.shot("retried")
    assert browser.console_errors == []


def test_the_metrics_charts_count_the_webhooks_just_sent(browser: Browser, stack: Stack, receiver: Receiver) -> None:
    # Given the metrics page over the last 15 minutes, and a connection to a receiver
    page = log_in(browser, stack)
    connection = stack.route(receiver)
    page.goto(f"{stack.url}/#/metrics?range=15m&granularity=30s")
    requests_total = page.get_by_role("list", name="Requests totals").locator("[data-measure=accepted_count] strong")
    delivered_total = page.get_by_role("list", name="Events totals").locator("[data-measure=delivered_count] strong")
    before = int(requests_total.inner_text()), int(delivered_total.inner_text())

    # When two webhooks are delivered
    for _ in range(2):
        stack.send(connection["source"]["id"])
    eventually(lambda: len(events_of(stack, connection["id"], "delivered")) == 2)

    # Then the charts count them once the page is shown again
    def counted() -> bool:
        page.get_by_role("button", name="Show").click()
        page.wait_for_timeout(300)
        now = int(requests_total.inner_text()), int(delivered_total.inner_text())
        return now[0] >= before[0] + 2 and now[1] >= before[1] + 2

    eventually(counted, timeout_s=15)
    assert page.locator("svg.chart rect").count() >= 2
    browser.shot("metrics")
    assert browser.console_errors == []


def test_a_bulk_retry_of_the_filtered_failed_events_runs_to_completion_with_live_progress(
    browser: Browser, stack: Stack, receiver: Receiver
) -> None:
    # Given three failed events on one connection
    receiver.answer_always(Response(status=503))
    connection = stack.route(receiver)
    for _ in range(3):
        stack.send(connection["source"]["id"])
    eventually(lambda: len(events_of(stack, connection["id"], "failed")) == 3)
    receiver.answer_always(Response(status=200))
    page = log_in(browser, stack)

    # When the operator filters the events to them and starts a bulk retry
    page.goto(f"{stack.url}/#/events?from=now-1h&status=failed&connection_id={connection['id']}")
    page.get_by_text("3 events match these filters.").wait_for()
    page.get_by_role("button", name="Bulk retry…").click()
    launcher = page.get_by_role("region", name="Bulk retry")
    launcher.get_by_text("Planned: 3 events").wait_for()
    launcher.get_by_role("button", name="Retry 3 events").click()

    # Then the progress bar runs to completion and every event is delivered again
    progress = page.get_by_role("region", name="Bulk retry progress")
    progress.get_by_text("3 of 3 done · 0 failed").wait_for(timeout=30_000)
    progress.get_by_text("completed").wait_for()
    assert progress.get_by_role("progressbar").get_attribute("value") == "3"
    assert progress.get_by_role("button", name="Cancel bulk retry").is_disabled()
    assert len(events_of(stack, connection["id"], "delivered")) == 3
    page.get_by_text("0 events match these filters.").wait_for()
    browser.shot("bulk-completed")
    assert browser.console_errors == []


def test_the_rules_editor_shows_the_api_validation_message_naming_the_field(
    browser: Browser, stack: Stack, receiver: Receiver
) -> None:
    # Given a connection being edited
    connection = stack.route(receiver)
    page = log_in(browser, stack)
    row = page.get_by_role("row").filter(has_text=connection["name"])
    row.get_by_role("button", name="Edit").click()
    form = page.get_by_role("form", name=f"Edit connection {connection['name']}")

    # When a retry rule with too many retries is saved
    form.get_by_role("button", name="Add retry").click()
    rules = form.get_by_label("Rules (JSON array)")
    rules.fill(rules.input_value().replace('"count": 5', '"count": 500'))
    form.get_by_role("button", name="Save").click()

    # Then the API's message is shown, naming the rule's field, and nothing was saved
    alert = form.get_by_role("alert")
    alert.wait_for()
    assert "rules[0].count" in alert.inner_text()
    assert stack.ok("GET", f"/connections/{connection['id']}")["rules"] == []
    browser.shot("rules-error")

    # And once corrected, the rule is saved and listed
    rules.fill(rules.input_value().replace('"count": 500', '"count": 5'))
    form.get_by_role("button", name="Save").click()
    page.get_by_text(f"connection {connection['name']} saved").wait_for()
    page.get_by_role("row").filter(has_text=connection["name"]).get_by_text("retry", exact=True).wait_for()
    assert [rule["count"] for rule in stack.ok("GET", f"/connections/{connection['id']}")["rules"]] == [5]
    assert [e for e in browser.console_errors if "status of 4" not in e] == []


def test_the_transformation_run_panel_shows_the_output_and_console_lines(browser: Browser, stack: Stack) -> None:
    # Given the editor of a new transformation with its sample code
    page = log_in(browser, stack)
    page.get_by_role("link", name="Transformations").click()
    page.get_by_role("link", name="New transformation").click()

    # When the operator runs it on the sample request
    panel = page.get_by_role("region", name="Run panel")
    panel.get_by_role("button", name="Run").click()

    # Then the transformed request and the code's console line are shown
    output = panel.get_by_label("Transformed request")
    output.wait_for()
    assert '"x-transformed": "yes"' in output.inner_text()
    assert panel.get_by_label("Console lines").inner_text().strip() == "[log] received POST /"
    browser.shot("transformation-run")

    # And once saved, its page lists its executions (none yet: no connection has run it)
    page.get_by_label("Name").fill(f"ui-trs-{uuid.uuid4().hex[:6]}")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("region", name="Recent executions").get_by_text("No executions yet").wait_for()
    assert browser.console_errors == []


def test_project_secrets_stay_masked_until_revealed_and_rotate_replaces_the_signing_secret(
    browser: Browser, stack: Stack
) -> None:
    # Given the secrets page
    page = log_in(browser, stack)
    before = stack.ok("GET", "/project-secrets")["signing_secret"]["value"]
    page.get_by_role("link", name="Secrets").click()
    section = page.get_by_role("region", name="Signing secret")
    value = section.locator("[data-secret=signing_secret]")
    value.wait_for()

    # Then the value is masked until revealed
    assert before not in page.content()
    section.get_by_role("button", name="Reveal").click()
    assert value.inner_text() == before

    # When it is rotated
    page.once("dialog", lambda dialog: dialog.accept())
    section.get_by_role("button", name="Rotate").click()
    page.get_by_text("Signing secret rotated").wait_for()

    # Then a new value is in force, and shown masked again
    after = stack.ok("GET", "/project-secrets")["signing_secret"]
    assert after["value"] != before
    shown = page.get_by_role("region", name="Signing secret").locator("[data-secret=signing_secret]").inner_text()
    assert shown == after["masked_value"] != after["value"]
    assert browser.console_errors == []


def test_the_dashboard_is_readable_on_a_390_px_wide_phone(browser: Browser, stack: Stack, receiver: Receiver) -> None:
    # Given a phone-sized window and some data to show
    stack.route(receiver)
    browser.page.set_viewport_size(PHONE)
    page = log_in(browser, stack)

    # When each main page is shown
    widths = {}
    for name in ("connections", "requests", "events", "metrics", "secrets"):
        page.goto(f"{stack.url}/#/{name}")
        page.get_by_role("heading", level=1).first.wait_for()
        page.wait_for_load_state("networkidle")
        widths[name] = page.evaluate("document.documentElement.scrollWidth")
        off_screen = page.evaluate(
            "[...document.querySelectorAll('main button, main a, main code')]"
            ".filter((el) => el.getBoundingClientRect().right > innerWidth).map((el) => el.textContent)"
        )
        assert off_screen == [], (name, off_screen)
        browser.shot(f"phone-{name}")

    # Then nothing is wider than the screen, and the navigation is reachable
    assert widths == dict.fromkeys(widths, PHONE["width"])
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Events").is_visible()
    assert browser.console_errors == []


def test_a_connection_is_paused_unpaused_disabled_and_enabled_from_its_row_and_its_url_copied(
    browser: Browser, stack: Stack, receiver: Receiver
) -> None:
    # Given a connection in the list
    connection = stack.route(receiver)
    browser.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = log_in(browser, stack)
    row = page.get_by_role("row").filter(has_text=connection["name"])

    # When the operator copies its source URL
    row.get_by_role("button", name="Copy URL").click()

    # Then the clipboard holds the URL providers must call
    row.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == connection["source"]["url"]

    # When they pause, unpause, disable and enable it, the row and the API agree at each step
    for button, shown in [("Pause", "paused"), ("Unpause", "active"), ("Disable", "disabled"), ("Enable", "active")]:
        row.get_by_role("button", name=button, exact=True).click()
        page.get_by_role("status").filter(has_text=f"{connection['name']} {button.lower()}d").wait_for()
        row.get_by_text(shown, exact=True).wait_for()
        stored = stack.ok("GET", f"/connections/{connection['id']}")
        assert (bool(stored["paused_at"]), bool(stored["disabled_at"])) == (shown == "paused", shown == "disabled")
    assert browser.console_errors == []


def tab_to(page: Any, text: str, key: str = "Tab", limit: int = 20) -> None:
    """Press Tab (or Shift+Tab) until the focused element reads `text`, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"{text!r} is not reachable with Tab")


def test_the_dashboard_is_usable_with_the_keyboard_alone_and_shows_where_focus_is(
    browser: Browser, stack: Stack
) -> None:
    # Given the login page
    page = browser.page
    page.goto(f"{stack.url}/")
    page.get_by_role("button", name="Log in as demo user").wait_for()

    # When the operator logs in and opens the events page with Tab and Enter only
    tab_to(page, "Log in as demo user")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Connections").wait_for()
    tab_to(page, "Events", key="Shift+Tab")  # focus is on the page's content; the navigation is before it
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    page.keyboard.press("Enter")

    # Then the events page is shown, and the focused link was visibly outlined
    page.get_by_role("heading", name="Events", level=1).wait_for()
    assert outline != "none"
    assert browser.console_errors == []
