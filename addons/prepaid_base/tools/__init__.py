from . import bulk_sql
