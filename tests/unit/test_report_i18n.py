"""Translation catalogues: complete in every language, same placeholders, honest about review."""

from __future__ import annotations

import re

import pytest

from orchestrator.reports import render_html
from orchestrator.reports.annex import annexes
from orchestrator.reports.i18n import (
    I18N_DIR,
    LANGUAGES,
    SOURCE_LANGUAGE,
    CatalogueError,
    catalogue,
    jurisdiction,
    placeholders,
)
from orchestrator.reports.sample import sample_report

EXPECTED_ANNEX_LANGUAGES = {
    "SG": ("en",),
    "MY": ("ms",),
    "TH": ("th",),
    "ID": ("id",),
    "PH": ("fil",),
    "VN": ("vi",),
}
SCRIPTS = {"th": "[\u0e00-\u0e7f]", "vi": "[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]"}


def test_every_language_has_a_catalogue() -> None:
    assert set(LANGUAGES) == {"en", "th", "vi", "id", "ms", "fil"}
    assert {p.stem for p in I18N_DIR.glob("*.yaml")} == {*LANGUAGES, "jurisdictions"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_is_present_with_the_same_placeholders(language: str) -> None:
    source, target = catalogue(SOURCE_LANGUAGE).texts, catalogue(language).texts
    assert set(target) == set(source), (
        f"{language}: missing {set(source) - set(target)}, extra {set(target) - set(source)}"
    )
    for key, text in source.items():
        assert placeholders(target[key]) == placeholders(text), f"{language}:{key}"
        assert target[key].strip(), f"{language}:{key} is empty"


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE])
def test_machine_translations_say_so(language: str) -> None:
    raw = (I18N_DIR / f"{language}.yaml").read_text(encoding="utf-8")
    header = "".join(line for line in raw.splitlines(keepends=True)[:6] if line.startswith("#"))
    assert "MACHINE-QUALITY TRANSLATION" in header and "native-speaking regulators" in header
    t = catalogue(language)
    assert not t.reviewed and t("_meta.review").startswith("machine")
    assert t("annex.translation") != catalogue(SOURCE_LANGUAGE)("annex.translation")


@pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != SOURCE_LANGUAGE])
def test_translations_are_translated(language: str) -> None:
    t, en = catalogue(language), catalogue(SOURCE_LANGUAGE)
    for key in (
        "heading.summary",
        "heading.results",
        "verdict.fail",
        "summary.counts",
        "annex.authoritative",
    ):
        assert t(key) != en(key), f"{language}:{key} is the English text"
        if language in SCRIPTS:
            assert re.search(SCRIPTS[language], t(key)), f"{language}:{key} is not in its script"


def test_each_jurisdiction_gets_its_annex_language() -> None:
    for code, languages in EXPECTED_ANNEX_LANGUAGES.items():
        assert jurisdiction(code).languages == languages
    assert jurisdiction("XX").languages == (SOURCE_LANGUAGE,)
    assert jurisdiction("TH").local_class("C") == "Class 3"
    assert jurisdiction("VN").local_class("b") == "Type B"


def test_unknown_language_or_key_is_a_clear_error() -> None:
    with pytest.raises(CatalogueError, match="no catalogue"):
        catalogue("my")
    with pytest.raises(CatalogueError, match="no key"):
        catalogue("th")("heading.nothing")


def test_annexes_are_written_in_their_language() -> None:
    report = sample_report()
    built = {x.code: x for x in annexes(report)}
    assert [(x.code, x.language) for x in built.values()] == [
        (c, ls[0]) for c, ls in EXPECTED_ANNEX_LANGUAGES.items()
    ]
    th = built["TH"]
    assert th.title == "ภาคผนวก TH: ประเทศไทย"
    assert th.summary[-1].startswith("เกณฑ์ที่ไม่ผ่าน:")
    assert th.rows[0].outcome_text in ("ผ่าน", "ไม่ผ่าน")
    html = render_html(report)
    for x in built.values():
        assert f'id="annex-{x.code}-{x.language}" lang="{x.language}"' in html
    assert catalogue("vi")("annex.authoritative") in html
    assert catalogue("th")("verdict.fail") in html
