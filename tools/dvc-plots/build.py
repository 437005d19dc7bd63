"""Build ``offline.html``, the page template of ``dvc plots show`` (``plots.html_template`` in
.dvc/config), with vega, vega-lite and vega-embed inlined from the npm packages pinned in
package-lock.json: DVC's own page loads them from a CDN, so its plots were blank offline.

Run by ``make plots-template`` after ``npm ci``; the built file is committed so that a checkout
without node still renders plots offline. All three packages are BSD-3-Clause (vega's bundled
d3 modules: ISC), which allows redistribution with the notice: LICENSES.txt, and a comment at
the top of the page.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "vega/build/vega.min.js",
    "vega-lite/build/vega-lite.min.js",
    "vega-embed/build/vega-embed.min.js",
)
PAGE = """<!DOCTYPE html>
<html>
<head>
<!-- {notice} -->
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot (offline)</title>
{inline}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def licences(modules: Path) -> str:
    """Every installed package's name, version, licence and licence text: the minified bundles
    may hold code of any of them, and their licences ask for the notice to travel with it."""
    parts = []
    for meta_path in sorted(modules.glob("**/package.json")):
        folder = meta_path.parent
        if folder.parent.name != "node_modules" and folder.parent.parent.name != "node_modules":
            continue  # a package's own sub-folders (build/, src/) are not packages
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if "name" not in meta or "version" not in meta:
            continue
        text = next(
            (f.read_text(encoding="utf-8", errors="replace").strip() for f in sorted(folder.iterdir())
             if f.name.upper().startswith(("LICENSE", "LICENCE", "COPYING"))),
            "(no licence file in the package; licence as declared)",
        )  # fmt: skip
        parts.append(f"=== {meta['name']}@{meta['version']} ({meta.get('license')}) ===\n{text}\n")
    return "\n".join(parts)


def build(modules: Path, out: Path) -> str:
    """Write the template; returns the package versions it holds, e.g. ``vega@5.33.1 ...``."""
    versions, inline = [], []
    for rel in SCRIPTS:
        package = rel.split("/")[0]
        meta = json.loads((modules / package / "package.json").read_text(encoding="utf-8"))
        versions.append(f"{package}@{meta['version']} ({meta['license']})")
        code = (modules / rel).read_text(encoding="utf-8")
        if "</script" in code.lower() or "{plot_divs}" in code:
            raise SystemExit(
                f"{rel}: holds '</script' or '{{plot_divs}}'; it cannot be inlined as is"
            )
        code = "\n".join(
            line for line in code.splitlines() if not line.startswith("//# sourceMappingURL=")
        )  # the .map files are not inlined
        inline.append(f'    <script data-package="{package}@{meta["version"]}">{code}</script>')
    notice = (
        "Inlined: " + ", ".join(versions) + "; copyright University of Washington Interactive"
        " Data Lab, licence texts in tools/dvc-plots/LICENSES.txt. Built by tools/dvc-plots/build.py."
    )
    # {refresh_tag} and {plot_divs} stay for DVC to fill; no {scripts}: DVC would add CDN tags
    page = PAGE.replace("{{plot_divs}}", "\0").format(
        notice=notice, refresh_tag="{refresh_tag}", inline="\n".join(inline)
    )
    out.write_text(page.replace("\0", "{plot_divs}"), encoding="utf-8")
    return " ".join(versions)


if __name__ == "__main__":
    modules = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "node_modules"
    print(build(modules, HERE / "offline.html"))
    header = (
        "Licences of the npm packages whose code offline.html inlines (written by build.py).\n\n"
    )
    (HERE / "LICENSES.txt").write_text(header + licences(modules), encoding="utf-8")
