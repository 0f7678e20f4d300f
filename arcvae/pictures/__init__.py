"""Pictures, all with matplotlib: grids in the ARC palette, curves and KL heat maps, latent maps,
and what a run draws into plots/ (`RunPictures`, handed to training by the command line).

May import: latent, training, models, data and the bottom modules; only commands import it.
"""
