"""Entry points: the command line's grammar, headless runs, scenario files and variants."""
