"""The command line: the shared parser and exit statuses, `train` (cli.py) and every other
subcommand's parser and body (compare, sweep, show the schedule, atoms, encode ... evaluate,
structure, map, analogy). Bodies parse, call the packages below, print and write; computation lives
below.

May import: everything; nothing imports it but `arcvae.__main__` and train_vae.py.
"""
