from . import bulk_sql, transactions
