"""Reports a run can be kept as: the offline HTML report (``rtplay report``, ``rtplay run --html``).

:mod:`rtplay.report.series` (pure) turns the JSON report and the message log into series and
tables; :mod:`rtplay.report.render` draws them with plotly into one self-contained file.
"""
