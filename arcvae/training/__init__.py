"""The objective and the training loop: losses, bits, class weights, β and learning-rate schedules,
precision, threads, one step, evaluation figures and the collapse alarm, loggers, checkpoints, the
run folder, the loop (trainer.py) and the overfit check.

May import: models, data and the bottom modules. It draws nothing itself: pictures are handed to
`train` and `overfit_batch` (`run.Pictures`) by the command line.
"""
