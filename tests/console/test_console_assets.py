"""The console's templates and static files reference no asset on another
host (issue 16): no ``http://``, ``https://`` or protocol-relative ``//``
in a ``src``, an ``href`` or a CSS ``url()``."""
import os
import re

import console

ROOT = os.path.dirname(console.__file__)
FOLDERS = [os.path.join(ROOT, "templates"), os.path.join(ROOT, "static")]
REFERENCE = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']?|\burl\(\s*["']?)\s*((?:https?:)?//[^"')\s>]*)""", re.I)


def files():
    for folder in FOLDERS:
        for directory, _, names in os.walk(folder):
            for name in names:
                yield os.path.join(directory, name)


def off_host_references(text):
    return REFERENCE.findall(text)


def test_the_pattern_finds_every_kind_of_off_host_reference():
    sample = ('<script src="https://cdn.example/x.js"></script><link href=\'//fonts.example/f.css\'>'
              '<img src=http://img.example/a.png> body { background: url( "//x.example/b.png") }')
    assert off_host_references(sample) == ["https://cdn.example/x.js", "//fonts.example/f.css",
                                           "http://img.example/a.png", "//x.example/b.png"]
    assert off_host_references('<a href="/console/users">  url("/console/static/a.svg")') == []


def test_console_templates_and_static_files_reference_nothing_off_host():
    checked = list(files())
    assert any(path.endswith(".html") for path in checked) and any(path.endswith(".css") for path in checked)
    found = {}
    for path in checked:
        if path.endswith((".html", ".css", ".js", ".svg")):
            with open(path, encoding="utf-8") as handle:
                references = off_host_references(handle.read())
            if references:
                found[os.path.relpath(path, ROOT)] = references
    assert found == {}
