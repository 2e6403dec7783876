from . import main, reports
