"""The scenario files ``rtplay run SCENARIO`` ships with (TOML, read by :mod:`rtplay.cli.scenario`)."""
