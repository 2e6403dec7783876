#!/usr/bin/env python3
"""Odoo's command line for an Odoo that is importable (what Odoo's own ``odoo-bin`` does):
``python3 scripts/odoo_cli.py -c odoo.conf ...``.

A script rather than ``python3 -m odoo``: with HTTP workers, Odoo's prefork server starts its gevent process
(websockets, the bus) by running ``sys.argv[0]`` again, which the path of ``odoo/__main__.py`` cannot be
(``ImportError: attempted relative import``, over and over, and no live updates in the browser)."""

import os

os.environ["TZ"] = "UTC"  # before anything imports time, as odoo-bin does

import odoo

if __name__ == "__main__":
    odoo.cli.main()
