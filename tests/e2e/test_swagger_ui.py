"""Swagger UI at /docs in a real browser (Debian's headless Chromium): the page loads from the stack alone,
lists every route of the document, and "Try it out" with a user's token reserves a V2 seat (202)."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Page, Request, sync_playwright

from couponcore.domain.clock import to_iso_z, utc_now
from localdev.jwt_local import mint
from tests.support.tokens import ADMIN

pytestmark = pytest.mark.usefixtures("clean_state")

# What a sandboxed root session needs, and no calls home (this machine's network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed (scripts/services.sh browser installs Debian's package)")
    return path


def new_v2_coupon(api_url: str) -> int:
    now = utc_now()
    body = {
        "title": "docs",
        "totalQuantity": 10,
        "discountAmount": 1000,
        "minAvailableAmount": 0,
        "dateIssueStart": to_iso_z(now - timedelta(minutes=1)),
        "dateIssueEnd": to_iso_z(now + timedelta(hours=1)),
    }
    response = httpx.post(f"{api_url}/coupons", json=body, headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def authorize(page: Page, token: str) -> None:
    page.click("button.btn.authorize")
    page.fill(".auth-container input", token)
    page.click(".auth-btn-wrapper button.authorize")
    page.click(".auth-btn-wrapper button.btn-done")


def try_it_out(page: Page, method: str, path: str, body: dict[str, object]) -> tuple[str, str]:
    operation = page.locator(f".opblock-{method}", has=page.locator(f"[data-path='{path}']"))
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("textarea.body-param__text").fill(json.dumps(body))
    operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table tr.response").first
    answer.wait_for(timeout=15_000)
    status = answer.locator(".response-col_status").inner_text().strip()
    return status, answer.locator(".response-col_description").inner_text()


def test_the_page_is_served_compressed_or_not(api_url: str) -> None:
    """Chromium asks for gzip (about 450 KB); curl does not (about 1.5 MB, inside Lambda's 6 MB)."""
    for encoding in ("gzip", "identity"):
        page = httpx.get(f"{api_url}/docs", headers={"Accept-Encoding": encoding}, timeout=30)
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text, encoding


def test_swagger_ui_lists_every_route_and_tries_a_v2_issue(api_url: str) -> None:
    document = httpx.get(f"{api_url}/openapi.json", timeout=10).json()
    expected = {f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops}
    coupon_id = new_v2_coupon(api_url)
    elsewhere: list[str] = []

    def remember_foreign(request: Request) -> None:
        if not request.url.startswith((api_url, "data:", "blob:")):
            elsewhere.append(request.url)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", remember_foreign)
            page.goto(f"{api_url}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=15_000)
            listed = {
                f"{block.locator('.opblock-summary-method').inner_text().strip()} "
                f"{block.locator('.opblock-summary-path').get_attribute('data-path')}"
                for block in page.locator(".opblock").all()
            }
            assert listed == expected
            authorize(page, mint({"sub": "42"}))
            status, answered = try_it_out(page, "post", "/v2/issue-async", {"couponId": coupon_id, "userId": 42})
        finally:
            browser.close()
    assert status == "202", answered
    assert elsewhere == []  # no CDN: every asset came from the stack
    held = httpx.get(
        f"{api_url}/coupons/{coupon_id}/issues/42", headers={"Authorization": f"Bearer {mint({'sub': '42'})}"}
    )
    assert held.json()["status"] in ("RESERVED", "ISSUED")
