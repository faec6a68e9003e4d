"""Keyboard-only use and small screens: skip link, visible focus, 360 px and 200 % text."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import MemberFactory

REFERENCE = re.compile(r"REG-[0-9A-HJKMNP-TV-Z]{8}")
MEMBER_PAGES = ["/", "/register/", "/recover/", "/support/", "/help/", "/login/"]
NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.mark.parametrize("path", ["/", "/register/", "/help/"])
def test_tab_reaches_the_skip_link_first_and_it_moves_focus_to_main(
    new_page: Callable[..., Any], path: str
) -> None:
    page = new_page("fr")
    page.goto(path)
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert "skip-link" in focused
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0  # visible once focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # The next Tab goes on from the content, not back to the header.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")


def test_every_tab_stop_shows_a_visible_focus_indicator(new_page: Callable[..., Any]) -> None:
    page = new_page("en")
    page.goto("/register/")
    seen = 0
    for _ in range(25):
        page.keyboard.press("Tab")
        style = page.evaluate(
            """() => { const s = getComputedStyle(document.activeElement);
                return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth,
                        s.boxShadow]; }"""
        )
        tag, outline, width, shadow = style
        if tag == "BODY":
            break
        assert (outline != "none" and width != "0px") or shadow != "none", style
        seen += 1
    assert seen >= 10  # the header links, the language switch and every field of the form


def test_an_invalid_form_moves_focus_to_the_error_summary_and_links_to_fields(
    new_page: Callable[..., Any],
) -> None:
    page = new_page("en")
    page.goto("/register/")
    page.fill("#id_last_name", "Martin")
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.evaluate("document.activeElement.id") == "form-errors"
    assert page.get_attribute("#form-errors", "role") == "alert"
    # Kept what was typed; each error link leads to its field, which says it is invalid.
    assert page.input_value("#id_last_name") == "Martin"
    link = page.locator("#form-errors a[href='#id_first_name']")
    link.click()
    assert page.evaluate("document.activeElement.id") == "id_first_name"
    assert page.get_attribute("#id_first_name", "aria-invalid") == "true"
    described = page.get_attribute("#id_first_name", "aria-describedby") or ""
    assert "id_first_name_error" in described.split()
    assert page.locator("#id_first_name_error").inner_text().strip()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_registration_on_a_360_px_phone_shows_the_reference_without_scrolling_sideways(
    new_page: Callable[..., Any], language: str
) -> None:
    member = MemberFactory(member_number="100200300", last_name="Martin", first_name="Zoë")
    page = new_page(language, width=360)
    page.goto("/")
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    page.locator("main a[href='/register/']").last.click()
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    page.fill("#id_member_number", member.member_number)
    page.fill("#id_last_name", "Martin")
    page.fill("#id_first_name", "Zoë")
    page.fill("#id_birth_date", "12/04/1980")
    page.fill("#id_email", "zoe@example.org")
    page.select_option("#id_secret_question", "first_pet")
    page.fill("#id_secret_answer", "Caramel")
    page.check("#id_accept_terms")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/requests/REG-"))
    reference = page.locator(".reference")
    assert REFERENCE.fullmatch(reference.inner_text().strip())
    assert reference.is_visible()
    box = reference.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert page.evaluate(NO_HORIZONTAL_SCROLL)


@pytest.mark.parametrize("path", MEMBER_PAGES)
def test_member_pages_fit_360_px_and_200_percent_text(
    new_page: Callable[..., Any], path: str
) -> None:
    page = new_page("fr", width=360)
    page.goto(path)
    assert page.evaluate(NO_HORIZONTAL_SCROLL), f"{path} scrolls sideways at 360 px"
    # WCAG 1.4.4: text at 200 % on a 640 px window (a 1280 px screen zoomed to 200 %).
    page.set_viewport_size({"width": 640, "height": 900})
    page.evaluate("document.documentElement.style.fontSize = '200%'")
    assert page.evaluate(NO_HORIZONTAL_SCROLL), f"{path} scrolls sideways with 200 % text"


def test_the_language_switch_changes_the_page_language(new_page: Callable[..., Any]) -> None:
    page = new_page("fr")
    page.goto("/help/")
    assert page.get_attribute("html", "lang") == "fr"
    page.locator(".lang-switch button[value=en]").click()
    page.wait_for_load_state()
    assert page.get_attribute("html", "lang") == "en"
    assert page.url.endswith("/help/")
