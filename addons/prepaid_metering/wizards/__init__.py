from . import prepaid_sitemap_import
