"""This project's presets: tuned configs of the built-in apps, one YAML file each, found by name
(`kat presets`, `kat train --preset NAME`) through the entry-point group
`keras_app_templates.presets` (training/presets.py). measured.json holds what `make results`
measured for each (benchmarks/results_table.py writes it; the README's table is made from it).
"""
