"""Every image the README shows is in the repository (the console's
screenshots under docs/, regenerated from a run of the browser tests)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)[^)]*\)|<img[^>]*\bsrc=[\"']([^\"']+)")


def readme_images():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        return [markdown or html for markdown, html in IMAGE.findall(handle.read())]


def test_every_image_the_readme_references_exists():
    images = readme_images()
    assert "docs/console-overview.png" in images
    missing = [path for path in images if not os.path.isfile(os.path.join(ROOT, path))]
    assert missing == []
