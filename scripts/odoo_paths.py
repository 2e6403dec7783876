"""Find the Odoo 18 the project runs against; print its addons path (one line, comma separated).

Odoo is never installed by this project: it is found. Either `odoo` is importable by this Python, or
ODOO_PATH names a source tree (the folder that holds the `odoo` package, as in a git checkout of odoo/odoo or
an extracted server tree). Exit status 2, with the reason on stderr, when there is no usable Odoo 18.
"""

import os
import sys


def main():
    src = os.environ.get("ODOO_PATH")
    if src:
        sys.path.insert(0, os.path.abspath(src))
    try:
        import odoo.release
    except ImportError as exc:
        where = f"ODOO_PATH={src}" if src else f"{sys.executable}'s path (no ODOO_PATH set)"
        print(f"Odoo is not importable from {where}: {exc}", file=sys.stderr)
        return 2
    if odoo.release.version_info[0] != 18:
        print(f"Odoo {odoo.release.version} found, but the suite needs Odoo 18", file=sys.stderr)
        return 2
    pkg = os.path.dirname(os.path.abspath(odoo.__file__))
    paths = [
        p
        for p in (os.path.join(pkg, "addons"), os.path.join(os.path.dirname(pkg), "addons"))
        if os.path.isdir(os.path.join(p, "web"))
    ]
    base = os.path.join(pkg, "addons")
    if base not in paths:
        paths.insert(0, base)
    project = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "addons")
    paths.append(project)
    print(",".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
