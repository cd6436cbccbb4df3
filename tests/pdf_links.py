"""Reading a PDF's internal links back with pypdf: where each lands, and which land nowhere."""

from __future__ import annotations

import io

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject


def _name_tree(node: DictionaryObject) -> dict[str, object]:
    found: dict[str, object] = {}
    names = node.get("/Names")
    if names is not None:
        pairs = list(names.get_object())
        found.update({str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs) - 1, 2)})
    for kid in node.get("/Kids", []):
        found.update(_name_tree(kid.get_object()))
    return found


def _named_destinations(reader: PdfReader) -> dict[str, object]:
    """Name -> destination from the catalog's /Dests dictionary and its /Names /Dests tree."""
    root = reader.trailer["/Root"].get_object()
    found: dict[str, object] = {}
    if "/Dests" in root:
        found.update({str(k)[1:]: v for k, v in root["/Dests"].get_object().items()})
    names = root.get("/Names")
    if names is not None and "/Dests" in names.get_object():
        found.update(_name_tree(names.get_object()["/Dests"].get_object()))
    return found


def _page_of(destination: object, pages: dict[int, int]) -> int | None:
    """Index of the page an explicit destination points at, None when it is not one of ours."""
    target = destination.get_object()  # type: ignore[attr-defined]
    if isinstance(target, DictionaryObject):  # a named destination may be wrapped as << /D [...] >>
        target = target["/D"].get_object()
    if not isinstance(target, ArrayObject) or not target:
        return None
    page = target[0]
    return pages.get(page.idnum) if hasattr(page, "idnum") else None


def links(pdf: bytes) -> tuple[dict[str, int], list[str], list[str]]:
    """(named target -> page index it lands on, unresolved internal links, external URIs)."""
    reader = PdfReader(io.BytesIO(pdf))
    pages = {page.indirect_reference.idnum: i for i, page in enumerate(reader.pages)}
    named = _named_destinations(reader)
    landed: dict[str, int] = {}
    unresolved: list[str] = []
    external: list[str] = []
    for number, page in enumerate(reader.pages, start=1):
        for annotation in page.get("/Annots", []):
            link = annotation.get_object()
            if link.get("/Subtype") != "/Link":
                continue
            action = link.get("/A", DictionaryObject()).get_object()
            if action.get("/S") == "/URI":
                external.append(str(action["/URI"]))
                continue
            dest = link.get("/Dest", action.get("/D") if action.get("/S") == "/GoTo" else None)
            if dest is None:
                unresolved.append(f"page {number}: link without a destination")
                continue
            dest = dest.get_object()
            if isinstance(dest, str):
                at = _page_of(named[dest], pages) if dest in named else None
                if at is None:
                    unresolved.append(f"page {number}: #{dest}")
                else:
                    landed[dest] = at
            elif _page_of(dest, pages) is None:
                unresolved.append(f"page {number}: {dest}")
    return landed, unresolved, external
