"""OpenDocument files: writing a task's start files (odfpy) and reading what the agent saved.

Reading goes straight to `content.xml` with ElementTree: a checker wants cell values, formulas,
bold text, paragraphs and tables, and gets each in a few lines. A file that is missing or not
an OpenDocument file reads as empty, which no checker accepts.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

NS = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "fo": "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
}


def _q(tag: str) -> str:
    ns, _, local = tag.partition(":")
    return f"{{{NS[ns]}}}{local}"


@dataclass
class Cell:
    text: str = ""
    formula: str = ""
    style: str = ""
    bold: bool = False


@dataclass
class Sheet:
    name: str
    rows: list[list[Cell]] = field(default_factory=list)

    def cell(self, ref: str) -> Cell:
        col = ord(ref[0].upper()) - ord("A")
        row = int(ref[1:]) - 1
        if row < len(self.rows) and col < len(self.rows[row]):
            return self.rows[row][col]
        return Cell()

    def column(self, letter: str) -> list[str]:
        i = ord(letter.upper()) - ord("A")
        return [r[i].text if i < len(r) else "" for r in self.rows]


def _content(path: Path) -> ET.Element | None:
    try:
        with zipfile.ZipFile(path) as z:
            return ET.fromstring(z.read("content.xml"))
    except (OSError, KeyError, zipfile.BadZipFile, ET.ParseError):
        return None


def _bold_styles(root: ET.Element) -> set[str]:
    out = set()
    for st in root.iter(_q("style:style")):
        props = st.find(_q("style:text-properties"))
        if props is not None and props.get(_q("fo:font-weight")) == "bold":
            out.add(st.get(_q("style:name"), ""))
    return out


def _text_of(el: ET.Element) -> str:
    return "\n".join("".join(p.itertext()) for p in el.iter(_q("text:p")))


def read_sheets(path: Path) -> list[Sheet]:
    root = _content(path)
    if root is None:
        return []
    bold = _bold_styles(root)
    sheets = []
    for t in root.iter(_q("table:table")):
        sheet = Sheet(t.get(_q("table:name"), ""))
        for row in t.iter(_q("table:table-row")):
            cells: list[Cell] = []
            for c in row:
                if c.tag not in (_q("table:table-cell"), _q("table:covered-table-cell")):
                    continue
                style = c.get(_q("table:style-name"), "")
                cell = Cell(_text_of(c), c.get(_q("table:formula"), ""), style, style in bold)
                n = int(c.get(_q("table:number-columns-repeated"), "1"))
                cells += [cell] * min(n, 64)  # an empty row's tail repeats to column 1024
            while cells and cells[-1] == Cell():
                cells.pop()
            n_rows = int(row.get(_q("table:number-rows-repeated"), "1"))
            sheet.rows += [cells] * (min(n_rows, 64) if cells else 1)
        while sheet.rows and not sheet.rows[-1]:
            sheet.rows.pop()
        sheets.append(sheet)
    return sheets


@dataclass
class TextDoc:
    paragraphs: list[str] = field(default_factory=list)  # body paragraphs and headings
    bold_spans: list[str] = field(default_factory=list)  # text that is bold (span or paragraph)
    tables: list[list[list[str]]] = field(default_factory=list)  # rows of cell texts
    headings: list[str] = field(default_factory=list)


def read_text(path: Path) -> TextDoc:
    root = _content(path)
    doc = TextDoc()
    if root is None:
        return doc
    bold = _bold_styles(root)
    body = root.find(f"{_q('office:body')}/{_q('office:text')}")
    if body is None:
        return doc
    for el in body.iter():
        if el.tag in (_q("text:p"), _q("text:h")):
            text = "".join(el.itertext())
            doc.paragraphs.append(text)
            if el.tag == _q("text:h"):
                doc.headings.append(text)
            if el.get(_q("text:style-name"), "") in bold and text:
                doc.bold_spans.append(text)
        elif el.tag == _q("text:span") and el.get(_q("text:style-name"), "") in bold:
            doc.bold_spans.append("".join(el.itertext()))
        elif el.tag == _q("table:table"):
            rows = [
                [_text_of(c) for c in r if c.tag == _q("table:table-cell")]
                for r in el.iter(_q("table:table-row"))
            ]
            doc.tables.append(rows)
    return doc


# -- writing start files ------------------------------------------------------------------
def write_sheet(path: Path, rows: list[list[str | float]], name: str = "Sheet1") -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name=name)
    for row in rows:
        tr = TableRow()
        for value in row:
            if isinstance(value, (int, float)):
                tc = TableCell(valuetype="float", value=value)
            else:
                tc = TableCell(valuetype="string")
            tc.addElement(P(text=str(value)))
            tr.addElement(tc)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))


def write_text(path: Path, paragraphs: list[str]) -> None:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    for p in paragraphs:
        doc.text.addElement(P(text=p))
    doc.save(str(path))
